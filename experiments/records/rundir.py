"""A run's directory is its whole record: the resolved config first, then, when the run ends,
its history and the result. The record's files are written atomically (temp file + rename), so a
killed process leaves either the old file or the new one, and result.json comes last (a run
without it is retrained from scratch). Each epoch goes to the TensorBoard events as it ends; the
history stays in memory until the end (appending a row per epoch cost about 0.17 ms, some 1.6 s
over the 9,500 epochs the runs of `make claims` train).

    <experiment dir>/<run_id>/config.json    resolved config of the run
                              history.csv    one row per epoch (written just before result.json)
                              diagnostics.csv  per-layer diagnostics: step, quantity, layer, value
                                             (written just before result.json)
                              model.keras    the trained model (after any early-stopping restore), when
                                             the spec saves models and the run finished ok
                              result.json    status, times, final/best/test/train_set metrics, diagnostics at
                                             step 0 (diag_init_*) and at the end (diag_end_*); written last
                              train/ validation/ test/ and events   TensorBoard (diagnostics in the events)
"""

import contextlib
import csv
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.records import store
from experiments.records.environment import library_versions
from experiments.spec.diagnostics import summary
from experiments.spec.types import RunConfig
from models.metrics import greater_is_better

CONFIG, HISTORY, RESULT, DIAGNOSTICS = "config.json", "history.csv", "result.json", "diagnostics.csv"
MODEL = "model.keras"
STATUSES = ("ok", "diverged", "failed")


def as_stored(config):
    """A run's config (a `RunConfig`, or its dict) as config.json holds it (JSON types, NaN as null)."""
    return json.loads(json.dumps(store.clean(config.as_dict() if isinstance(config, RunConfig) else config)))


@dataclass(frozen=True)
class RunState:
    """What a run's folder holds: `new` (nothing), `unfinished` (no result yet), `finished`,
    `stale` (finished under another config; `detail` names the changed fields) or `damaged`
    (`detail` names the file and what is wrong with it)."""

    kind: str
    detail: str = ""

    @property
    def done(self):
        return self.kind in ("finished", "stale")


def read_result(run_dir):
    """(result, "") when a run's record is whole: result.json a dict with a known status,
    history.csv one row per recorded epoch, diagnostics.csv a table where the result has
    diagnostics; otherwise (None, which file and what is wrong)."""
    run_dir = Path(run_dir)
    try:
        result = store.read_json(run_dir / RESULT)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"{RESULT}: {type(e).__name__ if not isinstance(e, ValueError) else 'not valid JSON'}"
    if not isinstance(result, dict) or result.get("status") not in STATUSES or \
            not isinstance(result.get("epochs_run"), int):
        return None, f"{RESULT}: not a run result"
    if result["epochs_run"]:
        try:
            with open(run_dir / HISTORY, newline="") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            return None, f"{HISTORY}: {e.strerror if isinstance(e, OSError) else 'not valid CSV'}"
        header = rows[0] if rows else []
        if "epoch" not in header or "loss" not in header or len(rows) != result["epochs_run"] + 1 or \
                any(len(row) != len(header) for row in rows):
            return None, f"{HISTORY}: not {result['epochs_run']} whole epochs"
    if any(k.startswith("diag_") for k in result):
        try:
            with open(run_dir / DIAGNOSTICS, newline="") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            return None, f"{DIAGNOSTICS}: {e.strerror if isinstance(e, OSError) else 'not valid CSV'}"
        if not rows or rows[0] != ["step", "quantity", "layer", "value"] or any(len(r) != 4 for r in rows):
            return None, f"{DIAGNOSTICS}: not a diagnostics table"
    return result, ""


