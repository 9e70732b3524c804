import pytest

from mfsweep.pipeline import paths


def test_every_template_parses_back_what_it_builds():
    wildcards = {"dataset": "ml-100k", "split": "random", "model": "als-biased", "trial": "0123456789", "fold": "3"}
    for template in (paths.SPLIT, paths.TRIAL, paths.SUMMARY, paths.SPLIT_SUMMARY, paths.PLOTS, paths.MODEL_PLOTS):
        names = {k: v for k, v in wildcards.items() if "{" + k + "}" in template}
        assert paths.parse(template, paths.build(template, **names)) == names
    assert paths.parse(paths.RAW, "resources/raw/ml-1m.zip") == {"name": "ml-1m"}


def test_files_of_a_trial_and_a_summary_name_their_fold_and_model():
    trial = paths.build(paths.file(paths.TRIAL, "metrics.json"), dataset="d", split="s", model="m.1",
                        trial="b012345678", fold=12)
    assert paths.fold_of(trial) == 12
    assert paths.fold_of("/scratch/run/" + trial) == 12
    assert paths.model_of("results/summary/d/s/sgd-biased/trials.parquet") == "sgd-biased"


def test_a_path_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="is not a path of the form"):
        paths.fold_of("results/trials/d/s/m/not-a-trial/fold0/metrics.json")
