"""The model kinds and ``create``: the one way to build a model from a kind and parameters.

A leaf of the models package: the modules of the kinds import it (for ParameterError,
and ``MFModel.load`` for ``create``) and it imports them only by name, on first use.
"""

from __future__ import annotations

import importlib

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


class ParameterError(ValueError):
    """A model parameter is unknown or out of range; the message names it."""


def model_class(kind: str) -> type:
    """The class of ``kind`` (an MFModel subclass)."""
    try:
        module, name = KINDS[kind].split(":")
    except KeyError:
        raise ParameterError(f"unknown model kind {kind!r}; allowed: {', '.join(KINDS)}") from None
    return getattr(importlib.import_module(module), name)


def create(kind: str, **params):
    """A new, untrained model of ``kind``; bad parameters raise ParameterError naming them."""
    return model_class(kind)(**params)