def inspect(run_dir, config):
    """The `RunState` of a run's folder for a run of this config."""
    run_dir = Path(run_dir)
    if not (run_dir / RESULT).exists():
        return RunState("unfinished" if run_dir.exists() else "new")
    result, why = read_result(run_dir)
    if result is None:
        return RunState("damaged", why)
    try:
        old = store.read_json(run_dir / CONFIG)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return RunState("damaged", f"{CONFIG}: {'missing' if isinstance(e, FileNotFoundError) else 'not valid JSON'}")
    if not isinstance(old, dict):
        return RunState("damaged", f"{CONFIG}: not a run config")
    changed = changed_fields(old, as_stored(config))
    return RunState("stale", changed) if changed else RunState("finished")


def changed_fields(old, new):
    """`epochs (20 -> 5), model.widths ([64] -> [32])`: the fields of two configs that differ."""
    out = []
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{k} ({a.get(k)!r} -> {b.get(k)!r})" for k in dict.fromkeys([*a, *b])
                    if a.get(k) != b.get(k)]
        else:
            out.append(f"{key} ({a!r} -> {b!r})")
    return ", ".join(out)


def diverged(logs):
    """The divergence rule every engine and tuner trial shares: the training loss is NaN or inf."""
    return not math.isfinite(logs.get("loss", math.nan))


class _NoLog:
    """The sink of a run recorded without a log."""

    def __init__(self, run_dir, run):
        pass

    def metrics(self, step, logs):
        pass

    def diagnostics(self, step, scalars, histograms):
        pass

    def end(self, status, reason=""):
        pass

    def close(self):
        pass


def start(run_dir, config, root):
    """Empty the run's folder (a rerun or an interrupted run leaves old events) and write its config."""
    run_dir = Path(run_dir)
    if run_dir.exists():
        store.remove(run_dir, root)
    store.write_json(run_dir / CONFIG, as_stored(config))


