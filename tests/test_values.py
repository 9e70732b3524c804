"""mfsweep.values: the one numpy-to-Python conversion and the one number text of the package."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mfsweep.values import is_float, is_number, missing, number_text, plain


def test_plain_turns_numpy_scalars_into_python_values_and_leaves_the_rest():
    assert plain(np.float32(0.5)) == 0.5 and type(plain(np.float32(0.5))) is float
    assert plain(np.int64(3)) == 3 and type(plain(np.int64(3))) is int
    assert plain(np.bool_(True)) is True and type(plain(np.str_("a"))) is str
    values = ["a", 2, 0.5, None, (1, 2)]
    assert all(plain(v) is v for v in values)


def test_numbers_are_ints_and_floats_but_not_bools():
    assert all(is_number(v) for v in (1, 0.5, np.int8(1), np.float32(0.5), math.inf))
    assert not any(is_number(v) for v in (True, np.bool_(False), "1", None))
    assert is_float(np.float64(1)) and is_float(1.0) and not is_float(1) and not is_float(np.int64(1))


@pytest.mark.parametrize(("value", "digits", "text"), [
    (7, 3, "7"), (np.int64(2_000_000), 3, "2000000"),  # an integer in full
    (5.0, 3, "5"), (np.float32(20000.0), 3, "20000"), (20000.0, 4, "20000"),  # a whole float below 1e6 as an integer
    (2e6, 3, "2e+06"), (0.123456, 3, "0.123"), (np.float32(0.123456), 4, "0.1235"), (1234.56, 4, "1235"),
    (math.inf, 4, "inf"), ("sgd", 3, "sgd"), (True, 3, "True"),
])
def test_number_text(value, digits, text):
    assert number_text(value, digits) == text


def test_missing_is_none_pd_na_or_any_float_nan():
    assert all(missing(v) for v in (None, pd.NA, math.nan, np.float32("nan"), np.float64("nan")))
    assert not any(missing(v) for v in (0, 0.0, "", "nan", math.inf, False))
