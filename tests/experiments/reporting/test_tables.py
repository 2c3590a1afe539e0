"""The tidy tables, read from run folders written by hand (no training): every listed run appears,
unfinished ones too; training metrics get a `train_` prefix; cells are mean +- std over the
seeds that finished ok, ranked by the metric's direction."""

import pytest
from conftest import TINY

from experiments.records import rundir, store
from experiments.records.experiment import EXPERIMENT
from experiments.reporting.tables import format_cell, format_reached, load_tables, summarize_cells
from experiments.spec import expand, validate


def _experiment(tmp_path, accuracies):
    """TINY's runs listed in experiment.json; run i finished with test accuracy accuracies[i]
    (None: not finished, "diverged": its loss became NaN)."""
    spec, _ = validate(TINY)
    runs = expand(spec)
    store.write_json(tmp_path / EXPERIMENT, {
        "spec": spec.as_dict(), "environment": {},
        "runs": [{"run_id": r.run_id, "cell": r.cell, **r.axes, "engine": "vectorized"} for r in runs]})
    for run, accuracy in zip(runs, accuracies, strict=True):
        if accuracy is None:
            continue
        recorder = rundir.RunRecorder(run, tmp_path / run.run_id, tmp_path)
        recorder.start()
        recorder.epoch({"loss": float("nan") if accuracy == "diverged" else 0.5, "accuracy": 0.6,
                        "val_loss": 0.5, "val_accuracy": 0.6})
        recorder.finish("ok", 1.0, test=None if accuracy == "diverged" else {"loss": 0.3, "accuracy": accuracy})
    return runs


def test_every_listed_run_appears_and_training_metrics_are_prefixed(tmp_path):
    runs = _experiment(tmp_path, [0.9, 0.8, None, 0.5, "diverged", 0.6, 0.7, 0.7])
    table, epochs = load_tables(tmp_path)
    assert list(table["run_id"]) == [r.run_id for r in runs]
    assert list(table["status"]) == ["ok", "ok", "unfinished", "ok", "diverged", "ok", "ok", "ok"]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(epochs) and "loss" in epochs
    assert len(epochs) == 7 and set(epochs["loss"]) == set(table["loss"])  # `loss` is the loss function axis


def test_cells_are_mean_and_std_over_ok_seeds_ranked_by_direction(tmp_path):
    _experiment(tmp_path, [0.9, 0.8, None, 0.5, "diverged", 0.6, 0.7, 0.7])
    table, _ = load_tables(tmp_path)
    cells = summarize_cells(table, "test_accuracy").set_index(["initializer", "loss"])
    assert list(cells["mean"].round(6)) == [0.85, 0.7, 0.6, 0.5]  # best first: accuracy is maximized
    best = cells.loc[("he_normal", "binary_crossentropy")]
    assert best["n"] == 2 and best["std"] == pytest.approx(0.0707107) and best["ok"] == 2
    assert cells.loc[("zeros", "binary_crossentropy"), ["n", "diverged"]].tolist() == [1, 1]
    assert cells.loc[("he_normal", "mean_squared_error"), ["n", "unfinished"]].tolist() == [1, 1]
    losses = summarize_cells(table, "test_loss")
    assert losses["mean"].is_monotonic_increasing  # a loss is minimized
    assert format_cell(0.85, 0.0707107, 2) == "0.850 +- 0.071 (2)" and format_cell(float("nan"), 0, 0) == "-"


def test_thresholds_say_how_many_seeds_reached_them_and_one_seed_shows_no_spread(tmp_path):
    _experiment(tmp_path, [0.9, 0.8, None, 0.5, "diverged", 0.6, 0.7, 0.7])
    table, _ = load_tables(tmp_path)
    cells = summarize_cells(table, "test_accuracy").set_index(["initializer", "loss"])
    # every epoch logged val_accuracy 0.6, the TINY threshold is 0.6: every ok seed reached it at epoch 1
    assert cells["reached_val_accuracy"].tolist() == cells["ok"].tolist()
    assert format_reached(1.0, 2, 2) == "1.0 (2 of 2 seeds)" and format_reached(float("nan"), 0, 3) == \
        "never (0 of 3 seeds)"
    assert format_cell(0.5, float("nan"), 1) == "0.500 (1)"


def test_files_are_written_with_the_users_umask(tmp_path):
    import os

    old = os.umask(0o027)
    try:
        store.write_atomic(tmp_path / "a.csv", "x\n")
        store.write_with(tmp_path / "b.keras", lambda path: open(path, "w").close(), suffix=".tmp.keras")
    finally:
        os.umask(old)
    assert {oct(p.stat().st_mode & 0o777) for p in (tmp_path / "a.csv", tmp_path / "b.keras")} == {"0o640"}