class RunRecorder:
    """Everything an engine reports about one run goes through here, whatever the engine.

    Args:
        run: the `RunSpec`.
        run_dir: its folder, inside `root` (the experiment's folder).
        log: optional `fn(run_dir, run) -> sink` opening the run's log (TensorBoard:
            `records.events.run_log`): a sink takes `metrics(step, logs)`, `diagnostics(step,
            scalars, histograms)`, `end(status, reason)` and `close()`.
        on_epoch: optional `fn(run, row)` called after each epoch (the progress bar).
        on_finish: optional `fn(run, result)` called once the result is written.
        write: False for a run that trains only because its stacked group does (it is finished
            already): it is followed like the others (divergence masks it) but nothing is written.
        first_epoch: the number of the first epoch recorded (a Hyperband trial continues another).
        save_model: keep the model a run that finishes ok hands to `finish`, as model.keras.
    """

    def __init__(self, run, run_dir, root, log=None, on_epoch=None, on_finish=None, write=True, first_epoch=1,
                 save_model=False):
        self.run, self.run_dir, self.root, self.open_log = run, Path(run_dir), root, log or _NoLog
        self.first_epoch, self.save_model = first_epoch, save_model
        self.on_epoch, self.on_finish, self.write = on_epoch, on_finish, write
        self.history, self.log, self.diverged = [], None, False
        self.epoch_times, self.clock = [], None  # seconds between epoch ends (the first from start)
        self.diagnosed = {}  # step -> diagnostics scalars; diagnostics.csv is written with the result

    def start(self):
        self.clock = time.perf_counter()
        if self.write:
            start(self.run_dir, self.run.config, self.root)
            self.log = self.open_log(self.run_dir, self.run)

    def epoch(self, logs):
        """Record one epoch's metrics; returns False when the loss is NaN or inf (diverged)."""
        now = time.perf_counter()
        self.epoch_times.append(now - self.clock)
        self.clock = now
        row = {"epoch": self.first_epoch + len(self.history), **{k: float(v) for k, v in logs.items()}}
        self.history.append(row)
        if diverged(row):
            self.diverged = True
        if self.write:
            self.log.metrics(row["epoch"], {k: v for k, v in row.items() if k != "epoch"})
            if self.on_epoch:
                self.on_epoch(self.run, row)
        return not self.diverged

    def diagnostics(self, step, scalars, histograms):
        """Record per-layer diagnostics (`experiments.diagnostics.measure`) at a step (0 = initial)."""
        self.diagnosed[step] = scalars
        if self.write:
            self.log.diagnostics(step, scalars, histograms)

    @property
    def saves_model(self):
        """Whether `finish` would keep a model: the engine builds one only then."""
        return self.save_model and self.write

    def finish(self, status, wall_time, test=None, reason="", train_set=None, share=1.0, model=None):
        """Write model.keras (with `model`, for a run that finished ok) and result.json (last), and
        close the TensorBoard session with the true status.

        Args:
            test, train_set: metrics evaluated after training on the test and training sets.
            share: this run's share of the measured times (runs trained together split them).
            model: the trained Keras model, to save when the spec saves models.
        """
        if status == "ok" and self.diverged:
            status = "diverged"
        if status == "diverged" and not reason:
            reason = f"loss became {self.history[-1]['loss']} at epoch {self.history[-1]['epoch']}"
        test = {f"test_{k}": float(v) for k, v in (test or {}).items()}
        result = {
            "run_id": self.run.run_id, "cell": self.run.cell, **self.run.axes,
            "status": status, "reason": reason, "epochs_run": len(self.history),
            "wall_time_s": round(wall_time, 3), "epoch_time_s": self._epoch_time(share),
            **summarize(self.history, self.run.config), **test,
            **{f"train_set_{k}": float(v) for k, v in (train_set or {}).items()},
            **self._diagnosed(), "libraries": library_versions(),
        }
        if not self.write:
            return result
        if test and self.history:
            self.log.metrics(self.history[-1]["epoch"], test)
        self.log.end(status, reason)
        if self.history:  # not synced, nor are diagnostics: without result.json the run is redone anyway
            store.write_rows(self.run_dir / HISTORY, self.history, sync=False)
        if self.diagnosed:
            store.write_rows(self.run_dir / DIAGNOSTICS, sync=False, rows=[
                {"step": step, "quantity": k.partition("/")[0], "layer": k.partition("/")[2], "value": v}
                for step, scalars in self.diagnosed.items() for k, v in scalars.items()])
        if model is not None and self.saves_model and status == "ok":
            store.write_with(self.run_dir / MODEL, model.save, suffix=".tmp.keras")
        store.write_json(self.run_dir / RESULT, result)
        if self.on_finish:
            self.on_finish(self.run, result)
        return result

    def close(self):
        """Close the run's TensorBoard files if it ended without `finish` (an error, an interrupt):
        they are abandoned with the run (it is retrained), so a failure to flush them does not count."""
        if self.log is not None:
            with contextlib.suppress(OSError):
                self.log.close()

    def _epoch_time(self, share):
        """Median seconds per epoch; the first epoch (graph tracing and compiling) counts only alone."""
        times = self.epoch_times[1:] or self.epoch_times
        return round(statistics.median(times) * share, 5) if times else None

    def _diagnosed(self):
        """diag_init_* (step 0) and diag_end_* (the latest step) headline figures."""
        if not self.diagnosed:
            return {}
        first, last = min(self.diagnosed), max(self.diagnosed)
        return {f"diag_{when}_{k}": v for when, step in (("init", first), ("end", last))
                for k, v in summary(self.diagnosed[step]).items()}


def summarize(history, config):
    """Final and best value of every recorded metric, and epochs to reach each threshold."""
    out = {}
    if not history:
        return out
    metrics = [k for k in history[0] if k != "epoch"]
    for m in metrics:
        values = [row[m] for row in history if m in row and math.isfinite(row[m])]
        out[f"final_{m}"] = history[-1].get(m)
        if values:
            out[f"best_{m}"] = max(values) if greater_is_better(m) else min(values)
    for m, target in config.thresholds.items():
        better = greater_is_better(m)
        reached = [row["epoch"] for row in history if m in row and (row[m] >= target if better else row[m] <= target)]
        out[f"epochs_to_{m}"] = reached[0] if reached else None
    return out
