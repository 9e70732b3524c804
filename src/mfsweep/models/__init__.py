"""Model kinds and ``create``: the one way to build a model from a kind and parameters."""

from __future__ import annotations

from mfsweep.models.base import EpochState, MFModel
from mfsweep.models.kinds import KINDS, ParameterError, create, model_class

__all__ = ["KINDS", "EpochState", "MFModel", "ParameterError", "create", "model_class"]
