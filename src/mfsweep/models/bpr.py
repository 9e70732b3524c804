"""``bpr``: Bayesian personalized ranking (Rendle et al. 2009) by SGD, for implicit feedback.

The model scores x_ui = p_u . q_i + b_i (b_i only with ``item_bias: true``, the default;
``item_bias`` is stored as the model's item bias, so ranking and files need nothing
new). Every rated pair (u, i) is a positive, whatever its rating. An epoch walks the
pairs in a seeded order (the Fisher-Yates shuffle of the SGD family) and, for each, takes
``negatives`` triples (u, i, j), j drawn uniformly from the items u did not rate
(rejection sampling against u's row of the training matrix, from a random stream keyed by
the epoch's seed and the triple's position: ``mfsweep.kernels.bpr``). With
``sampling: popularity`` (``implicit``'s sampling), j is instead the item of a uniformly
drawn training pair (an item in proportion to its ratings), drawn once: if u rated it,
the triple makes no step. Each step (triple) is one step along the gradient of

    log sigmoid(x_ui - x_uj) - reg.user |p_u|^2 / 2 - reg.item (|q_i|^2 + |q_j|^2) / 2
                             - reg.item (b_i^2 + b_j^2) / 2

with ``learning_rate``: the update of ``implicit``'s BayesianPersonalizedRanking, whose
learning rate and regularization mean the same (its bias shares the item
regularization, as here). Factors start as normal(0, ``init_std``), biases at 0. A
user who rated every item has no negative and is skipped.

Threads: as for the SGD family, the pass is sequential by default, so a seed gives the
same bits whatever numba's thread count; ``hogwild: true`` runs chunks of the pairs in
parallel without locks (the same negatives, racing updates: not repeatable).

Training loss (what ``_epoch`` returns), over the T steps of the epoch: ``loss_data``
is the mean of -log sigmoid(x_ui - x_uj), each taken at its step, before its update (the
running loss, which costs nothing extra); ``loss_l2`` is the mean over the steps of the
penalty above at the end of the epoch, i.e.
(reg.user/2 sum_u m_u |p_u|^2 + reg.item/2 sum_i m_i (|q_i|^2 + b_i^2)) / T, m_u and m_i the
epoch's steps that moved the row. ``train_loss`` is their sum (0 for an epoch without a step).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numba
import numpy as np

from mfsweep.kernels import bpr as kernels
from mfsweep.kernels import sgd as sgd_kernels
from mfsweep.matrix import RatingMatrix
from mfsweep.models.base import ParameterError
from mfsweep.models.sgd import _SGDFamily


class BPR(_SGDFamily):
    """``bpr``: matrix factorization on the BPR pairwise loss, one negative item per step."""

    kind = "bpr"
    # the size, learning rate, regularization and epochs default to implicit 0.7.3's
    defaults: ClassVar[dict[str, Any]] = {
        "embedding_size": 100, "epochs": 100, "learning_rate": 0.01, "regularization": 0.01, "init_std": 0.01,
        "negatives": 1, "item_bias": True, "sampling": "uniform", "hogwild": False,
    }
    SAMPLINGS: ClassVar[tuple[str, ...]] = ("uniform", "popularity")

    def _check_params(self) -> None:
        super()._check_params()
        self._integer("negatives", 1)
        if not isinstance(self.params["item_bias"], (bool, np.bool_)):
            raise ParameterError(f"{self.kind}: item_bias must be true or false, got {self.params['item_bias']!r}")
        if self.params["sampling"] not in self.SAMPLINGS:
            raise ParameterError(f"{self.kind}: sampling must be one of {', '.join(self.SAMPLINGS)}, "
                                 f"got {self.params['sampling']!r}")

    def _setup(self, matrix: RatingMatrix, rng: np.random.Generator) -> None:
        super()._setup(matrix, rng)
        self.item_bias = np.zeros(matrix.n_items, np.float32) if self.params["item_bias"] else None
        self._rated = (matrix.indptr, matrix.indices)
        self._steps = (np.zeros(matrix.n_users, np.int64), np.zeros(matrix.n_items, np.int64))
        self._data_sum = 0.0

    def _pass(self, triples: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        lr = float(self.params["learning_rate"])
        reg_u, reg_i = self.pair("regularization")
        rates = tuple(np.float32(x) for x in (lr, reg_u, reg_i, reg_i))
        biased = self.item_bias is not None
        bias = self.item_bias if biased else self._bias_arrays()[1]
        settings = (int(self.params["negatives"]), np.uint64(self._rng.integers(2**63)), biased,
                    self.params["sampling"] == "popularity")
        pairs = (triples[0], triples[1])
        model = (self._P, self._Q, bias)
        if self._parallel():
            total = kernels.bpr_epoch_hogwild(pairs, self._rated, model, rates, settings, self._steps,
                                              numba.get_num_threads())
        else:
            total = kernels.bpr_epoch(pairs, self._rated, model, rates, settings, self._steps)
        self._data_sum = float(total)

    def _objective(self) -> float:
        reg_u, reg_i = self.pair("regularization")
        user_steps, item_steps = (x.astype(np.float64) for x in self._steps)
        l2 = 0.5 * (reg_u * sgd_kernels.weighted_squares(self._P, user_steps)
                    + reg_i * sgd_kernels.weighted_squares(self._Q, item_steps))
        if self.item_bias is not None:
            l2 += 0.5 * reg_i * sgd_kernels.weighted_squares(self.item_bias, item_steps)
        n = max(int(self._steps[0].sum()), 1)
        self.loss_parts = {"data": self._data_sum / n, "l2": l2 / n}
        return (self._data_sum + l2) / n
