"""Plain values: numpy scalars as Python values, what counts as a number, and numbers as short text.

A leaf module (it imports nothing of the package), so every other module can use it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def plain(value):
    """A numpy scalar as the Python value it holds (``np.float64(0.5)`` -> ``0.5``); any other value as it is."""
    return value.item() if isinstance(value, np.generic) else value


def is_number(value) -> bool:
    """An int or float, Python's or numpy's; not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_float(value) -> bool:
    return isinstance(value, (float, np.floating))


def missing(value) -> bool:
    """None, ``pd.NA`` or a float NaN (Python's or numpy's)."""
    return value is None or value is pd.NA or (is_float(value) and math.isnan(value))


def number_text(value, digits: int = 3) -> str:
    """A number as short text: an integer in full; a float to ``digits`` significant digits,
    but a whole float below a million as an integer (``5.0`` -> ``5``, ``20000.0`` -> ``20000``).
    Anything else as ``str``."""
    if not is_number(value):
        return str(value)
    if not is_float(value):
        return str(int(value))
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e6 else f"{value:.{digits}g}"
