"""A run's directory is its whole record: the resolved config first, then the history as it
grows, then the result. config.json and result.json are written atomically (temp file + rename),
so a killed process leaves either the old file or the new one; history.csv grows by one appended
row per epoch (a run without result.json is retrained from scratch, so a torn row never counts).

    <experiment dir>/<run_id>/config.json    resolved config of the run
                              history.csv    one row per epoch, appended as it ends
                              diagnostics.csv  per-layer diagnostics: step, quantity, layer, value
                                             (written just before result.json)
                              result.json    status, times, final/best/test/train_set metrics, diagnostics at
                                             step 0 (diag_init_*) and at the end (diag_end_*); written last
                              train/ validation/ test/ and events   TensorBoard (diagnostics in the events)
"""

import csv
import io
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

CONFIG, HISTORY, RESULT, DIAGNOSTICS = "config.json", "history.csv", "result.json", "diagnostics.csv"
STATUSES = ("ok", "diverged", "failed")


def write_atomic(path, text, sync=True):
    """Write text to path through a temp file in the same folder and a rename (after an fsync,
    unless `sync` is False)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _clean(value):
    """JSON has no NaN or inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(path, obj):
    write_atomic(path, json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text())


def write_rows(path, rows, sync=True):
    """Write a list of dicts as CSV (columns in first-seen order)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue(), sync)


def is_finished(run_dir, config):
    """True when the run wrote its result under this very config (so a resume may skip it)."""
    run_dir = Path(run_dir)
    try:
        return (run_dir / RESULT).is_file() and read_json(run_dir / CONFIG) == json.loads(json.dumps(_clean(config)))
    except (OSError, ValueError):
        return False


def start(run_dir, config):
    """Empty the run's folder (a rerun or an interrupted run leaves old events) and write its config."""
    run_dir = Path(run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    write_json(run_dir / CONFIG, config)


class RunRecorder:
    """Everything an engine reports about one run goes through here, whatever the engine.

    Args:
        run: the `RunSpec`.
        run_dir: its folder.
        on_epoch: optional `fn(run, row)` called after each epoch (the progress bar).
        on_finish: optional `fn(run, result)` called once the result is written.
    """

    def __init__(self, run, run_dir, on_epoch=None, on_finish=None):
        self.run, self.run_dir, self.on_epoch, self.on_finish = run, Path(run_dir), on_epoch, on_finish
        self.history, self.log, self.diverged = [], None, False
        self.epoch_times, self.clock = [], None  # seconds between epoch ends (the first from start)
        self.diagnosed = {}  # step -> diagnostics scalars; diagnostics.csv is written with the result

    def start(self):
        from experiments.tensorboard_log import RunLog, session_hparams

        start(self.run_dir, self.run.config)
        self.clock = time.perf_counter()
        self.log = RunLog(self.run_dir, self.run.run_id.rsplit("/", 1)[0], session_hparams(self.run), self.run.config)

    def epoch(self, logs):
        """Record one epoch's metrics; returns False when the loss is NaN or inf (diverged)."""
        now = time.perf_counter()
        self.epoch_times.append(now - self.clock)
        self.clock = now
        row = {"epoch": len(self.history) + 1, **{k: float(v) for k, v in logs.items()}}
        self.history.append(row)
        with open(self.run_dir / HISTORY, "a") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.history[0]), lineterminator="\n")
            if row["epoch"] == 1:
                writer.writeheader()
            writer.writerow(row)
        self.log.metrics(row["epoch"], {k: v for k, v in row.items() if k != "epoch"})
        if not math.isfinite(row["loss"]):
            self.diverged = True
        if self.on_epoch:
            self.on_epoch(self.run, row)
        return not self.diverged

    def diagnostics(self, step, scalars, histograms):
        """Record per-layer diagnostics (`experiments.diagnostics.measure`) at a step (0 = initial)."""
        self.diagnosed[step] = scalars
        self.log.diagnostics(step, scalars, histograms)

    def finish(self, status, wall_time, test=None, reason="", train_set=None, share=1.0):
        """Write result.json (last) and close the TensorBoard session with the true status.

        Args:
            test, train_set: metrics evaluated after training on the test and training sets.
            share: this run's share of the measured times (runs trained together split them).
        """
        from experiments.environment import library_versions

        if status == "ok" and self.diverged:
            status = "diverged"
        if status == "diverged" and not reason:
            reason = f"loss became {self.history[-1]['loss']} at epoch {len(self.history)}"
        test = {f"test_{k}": float(v) for k, v in (test or {}).items()}
        if test and self.history:
            self.log.metrics(len(self.history), test)
        self.log.end(status, reason)
        result = {
            "run_id": self.run.run_id, "cell": self.run.cell, **self.run.axes,
            "status": status, "reason": reason, "epochs_run": len(self.history),
            "wall_time_s": round(wall_time, 3), "epoch_time_s": self._epoch_time(share),
            **summarize(self.history, self.run.config), **test,
            **{f"train_set_{k}": float(v) for k, v in (train_set or {}).items()},
            **self._diagnosed(), "libraries": library_versions(),
        }
        if self.diagnosed:  # like history.csv, not synced: without result.json the run is redone anyway
            write_rows(self.run_dir / DIAGNOSTICS, sync=False, rows=[
                {"step": step, "quantity": k.partition("/")[0], "layer": k.partition("/")[2], "value": v}
                for step, scalars in self.diagnosed.items() for k, v in scalars.items()])
        write_json(self.run_dir / RESULT, result)
        if self.on_finish:
            self.on_finish(self.run, result)
        return result

    def _epoch_time(self, share):
        """Median seconds per epoch; the first epoch (graph tracing and compiling) counts only alone."""
        times = self.epoch_times[1:] or self.epoch_times
        return round(statistics.median(times) * share, 5) if times else None

    def _diagnosed(self):
        """diag_init_* (step 0) and diag_end_* (the latest step) headline figures."""
        from experiments.diagnostics import summary

        if not self.diagnosed:
            return {}
        first, last = min(self.diagnosed), max(self.diagnosed)
        return {f"diag_{when}_{k}": v for when, step in (("init", first), ("end", last))
                for k, v in summary(self.diagnosed[step]).items()}


def summarize(history, config):
    """Final and best value of every recorded metric, and epochs to reach each threshold."""
    from models.losses import greater_is_better

    out = {}
    if not history:
        return out
    metrics = [k for k in history[0] if k != "epoch"]
    for m in metrics:
        values = [row[m] for row in history if m in row and math.isfinite(row[m])]
        out[f"final_{m}"] = history[-1].get(m)
        if values:
            out[f"best_{m}"] = max(values) if greater_is_better(m) else min(values)
    for m, target in config.get("thresholds", {}).items():
        better = greater_is_better(m)
        reached = [row["epoch"] for row in history if m in row and (row[m] >= target if better else row[m] <= target)]
        out[f"epochs_to_{m}"] = reached[0] if reached else None
    return out
