"""Predicted ratings for (user, item) pairs given by original ids.

A trained model knows the users and items of its training ratings. A pair whose user
or item is unknown (absent from the dataset, or without a training rating) is not
dropped: it is scored by the fallback the model has and flagged. A biased model scores
it by ``global_bias`` plus the bias of its known side (``mu + b_i`` for an unknown
user, ``mu + b_u`` for an unknown item, ``mu`` when both are unknown); a model without
biases by the mean training rating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mfsweep.models.base import MFModel

#: The columns of a predictions table, in order.
COLUMNS = ("user", "item", "prediction", "user_known", "item_known")


@dataclass(frozen=True)
class Catalog:
    """What a model was trained on: the dataset's original ids (at each dense id) and the
    dense ids with at least one training rating, with the mean training rating."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    trained_users: np.ndarray   # bool per dense user id
    trained_items: np.ndarray   # bool per dense item id
    mean_rating: float

    @classmethod
    def from_tables(cls, users: pd.DataFrame, items: pd.DataFrame, train: pd.DataFrame) -> "Catalog":
        """From users.parquet and items.parquet (``original_id`` at each dense id) and a
        training part (dense ``user``, ``item``, ``rating``)."""
        trained_users = np.zeros(len(users), np.bool_)
        trained_items = np.zeros(len(items), np.bool_)
        trained_users[train["user"].to_numpy()] = True
        trained_items[train["item"].to_numpy()] = True
        mean = float(train["rating"].to_numpy(np.float64).mean()) if len(train) else 0.0
        return cls(users["original_id"].to_numpy(), items["original_id"].to_numpy(), trained_users,
                   trained_items, mean)


def dense(original_ids: np.ndarray, pairs: pd.Series) -> np.ndarray:
    """Each of ``pairs``' original ids as its dense id (the position in ``original_ids``), -1 where absent."""
    index = pd.Index(original_ids)
    values = pairs
    if index.dtype.kind in "OSU" or pd.api.types.is_string_dtype(index.dtype):
        values = pairs.astype(str)   # text ids: a file may read "7" as a number
    elif not pd.api.types.is_numeric_dtype(pairs):
        values = pd.to_numeric(pairs, errors="coerce")   # text that is no number matches no id
    return index.get_indexer(values)


def predict_pairs(model: MFModel, catalog: Catalog, pairs: pd.DataFrame) -> pd.DataFrame:
    """The predictions table of ``pairs`` (original ``user`` and ``item``), in their order:
    the ids as given, ``prediction``, and whether the user and the item are known."""
    users = dense(catalog.user_ids, pairs["user"])
    items = dense(catalog.item_ids, pairs["item"])
    user_known = users >= 0
    user_known[user_known] = catalog.trained_users[users[user_known]]
    item_known = items >= 0
    item_known[item_known] = catalog.trained_items[items[item_known]]
    both = user_known & item_known
    prediction = np.empty(len(pairs), np.float64)
    prediction[both] = model.predict(users[both], items[both])
    prediction[~both] = fallback(model, catalog, np.where(user_known, users, -1)[~both],
                                 np.where(item_known, items, -1)[~both])
    return pd.DataFrame({"user": pairs["user"].to_numpy(), "item": pairs["item"].to_numpy(),
                         "prediction": prediction, "user_known": user_known, "item_known": item_known})


def fallback(model: MFModel, catalog: Catalog, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Scores of pairs with an unknown side (dense id -1): the model's biases of the known
    side plus its global bias, or, for a model without biases, the mean training rating."""
    if not model.biased:
        return np.full(len(users), catalog.mean_rating)
    user_bias, item_bias = model.biases()
    out = np.full(len(users), float(model.global_bias))
    out[users >= 0] += user_bias[users[users >= 0]]
    out[items >= 0] += item_bias[items[items >= 0]]
    return out


def counts(table: pd.DataFrame) -> dict[str, int]:
    """How many pairs a predictions table has, and how many were scored by the fallback."""
    return {"pairs": len(table), "unknown_user": int((~table["user_known"]).sum()),
            "unknown_item": int((~table["item_known"]).sum()),
            "fallback": int((~(table["user_known"] & table["item_known"])).sum())}
