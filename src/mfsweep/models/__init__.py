"""Model kinds and ``create``: the one way to build a model from a kind and parameters."""

from __future__ import annotations

import importlib

from mfsweep.models.base import EpochState, MFModel, ParameterError

#: kind -> "module:Class"; modules are imported on first use.
KINDS: dict[str, str] = {
    "als": "mfsweep.models.als:ALS",
    "als-biased": "mfsweep.models.als:BiasedALS",
    "wals": "mfsweep.models.als:WALS",
    "sgd": "mfsweep.models.sgd:SGD",
    "sgd-biased": "mfsweep.models.sgd:BiasedSGD",
    "sgd-gramian": "mfsweep.models.sgd:GramianSGD",
    "adam": "mfsweep.models.sgd:Adam",
    "bpr": "mfsweep.models.bpr:BPR",
}


def model_class(kind: str) -> type[MFModel]:
    try:
        module, name = KINDS[kind].split(":")
    except KeyError:
        raise ParameterError(f"unknown model kind {kind!r}; allowed: {', '.join(KINDS)}") from None
    return getattr(importlib.import_module(module), name)


def create(kind: str, **params) -> MFModel:
    """A new, untrained model of ``kind``; bad parameters raise ParameterError naming them."""
    return model_class(kind)(**params)


__all__ = ["KINDS", "EpochState", "MFModel", "ParameterError", "create", "model_class"]
