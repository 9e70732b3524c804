import math

import pytest

from mfsweep import search
from mfsweep.search import SearchError, expand, trial_id


def model(params, search=None, kind="als-biased"):
    return {"kind": kind, "search": search or {"method": "grid"}, "max_epochs": 5, "params": params}


def test_grid_is_the_cartesian_product_of_lists_with_scalars_fixed():
    trials = expand(model({"embedding_size": [8, 16, 32], "regularization": [0.1, 1.0], "damping": 5}))
    assert len(trials) == 6
    assert {t["damping"] for t in trials.values()} == {5}
    assert {(t["embedding_size"], t["regularization"]) for t in trials.values()} == {
        (k, r) for k in (8, 16, 32) for r in (0.1, 1.0)
    }


def test_trial_ids_are_stable_and_do_not_move_when_a_grid_point_is_added():
    small = expand(model({"embedding_size": [8, 16]}))
    large = expand(model({"embedding_size": [8, 16, 32]}))
    assert set(small) < set(large)
    for tid, params in small.items():
        assert large[tid] == params
        assert trial_id(params) == tid
        assert len(tid) == 10 and all(c in "0123456789abcdef" for c in tid)


def test_trial_id_ignores_key_order():
    assert trial_id({"a": 1, "b": {"user": 1, "item": 2}}) == trial_id({"b": {"item": 2, "user": 1}, "a": 1})


def test_dotted_axes_build_user_item_pairs():
    trials = expand(model({"regularization.user": [0.1, 0.2], "regularization.item": [0.3], "damping": 1}))
    assert sorted(t["regularization"]["user"] for t in trials.values()) == [0.1, 0.2]
    assert all(t["regularization"]["item"] == 0.3 for t in trials.values())


def random_space():
    return {
        "embedding_size": {"loguniform_int": [4, 512]},
        "regularization": {"loguniform": [1e-4, 1.0]},
        "damping": {"uniform": [0.0, 10.0]},
        "epochs": 3,
    }


def test_random_search_is_reproducible_and_seeded():
    space = random_space()
    space.pop("epochs")
    first = expand(model(space, {"method": "random", "trials": 30, "seed": 3}))
    again = expand(model(space, {"method": "random", "trials": 30, "seed": 3}))
    other = expand(model(space, {"method": "random", "trials": 30, "seed": 4}))
    assert first == again
    assert list(first) == list(again)
    assert first != other
    assert len(first) == 30


def test_random_draws_stay_within_their_bounds():
    space = random_space()
    space.pop("epochs")
    trials = expand(model(space, {"method": "random", "trials": 200, "seed": 1})).values()
    sizes = [t["embedding_size"] for t in trials]
    assert all(isinstance(s, int) and 4 <= s <= 512 for s in sizes)
    assert min(sizes) < 16 and max(sizes) > 128  # log-uniform reaches both ends
    regs = [t["regularization"] for t in trials]
    assert all(1e-4 <= r <= 1.0 for r in regs)
    # log-uniform: about half the draws below the geometric middle
    below = sum(r < math.sqrt(1e-4 * 1.0) for r in regs)
    assert 60 < below < 140
    assert all(0.0 <= t["damping"] <= 10.0 for t in trials)


def test_lists_are_choices_under_random_search():
    trials = expand(model({"embedding_size": [8, 16], "regularization": 0.1},
                          {"method": "random", "trials": 20, "seed": 0}))
    assert {t["embedding_size"] for t in trials.values()} == {8, 16}  # duplicates collapse to one id


@pytest.mark.parametrize(
    "params, search, message",
    [
        ({"embedding_size": []}, None, "params.embedding_size: empty list"),
        ({"regularization": {"loguniform": [1.0, 0.1]}}, "random", "inverted range"),
        ({"regularization": {"uniform": [0.5, 0.5]}}, "random", "empty or inverted range"),
        ({"regularization": {"loguniform": [0.0, 1.0]}}, "random", "must be > 0"),
        ({"regularization": {"uniform": [0.1]}}, "random", "expected [low, high]"),
        ({"regularization": {"uniform": [0.0, 1.0]}}, None, "needs search method random, tpe or gp"),
        ({"embedding_size": [0, 8]}, None, "embedding_size must be an integer >= 1"),
        ({"regularization": -0.1}, None, "regularization must be >= 0"),
        ({"regularization": 0.1, "regularization.user": [0.2]}, None, "both as a whole"),
        ({"regularization.users": [0.2]}, None, "must end in .user or .item"),
        ({"learning_rate": 0.1}, None, "unknown parameter(s) learning_rate"),
    ],
)
def test_bad_search_spaces_name_the_parameter(params, search, message):
    search = {"method": search, "trials": 3, "seed": 0} if search else None
    with pytest.raises(SearchError) as error:
        expand(model(params, search))
    assert message in str(error.value)


