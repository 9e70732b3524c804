"""A model trained by kernels compiled in the process equals one trained by kernels loaded
from numba's on-disk cache (a workflow's first job compiles them, the later jobs load them)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import mfsweep

TESTS = Path(__file__).parent
SRC = Path(mfsweep.__file__).parents[1]

#: The kinds whose kernels call other compiled functions whose copies rounded differently
#: from the function compiled on its own (``mfsweep.kernels.linking``), and ``bpr``, whose
#: pass calls its sampler and loss functions.
KINDS = ("wals", "sgd-gramian", "bpr")

#: Trains each kind on a small table, saves the factors to argv[1] and prints, per kernel
#: module, the overloads numba compiled in the process (misses) and loaded from its cache (hits).
TRAIN = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
from conftest import make_ratings
from mfsweep.kernels import als, bpr, rng, sgd
from mfsweep.models import create
ratings = make_ratings(200, 100, 20)
arrays = {{}}
for kind in {kinds!r}:
    model = create(kind, embedding_size=16, epochs=3, seed=1).fit(ratings, 200, 100)
    arrays[kind + "/user_factors"] = model.user_factors
    arrays[kind + "/item_factors"] = model.item_factors
np.savez(sys.argv[1], **arrays)
counts = {{"hits": 0, "misses": 0}}
for module in (als, bpr, rng, sgd):
    for kernel in vars(module).values():
        stats = getattr(kernel, "stats", None)
        if stats is not None:
            counts["hits"] += sum(stats.cache_hits.values())
            counts["misses"] += sum(stats.cache_misses.values())
print(json.dumps(counts))
"""


def train(out: Path, cache: Path) -> dict:
    """Run TRAIN in a new interpreter with numba's cache in ``cache``; its hit/miss counts."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "NUMBA_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    code = TRAIN.format(tests=str(TESTS), kinds=KINDS)
    result = subprocess.run([sys.executable, "-c", code, str(out)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_compiled_and_cached_kernels_train_identical_models(tmp_path):
    cache = tmp_path / "numba-cache"
    compiled = train(tmp_path / "compiled.npz", cache)
    loaded = train(tmp_path / "loaded.npz", cache)
    assert compiled["hits"] == 0 and compiled["misses"] > 0
    assert loaded["hits"] > 0 and loaded["misses"] == 0
    with np.load(tmp_path / "compiled.npz") as a, np.load(tmp_path / "loaded.npz") as b:
        assert sorted(a.files) == sorted(f"{kind}/{side}_factors" for kind in KINDS for side in ("user", "item"))
        for name in a.files:
            assert np.array_equal(a[name], b[name]), name
