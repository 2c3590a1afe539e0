"""The runner end to end on a tiny real grid: records, tables, resume, divergence, failure."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import timeless_tables
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from experiments.engines import keras_fit as engine_keras
from experiments.reporting.report import build_report
from experiments.reporting.tables import load_tables, summarize_cells
from experiments.runner import run_experiment
from experiments.spec import validate
from experiments.spec.budget import stack_budget
from initializers.registry import label

BASE = {
    "name": "tiny", "dataset": {"name": "moons", "n_samples": 80}, "model": {"name": "mlp", "widths": [8]},
    "initializers": ["he_normal", "zeros"], "losses": ["binary_crossentropy", "mean_squared_error"],
    "epochs": 2, "batch_size": 16, "seeds": [0, 1], "thresholds": {"val_accuracy": 0.6},
    "save_model": False,
}


def _run(output, **changes):
    spec, data = validate({**BASE, **changes})
    return run_experiment(spec, data, output, progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny grid trained once for the module's read-only tests."""
    output = tmp_path_factory.mktemp("out")
    exp_dir, trained, skipped = _run(output)
    assert (trained, skipped) == (8, 0)
    return exp_dir


def _scalars(path, tag):
    events = EventAccumulator(str(path), size_guidance={"tensors": 0})
    events.Reload()
    return {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)}


