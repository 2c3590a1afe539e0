"""A run's folder as `rundir` writes and reads it, without training: the config first, a history
row per epoch, the result last; the divergence rule; what `inspect` makes of each state."""

import json

from conftest import TINY

from experiments.records import rundir
from experiments.spec import expand, validate


def _run():
    spec, _ = validate(TINY)
    return expand(spec)[0]


def _epochs(recorder, losses):
    return [recorder.epoch({"loss": loss, "accuracy": 0.5, "val_loss": loss, "val_accuracy": 0.5}) for loss in losses]


def test_a_run_folder_is_written_in_order_and_reads_back_whole(tmp_path):
    run = _run()
    recorder = rundir.RunRecorder(run, tmp_path / run.run_id, tmp_path)
    recorder.start()
    folder = tmp_path / run.run_id
    assert rundir.inspect(folder, run.config).kind == "unfinished"
    assert json.loads((folder / rundir.CONFIG).read_text()) == rundir.as_stored(run.config)
    assert _epochs(recorder, [0.7, 0.5]) == [True, True]
    assert not (folder / rundir.HISTORY).exists()  # kept in memory until the run ends
    result = recorder.finish("ok", 1.0, test={"loss": 0.4, "accuracy": 0.75})
    history = (folder / rundir.HISTORY).read_text().splitlines()
    assert history[0] == "epoch,loss,accuracy,val_loss,val_accuracy" and len(history) == 3
    assert result["status"] == "ok" and result["epochs_run"] == 2 and result["best_val_loss"] == 0.5
    assert result["test_accuracy"] == 0.75 and result["epochs_to_val_accuracy"] is None  # threshold 0.6 not reached
    assert rundir.read_result(folder) == (json.loads((folder / rundir.RESULT).read_text()), "")
    assert rundir.inspect(folder, run.config).kind == "finished"


def test_a_nan_or_inf_loss_is_divergence_and_the_result_says_where(tmp_path):
    assert rundir.diverged({"loss": float("nan")}) and rundir.diverged({"loss": float("inf")})
    assert not rundir.diverged({"loss": 1e30})
    run = _run()
    recorder = rundir.RunRecorder(run, tmp_path / run.run_id, tmp_path, first_epoch=4)
    recorder.start()
    assert _epochs(recorder, [0.5, float("inf")]) == [True, False]
    result = recorder.finish("ok", 1.0)
    assert result["status"] == "diverged" and result["reason"] == "loss became inf at epoch 5"


def test_inspect_tells_stale_and_damaged_records_apart(tmp_path):
    run = _run()
    folder = tmp_path / run.run_id
    assert rundir.inspect(folder, run.config).kind == "new"
    recorder = rundir.RunRecorder(run, folder, tmp_path)
    recorder.start()
    _epochs(recorder, [0.7])
    recorder.finish("ok", 1.0)
    changed = run.config.replace(epochs=5)
    state = rundir.inspect(folder, changed)
    assert state.kind == "stale" and state.done and state.detail == "epochs (2 -> 5)"
    with open(folder / rundir.HISTORY, "a") as f:
        f.write("2,0.5\n")  # a torn row
    assert rundir.inspect(folder, run.config) == rundir.RunState("damaged", "history.csv: not 1 whole epochs")
    (folder / rundir.RESULT).write_text("{")
    assert rundir.inspect(folder, run.config) == rundir.RunState("damaged", "result.json: not valid JSON")


def test_a_recorder_that_does_not_write_leaves_the_folder_alone(tmp_path):
    run = _run()
    recorder = rundir.RunRecorder(run, tmp_path / run.run_id, tmp_path, write=False)
    recorder.start()
    _epochs(recorder, [0.7])
    assert recorder.finish("ok", 1.0)["epochs_run"] == 1 and not (tmp_path / run.run_id).exists()
