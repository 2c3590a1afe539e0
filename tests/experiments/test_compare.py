"""`init-loss-lab compare`: two cells of one experiment, or of two experiments on the same data,
paired by seed; its numbers recomputed here from runs.csv."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_config
from scipy import stats as scipy_stats

from experiments import cli

COMMON = {"dataset": {"name": "moons", "n_samples": 120}, "model": {"name": "mlp", "widths": [8]},
          "initializers": ["he_normal", "zeros"], "losses": ["binary_crossentropy", "mean_squared_error"],
          "seeds": [0, 1, 2], "epochs": 2, "batch_size": 16, "diagnostics": False}


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """Two experiments on the same data and seeds (Adam; SGD), and one on other data."""
    root = tmp_path_factory.mktemp("compare")
    for name, changes in (("adam", {}), ("sgd", {"optimizer": "sgd"}),
                          ("other", {"dataset": {"name": "moons", "n_samples": 150}})):
        config = write_config(root / f"{name}.toml", {**COMMON, "name": name, **changes})
        assert cli.main(["run", str(config), "--output", str(root), "--quiet"]) == 0
    return root


def _per_seed(root, name, **axes):
    runs = pd.read_csv(root / "reports" / name / "runs.csv")
    for axis, value in axes.items():
        runs = runs[runs[axis] == value]
    return runs.groupby("seed")["test_accuracy"].mean()


def _compare(root, capsys, *args):
    code = cli.main(["compare", *args, "--output", str(root), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else err)


def test_two_cells_of_one_experiment(two, capsys):
    code, found = _compare(two, capsys, "adam", "--a", "initializer=he_normal,loss=binary_crossentropy",
                           "--b", "initializer=zeros,loss=binary_crossentropy")
    assert code == 0
    a = _per_seed(two, "adam", initializer="he_normal", loss="binary_crossentropy")
    b = _per_seed(two, "adam", initializer="zeros", loss="binary_crossentropy")
    c = found["comparison"]
    assert c["n"] == 3 and c["diff"] == pytest.approx((a - b).mean())
    assert c["p"] == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue) or np.ptp(a - b) == 0
    assert found["a"]["cells"] == ["he_normal | binary_crossentropy"] and found["metric"] == "test_accuracy"
    assert c["verdict"] in ("better", "worse", "practically equivalent", "inconclusive")
    # the text form says the same
    assert cli.main(["compare", "adam", "--a", "initializer=he_normal,loss=binary_crossentropy", "--b",
                     "initializer=zeros,loss=binary_crossentropy", "--output", str(two)]) == 0
    text = capsys.readouterr().out
    assert f"a - b: {c['diff']:.4g}" in text and "verdict:" in text


def test_several_cells_are_pooled_per_seed(two, capsys):
    code, found = _compare(two, capsys, "adam", "--a", "initializer=he_normal", "--b", "initializer=zeros",
                           "--metric", "loss")
    assert code == 0 and len(found["a"]["cells"]) == 2
    runs = pd.read_csv(two / "reports" / "adam" / "runs.csv")
    a = runs[runs["initializer"] == "he_normal"].groupby("seed")["test_loss"].mean()
    assert [found["a"]["values"][str(s)] for s in a.index] == pytest.approx(a.tolist())


def test_across_two_experiments_on_the_same_data(two, capsys):
    code, found = _compare(two, capsys, "adam", "--a", "initializer=he_normal,loss=binary_crossentropy",
                           "--b", "initializer=he_normal,loss=binary_crossentropy", "--b-experiment", "sgd")
    assert code == 0 and found["b"]["experiment"] == "sgd"
    a = _per_seed(two, "adam", initializer="he_normal", loss="binary_crossentropy")
    b = _per_seed(two, "sgd", initializer="he_normal", loss="binary_crossentropy")
    assert found["comparison"]["diff"] == pytest.approx((a - b).mean())


@pytest.mark.parametrize("args, message", [
    (["--a", "initializer=he_normal", "--b", "initializer=glorot"], "initializer=glorot matches no run"),
    (["--a", "init=he_normal", "--b", "initializer=zeros"], "unknown axis 'init'"),
    (["--a", "he_normal", "--b", "initializer=zeros"], "AXIS=VALUE pairs"),
    (["--a", "initializer=he_normal", "--b", "initializer=zeros", "--metric", "f1"], "--metric 'f1'"),
    (["--a", "initializer=he_normal", "--b", "initializer=zeros", "--b-experiment", "other"], "different data"),
    (["--a", "initializer=he_normal", "--b", "initializer=zeros", "--b-experiment", "nope"], "no experiment 'nope'"),
])
def test_bad_input_is_one_line_and_exit_2(two, capsys, args, message):
    code, err = _compare(two, capsys, "adam", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_python_api_gives_the_same_comparison(two, capsys):
    import experiments as lab

    code, found = _compare(two, capsys, "adam", "--a", "initializer=he_normal", "--b", "initializer=zeros")
    same = lab.compare("adam", {"initializer": "he_normal"}, {"initializer": "zeros"}, output=two)
    assert code == 0 and same["comparison"]["diff"] == found["comparison"]["diff"]
    assert same["comparison"]["verdict"] == found["comparison"]["verdict"]
