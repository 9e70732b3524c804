"""Peer libraries for the tests marked ``peers`` (the ``bench`` extra and the CPU torch)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


def import_peer(module: str, package: str) -> ModuleType:
    """Import a peer library, failing (never skipping) the test when it is missing:
    a comparison with a peer that did not run proves nothing."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = str(error)
    pytest.fail(f"peer {package} is not installed ({missing}); `make test-peers` installs the "
                f"`bench` extra and the CPU torch, then runs the peer tests", pytrace=False)