def test_each_run_folder_is_its_whole_record(tiny):
    run_dir = tiny / "moons" / "he_normal__binary_crossentropy" / "seed_1"
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["seed"], config["initializer"], config["loss"]) == (1, {"name": "he_normal"},
                                                                      {"name": "binary_crossentropy"})
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == [1, 2] and {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok" and result["epochs_run"] == 2
    assert result["final_val_accuracy"] == pytest.approx(history["val_accuracy"].iloc[-1])
    assert 0 <= result["test_accuracy"] <= 1 and result["libraries"]["keras"].startswith("3.")
    assert not list(run_dir.rglob("*.tmp"))


def test_tensorboard_scalars_equal_the_history(tiny):
    run_dir = tiny / "moons" / "he_normal__mean_squared_error" / "seed_0"
    history = pd.read_csv(run_dir / "history.csv")
    validation = _scalars(run_dir, "validation/accuracy")  # the splits are tag groups of the run
    assert validation == pytest.approx(dict(zip(history["epoch"], history["val_accuracy"], strict=True)))
    train = _scalars(run_dir, "train/loss")
    assert train == pytest.approx(dict(zip(history["epoch"], history["loss"], strict=True)))
    result = json.loads((run_dir / "result.json").read_text())
    assert _scalars(run_dir, "test/accuracy") == pytest.approx({2: result["test_accuracy"]})
    session = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    session.Reload()
    assert {"_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(session.Tags()["tensors"])


def test_tables_are_tidy_and_complete(tiny):
    runs, epochs = load_tables(tiny)
    assert len(runs) == 8 and set(runs["status"]) == {"ok"}
    assert {"initializer", "loss", "optimizer", "learning_rate", "batch_size", "seed", "wall_time_s"} <= set(runs)
    assert len(epochs) == 16 and {"train_loss", "val_loss", "loss"} <= set(epochs)
    assert set(epochs["loss"]) == {"binary_crossentropy", "mean_squared_error"}  # the axis, not a value
    cells = summarize_cells(runs, "test_accuracy")
    assert len(cells) == 4 and list(cells["n"]) == [2, 2, 2, 2]
    zeros = cells[cells["initializer"] == "zeros"]
    he = cells[cells["initializer"] == "he_normal"]
    assert zeros["mean"].max() <= he["mean"].max()


def test_report_reads_only_the_disk(tiny, tmp_path):
    report = build_report(tiny, tmp_path / "report")
    text = report.read_text()
    assert "| initializer   | binary_crossentropy   | mean_squared_error   |" in text
    assert "keras 3." in text and "seeds: [0, 1]" in text
    for name in ("runs.csv", "epochs.csv", "cells.csv", "curves.png", "heatmap.png", "report.html"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert len(pd.read_csv(tmp_path / "report" / "runs.csv")) == 8


def test_rerun_skips_finished_runs_and_overwrite_reruns(tmp_path):
    exp_dir, trained, skipped = _run(tmp_path, initializers=["he_normal"], seeds=[0])
    result = exp_dir / "moons" / "he_normal__binary_crossentropy" / "seed_0" / "result.json"
    stamp = result.stat().st_mtime_ns
    assert _run(tmp_path, initializers=["he_normal"], seeds=[0])[1:] == (0, 2)
    assert result.stat().st_mtime_ns == stamp
    # a changed config would replace finished runs: refused, naming the field, unless --overwrite
    with pytest.raises(ValueError, match=r"2 finished runs .* another config \(epochs \(2 -> 1\)\); rerun with "
                                         r"--overwrite"):
        _run(tmp_path, initializers=["he_normal"], seeds=[0], epochs=1)
    assert result.stat().st_mtime_ns == stamp
    spec, data = validate({**BASE, "initializers": ["he_normal"], "seeds": [0], "epochs": 1})
    assert run_experiment(spec, data, tmp_path, overwrite=True, progress=False)[1:] == (2, 0)


def test_a_diverging_run_is_recorded_and_the_grid_goes_on(tmp_path):
    exp_dir, trained, _ = _run(
        tmp_path, dataset={"name": "regression", "n_samples": 80}, initializers=["ones", "he_normal"],
        losses=["mean_squared_error"], optimizer="sgd", learning_rate=1.0, seeds=[0], epochs=3,
        metrics=[], thresholds={},
    )
    runs, _ = load_tables(exp_dir)
    status = dict(zip(runs["initializer"], runs["status"], strict=True))
    assert trained == 2 and status["ones"] == "diverged"
    diverged = runs[runs["initializer"] == "ones"].iloc[0]
    assert "loss became" in diverged["reason"] and diverged["epochs_run"] < 3
    cells = summarize_cells(runs, "test_mean_absolute_error")
    assert cells.set_index("initializer").loc["ones", "diverged"] == 1


def test_a_failing_run_is_recorded_and_the_grid_goes_on(tmp_path, monkeypatch):
    real = engine_keras.train_one

    def fail_on_seed_1(run, data, recorder):
        if run.axes["seed"] == 1:
            raise RuntimeError("injected failure\nsecond line")
        return real(run, data, recorder)

    monkeypatch.setattr(engine_keras, "train_one", fail_on_seed_1)
    exp_dir, trained, _ = _run(tmp_path, initializers=["he_normal"], losses=["binary_crossentropy"], engine="keras")
    runs, _ = load_tables(exp_dir)
    assert trained == 2
    assert dict(zip(runs["seed"], runs["status"], strict=True)) == {0: "ok", 1: "failed"}
    assert runs.set_index("seed").loc[1, "reason"] == "RuntimeError: injected failure"


def test_same_seed_same_history(tmp_path):
    first = _run(tmp_path / "a", initializers=["he_normal"], losses=["binary_crossentropy"], seeds=[3])[0]
    second = _run(tmp_path / "b", initializers=["he_normal"], losses=["binary_crossentropy"], seeds=[3])[0]
    a, b = (pd.read_csv(d / "moons" / "he_normal__binary_crossentropy" / "seed_3" / "history.csv")
            for d in (first, second))
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_early_stopping_ends_a_run_and_the_cnn_trains_on_digits(tmp_path):
    exp_dir, _, _ = _run(tmp_path / "es", initializers=["he_normal"], losses=["binary_crossentropy"], seeds=[0],
                         epochs=6, early_stopping={"monitor": "val_loss", "patience": 1, "min_delta": 10.0})
    runs, _ = load_tables(exp_dir)
    assert list(runs["epochs_run"]) == [2]  # no epoch can improve val_loss by 10: stop after patience 1
    exp_dir, _, _ = _run(tmp_path / "cnn", dataset="digits", model={"name": "cnn", "filters": [8], "widths": [16]},
                         initializers=["he_normal"], losses=["categorical_crossentropy"], seeds=[0], epochs=3,
                         thresholds={})
    runs, _ = load_tables(exp_dir)
    assert list(runs["status"]) == ["ok"] and runs["test_accuracy"].iloc[0] > 0.5  # chance is 0.1


def test_dataset_and_model_axes_train_each_pair_on_its_own_data(tmp_path, capsys):
    moons = {"name": "moons", "n_samples": 80}
    exp_dir, trained, _ = _run(tmp_path, dataset=[moons, {**moons, "standardize": "none", "noise": 0.05}],
                               model=["linear", {"name": "mlp", "widths": [8], "dropout": 0.5}],
                               initializers=["he_normal"], losses=["binary_crossentropy"], seeds=[0])
    assert trained == 4 and capsys.readouterr().err == ""
    runs, _ = load_tables(exp_dir)
    cell = "moons(n_samples=80, standardize=none, noise=0.05) | linear | he_normal | binary_crossentropy"
    assert cell in set(runs["cell"]) and runs["cell"].nunique() == 4 and set(runs["status"]) == {"ok"}
    assert dict(zip(runs["model"], runs["engine"], strict=False)) == {"linear": "vectorized",
                                                                      "mlp(widths=[8], dropout=0.5)": "vectorized"}
    for _, run in runs.iterrows():
        config = json.loads((exp_dir / run["run_id"] / "config.json").read_text())
        assert label(config["dataset"]) == run["dataset"] and label(config["model"]) == run["model"]
    # each run saw its own dataset: noise 0.05 unstandardized moons are not the noise 0.2 ones
    linear = runs[runs["model"] == "linear"].set_index("dataset")
    assert linear["final_loss"].nunique() == 2
    assert (runs["epoch_time_s"] > 0).all() and runs["train_set_accuracy"].between(0, 1).all()
    assert "- dataset: moons(n_samples=80, standardize=none, noise=0.05)" in build_report(exp_dir, tmp_path / "r")\
        .read_text()


@pytest.mark.parametrize(("model", "compositions", "rtol"), [
    ({"name": "mlp", "widths": [8, 8], "batch_norm": True, "dropout": 0.2}, ((3.5, [3, 3, 2]), (1, [1] * 8)), 1e-3),
    ({"name": "cnn", "filters": [2], "widths": [6], "dropout": 0.2}, ((3.5, [3, 3, 2]),), 1e-4),
])
def test_a_group_split_into_stacks_within_engine_memory_gives_every_run_the_same_numbers(model, compositions, rtol,
                                                                                          tmp_path):
    """A member's numbers do not depend on which members share its stack: the grid in one stack,
    in stacks of 3, 3 and 2, or one run at a time gives the same tables, up to rounding: XLA and
    TensorFlow pick their kernels by shape (and by the machine), so the sums round differently
    (whether XLA compiles is the whole group's choice, the same for each stack; 3e-8 on the
    MLP without batch norm), and batch norm amplifies that as it does between the engines (up to
    6e-4 after 4 epochs here; see RTOL in tests/experiments/engines/test_vectorized.py). On an
    AMD EPYC the CNN's losses agreed to 2.3e-7 and its end-of-training gradient ratio (a ratio of
    small gradient norms) to 1.1e-5."""
    from experiments.runner import training_groups
    from experiments.spec import expand
    from experiments.spec.budget import GIB, member_bytes

    grid = {**BASE, "model": model, "learning_rate": [0.01, 0.05], "epochs": 4, "diagnostics": {"every": 2},
            "seeds": [0], "early_stopping": {"patience": 1, "min_delta": 0.02}}
    if model["name"] == "cnn":
        grid["dataset"] = {"name": "digits"}
        grid["losses"] = ["categorical_crossentropy", "mean_squared_error"]
    spec, (data,) = validate(grid)
    one = member_bytes(spec.model[0], data, spec.batch_size[0], spec.diagnostics.probe)
    tables = {}
    for members, sizes in ((None, [8]), *compositions):
        spec, datasets = validate({**grid, "engine_memory": members and members * one / GIB})
        stacks = training_groups(expand(spec), {label(spec.dataset[0]): datasets[0]}, stack_budget(spec))
        assert [len(s) for s in stacks] == sizes
        exp_dir, trained, _ = run_experiment(spec, datasets, tmp_path / str(members), progress=False)
        tables[members] = timeless_tables(exp_dir)
    assert set(tables[None][0]["status"]) == {"ok"} and (tables[None][0]["epochs_run"] < 4).any()  # early stops
    for members, _ in compositions:
        for mine, whole in zip(tables[members], tables[None], strict=True):
            pd.testing.assert_frame_equal(mine, whole, rtol=rtol, atol=1e-7)