def test_a_loguniform_int_range_holding_no_integer_is_refused():
    model = {"kind": "sgd", "search": {"method": "random", "trials": 3},
             "params": {"embedding_size": {"loguniform_int": [1.2, 1.8]}}}
    with pytest.raises(SearchError, match=r"params.embedding_size.loguniform_int: \[1.2, 1.8\] holds no integer"):
        expand(model)
    model["params"]["embedding_size"] = {"loguniform_int": [1.2, 2.8]}
    assert {params["embedding_size"] for params in expand(model).values()} == {2}


@pytest.mark.parametrize("method", ["grid", "random", "tpe"])
def test_the_target_of_wals_is_not_a_search_axis(method):
    """It decides the selection metric, which every trial of a model shares."""
    model = {"kind": "wals", "search": {"method": method, "trials": 2, "seed": 0},
             "params": {"target": ["rating", "preference"], "embedding_size": 4}}
    with pytest.raises(SearchError, match="params.target: cannot be searched"):
        expand(model)
    model["params"]["target"] = "rating"
    assert method == "tpe" or all(t["target"] == "rating" for t in expand(model).values())

@pytest.mark.parametrize("method", ["grid", "random", "tpe", "gp"])
@pytest.mark.parametrize(
    "params, message",
    [
        ({"regularization": [0.05, 0.1, 0.2, "a"]},
         "params.regularization: the value 'a' is not valid: regularization: expected a number, got the text 'a'"),
        ({"regularization": [0.05, 0.1, 0.2, -1.0]},
         "params.regularization: the value -1.0 is not valid: als-biased: regularization must be >= 0"),
        ({"embedding_size": [4, 8, 16.0]}, "params.embedding_size: the value 16.0 is not valid"),
    ],
)
def test_every_value_of_a_list_is_checked_whatever_the_method(method, params, message):
    # a tpe or gp space used to be checked on a random sample only, so one bad choice of several passed
    with pytest.raises(SearchError) as error:
        expand(model(params, {"method": method, "trials": 1, "seed": 0}))
    assert message in str(error.value)


@pytest.mark.parametrize("method", ["random", "tpe", "gp"])
@pytest.mark.parametrize(
    "params, message",
    [
        ({"regularization": {"uniform": [0.0, 1.0]}, "damping": {"uniform": [-1.0, 5.0]}},
         "params.damping.uniform: the bound -1.0 is not valid: als-biased: damping must be >= 0, got -1.0"),
        ({"regularization": {"loguniform": [0.01, 1.0]}, "embedding_size": {"uniform": [2, 64]}},
         "params.embedding_size.uniform: the bound 2.0 is not valid: als-biased: embedding_size must be an integer "
         ">= 1, got 2.0 (write 2); uniform draws floats, an integer parameter takes {loguniform_int: [2, 64]}"),
    ],
)
def test_both_bounds_of_a_distribution_are_checked_whatever_the_method(method, params, message):
    with pytest.raises(SearchError) as error:
        expand(model({"embedding_size": 4, **params}, {"method": method, "trials": 1, "seed": 0}))
    assert message in str(error.value)


def test_a_valid_adaptive_space_has_no_trials_before_it_runs():
    space = {"embedding_size": {"loguniform_int": [2, 64]}, "regularization": [0.05, 0.1], "damping": 5}
    assert expand(model(space, {"method": "tpe", "trials": 4, "seed": 0})) == {}


@pytest.mark.parametrize("name, values, space, log", [
    ("learning_rate", [0.01, 0.02], {"learning_rate": {"loguniform": [0.001, 0.1]}}, True),
    ("embedding_size", [4, 8], {"embedding_size": {"loguniform_int": [4, 512]}}, True),
    ("init_std", [0.01, 0.5], {"init_std": {"uniform": [0.01, 0.5]}}, False),
    ("regularization", [0.01, 1.0], {"regularization": [0.01, 0.1, 1.0]}, True),
    ("embedding_size", [16, 64], {"embedding_size": [16, 64]}, False),
    ("alpha", [0, 10, 100], {"alpha": [0, 10, 100]}, False),
    ("regularization.user", [0.1, 1], {"regularization.user": [0.1, 1.0]}, True),
    ("regularization.item", [0.1, 1], {"regularization": {"item": [0.1, 0.2]}}, False),
    ("solver", ["cg", "cholesky"], {"solver": ["cg", "cholesky"]}, False),
    ("learning_rate", [0.001, 0.1], None, True),
    ("learning_rate", [0.01, 0.05], None, False),
])
def test_log_axis_follows_the_search_space(name, values, space, log):
    assert search.is_log_axis(name, values, space) is log
