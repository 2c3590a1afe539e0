"""TensorBoard records: one logdir per experiment, `runs/<experiment>/`.

    <experiment>/                          HParams experiment config (every declared value of every
                                           axis, the metrics and their groups), custom-scalars layout,
                                           resolved config, environment and the report's verdicts
                                           (which differences are real) as text, report plots
    <experiment>/<dataset>/<cell>/seed_<k>/  a run: HParams session start and end (the true status;
                                             its reason as text), config text; scalars train/<metric>
                                             and validation/<metric> per epoch, test/<metric> once at
                                             the last epoch; per-layer diagnostics: scalars
                                             <quantity>/<layer>, kernel/<layer> and bias/<layer>
                                             histograms
    <experiment>/<dataset>/<cell>/mean_std/  per cell, over the seeds that finished: <split>/<metric>,
                                             the mean, and band/<split>/<metric>/lower and /upper
                                             (mean -+ std) for the margin charts (test at the cell's
                                             last epoch); the diagnostics' means <quantity>/<layer>

The splits are tag groups of one run per seed (not subruns), so the run selector lists a run per
seed and one per cell, and the URL `tensorboard_url` gives shows the cells' means. The HParams
session group of a run is its cell, and the seed is not an hparam, so a cell's seed repeats form
one group. Events are written with TensorBoard's own protobuf writers, not TensorFlow
ops: the same files `tf.summary` writes, without an op dispatch per value.
"""

import json
import time
from pathlib import Path

import numpy as np

from experiments.records import store
from experiments.records.experiment import load_experiment
from experiments.spec.grid import AXES

GROUPS = {"": "train", "val_": "validation", "test_": "test"}
MEAN_STD = "mean_std"


def split_metric(key):
    """`val_accuracy` -> ("validation", "accuracy"); `loss` -> ("train", "loss")."""
    for prefix, group in GROUPS.items():
        if prefix and key.startswith(prefix):
            return group, key[len(prefix):]
    return "train", key


class Events:
    """Event files under a folder: one writer per subfolder ("" is the folder itself)."""

    def __init__(self, root):
        self.root, self.writers = Path(root), {}

    def write(self, group, step, summary):
        """Append a `Summary` proto to a subfolder's event file."""
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        if not isinstance(summary, Summary):  # some helpers return TensorFlow's copy of the proto
            summary = Summary.FromString(summary.SerializeToString())
        try:
            if group not in self.writers:
                self.writers[group] = EventFileWriter(str(self.root / group), max_queue_size=1000)
            # the writer writes in a thread: a failed write (a full disk) surfaces at a later call
            self.writers[group].add_event(Event(wall_time=time.time(), step=step, summary=summary))
        except Exception as e:  # noqa: BLE001 - OSError, or TensorFlow's errors when it does the file I/O
            raise _storage_error(self.root, e) from None

    def scalars(self, group, step, values):
        """`{tag: number}` as one event (what `scalar_pb` writes per value, without its overhead)."""
        from tensorboard.plugins.scalar import metadata

        self.write(group, step, _summary(metadata.create_summary_metadata(display_name=None, description=None), {
            tag: _tensor(np.float32(value)) for tag, value in values.items()}))

    def histograms(self, group, step, tables):
        """`{tag: (buckets, 3) table}` (`diagnostics.histograms`) as histogram summaries."""
        from tensorboard.plugins.histogram import metadata

        tensors = {tag: _tensor(np.asarray(table, dtype="float64")) for tag, table in tables.items()}
        described = metadata.create_summary_metadata(display_name=None, description=None)
        self.write(group, step, _summary(described, tensors))

    def text(self, group, tag, text):
        from tensorboard.plugins.text.summary_v2 import text_pb

        self.write(group, 0, text_pb(tag, text))

    def close(self):
        """Flush and close every writer; `StorageError` when the disk refused what was written."""
        failed = None
        for writer in self.writers.values():
            try:
                writer.close()
            except Exception as e:  # noqa: BLE001 - as in `write`
                failed = failed or e
        self.writers = {}
        if failed is not None:
            raise _storage_error(self.root, failed)


def _storage_error(root, error):
    """A failure of an event writer as `StorageError`: TensorFlow's file errors (a full disk is its
    ResourceExhaustedError) carry no errno, only `<path>; <reason>`."""
    reason = getattr(error, "strerror", None) or str(error).rpartition("; ")[2] or type(error).__name__
    return store.StorageError(getattr(error, "errno", None), f"cannot write TensorBoard events in {str(root)!r}: "
                                                             f"{reason}")


def _tensor(array):
    """A numpy float32 scalar or float64 array as a TensorProto."""
    from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2

    if array.dtype == np.float32:  # a scalar: the default (empty) shape
        return tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[float(array)])
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n)
                                                   for n in array.shape])
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_shape=shape, tensor_content=array.tobytes())


def _summary(metadata, tensors):
    from tensorboard.compat.proto.summary_pb2 import Summary

    return Summary(value=[Summary.Value(tag=tag, metadata=metadata, tensor=tensor) for tag, tensor in tensors.items()])


def _code(obj):
    """JSON as a Markdown code block (the text dashboard renders Markdown)."""
    return "\n".join("    " + line for line in json.dumps(obj, indent=2, default=str).splitlines())


class RunLog(Events):
    """One run's events; call `metrics` per epoch, `diagnostics` when due, `end` last."""

    def __init__(self, run_dir, group_name, hparams, config):
        from tensorboard.plugins.hparams import api as hp

        super().__init__(run_dir)
        # the group name is the cell, so the seed repeats of a cell form one session group
        self.write("", 0, hp.hparams_pb(hparams, trial_id=group_name))
        self.text("", "config", _code(config))

    def metrics(self, step, logs):
        """Write `{metric: value}` (train, val_, test_ prefixes) as `<split>/<metric>` tags."""
        self.scalars("", step, {"/".join(split_metric(key)): value for key, value in logs.items()})

    def diagnostics(self, step, scalars, histograms):
        """Per-layer diagnostics, in the run's own folder (another writer per run costs more)."""
        self.scalars("", step, scalars)
        self.histograms("", step, histograms)

    def end(self, status, reason=""):
        from tensorboard.plugins.hparams import api_pb2
        from tensorboard.plugins.hparams import summary as hparams_summary

        code = api_pb2.STATUS_SUCCESS if status == "ok" else api_pb2.STATUS_FAILURE
        self.write("", 0, hparams_summary.session_end_pb(code))
        self.text("", "status", f"{status}: {reason}" if reason else status)
        self.close()


# -- the experiment's own records ------------------------------------------------------------


def session_hparams(axes):
    """A run's HParams from its axes (`RunSpec.axes`, or a run listed in experiment.json): every
    axis but the seed, so a cell's seed repeats form one session group."""
    return {key: float(axes[key]) if key == "learning_rate" else axes[key] for _, key, _ in AXES if key in axes}


def run_log(run_dir, run):
    """A run's TensorBoard log, the sink `rundir.RunRecorder` writes to: its HParams session is
    grouped by the run's cell, named by its label (`he_normal | huber`)."""
    return RunLog(run_dir, run.cell, session_hparams(run.axes), run.config.as_dict())


def tensorboard_url(port, headline):
    """The address that opens an experiment's TensorBoard on the comparison: Time Series with the
    cells' mean runs only (`runFilter`), the validation curves (`tagFilter`; the test metrics, a
    point at the last epoch, come first by name otherwise) and unsmoothed curves (`smoothing`):
    TensorBoard's own deep-link parameters (webapp/routes/dashboard_deeplink_provider)."""
    import urllib.parse

    query = urllib.parse.urlencode({"runFilter": MEAN_STD, "tagFilter": "^validation/", "smoothing": 0})
    return f"http://127.0.0.1:{port}/?{query}#timeseries"


def bands_url(port):
    """The Custom Scalars dashboard on the cells' mean +- std bands: its run regex (`regexInput`,
    hash parameters of TensorBoard's older dashboards) selects the mean runs, which it otherwise
    leaves unticked beyond 40 runs; unsmoothed (`_smoothingWeight`)."""
    return f"http://127.0.0.1:{port}/#custom_scalars&regexInput={MEAN_STD}&_smoothingWeight=0"


def hparams_config(spec, runs):
    """The HParams experiment: each axis' declared values (as the runs label them, `runs` as
    experiment.json lists them), and the train/validation/test metrics; diagnostics and
    aggregates are not metrics."""
    from tensorboard.plugins.hparams import api as hp

    values = [session_hparams(r) for r in runs]
    domains = {key: list(dict.fromkeys(v[key] for v in values)) for key in values[0]}
    varying = {key: domain for key, domain in domains.items() if len(domain) > 1} or domains  # no fixed columns
    hparams = [hp.HParam(key, hp.Discrete(domain)) for key, domain in varying.items()]
    return hp.hparams_config_pb(hparams=hparams, metrics=session_metrics(spec.metrics, ("test", "validation", "train")))


def session_metrics(metrics, splits):
    """The HParams metrics, `<split>/<metric>`, in the order the dashboard shows them (it ticks the
    first five): the headline metric and the loss of each split in turn, then the other metrics."""
    from tensorboard.plugins.hparams import api as hp

    kinds = {"train": hp.Metric.TRAINING, "validation": hp.Metric.VALIDATION, "test": None}
    first = [(split, m) for split in splits for m in (metrics[0], "loss")]
    rest = [(split, m) for split in splits for m in metrics[1:]]
    return [hp.Metric(f"{split}/{m}", display_name=f"{split} {m}", dataset_type=kinds[split])
            for split, m in first + rest]


def _layout(tags, quantities):
    """A custom-scalars layout: one margin chart (mean, band from lower to upper) per tag; one chart
    per diagnostics quantity with a series per layer (and per selected run)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata
    from tensorboard.util import tensor_util

    series = layout_pb2.MarginChartContent.Series
    charts = [layout_pb2.Chart(title=f"{tag} (mean +- std over seeds)", margin=layout_pb2.MarginChartContent(
        series=[series(value=tag, lower=f"band/{tag}/lower", upper=f"band/{tag}/upper")])) for tag in tags]
    layers = [layout_pb2.Chart(title=f"{q} per layer (mean over seeds)", multiline=layout_pb2.MultilineChartContent(
        tag=[f"^{q}/"])) for q in quantities]
    layout = layout_pb2.Layout(category=[layout_pb2.Category(title="mean +- std over seeds", chart=charts)] + (
        [layout_pb2.Category(title="per-layer diagnostics", chart=layers)] if layers else []))
    tensor = tensor_util.make_tensor_proto(np.array(layout.SerializeToString(), dtype=np.object_))
    return Summary(value=[Summary.Value(tag=metadata.CONFIG_SUMMARY_TAG, metadata=metadata.create_summary_metadata(),
                                        tensor=tensor)])


def _image(tag, png):
    """A PNG file as an image summary (TensorBoard reads the encoded bytes as they are)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    data = Path(png).read_bytes()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # the IHDR chunk
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=height, width=width, colorspace=4, encoded_image_string=data))])


def curve_tags(spec):
    """The metrics that get mean +- std runs, as epochs.csv and runs.csv name them: `val_<m>`,
    `test_<m>`, `train_<m>`."""
    return [f"{split}_{m}" for m in ["loss", *spec.metrics] for split in ("val", "test", "train")]


def _tag(column):
    """epochs.csv's `val_accuracy` -> the tag `validation/accuracy`."""
    return "/".join(split_metric(column.removeprefix("train_")))


def _diagnostics(report_dir):
    """The report's diagnostics.csv (a row per run x step x quantity x layer), or None."""
    import pandas as pd

    path = Path(report_dir) / "diagnostics.csv" if report_dir else None
    if not (path and path.is_file()):
        return None
    table = pd.read_csv(path, keep_default_na=False, na_values=["nan"])
    return table.assign(value=pd.to_numeric(table["value"], errors="coerce"))  # empty: not measured


def write_experiment(exp_dir, report_dir=None, tables=None):
    """(Re)write the experiment's TensorBoard records: HParams config, layout, config and
    environment text, the report's plots (from `report_dir`), and the mean +- std runs (from
    `tables`, the `results.load_tables` pair, and the report's diagnostics.csv)."""
    exp_dir = Path(exp_dir)
    experiment = load_experiment(exp_dir)
    spec = experiment["spec"]
    diagnostics = _diagnostics(report_dir)
    quantities = [] if diagnostics is None else list(dict.fromkeys(diagnostics["quantity"]))
    for old in exp_dir.glob("events.out.tfevents.*"):
        store.remove(old, exp_dir)
    events = Events(exp_dir)
    events.write("", 0, hparams_config(spec, experiment["runs"]))
    events.write("", 0, _layout([_tag(c) for c in curve_tags(spec)], quantities))
    events.text("", "config", _code(spec.as_dict()))
    events.text("", "environment", _code(experiment["environment"]))
    verdicts = Path(report_dir) / "verdicts.md" if report_dir else None
    if verdicts and verdicts.is_file():  # the report's "Which differences are real"
        events.text("", "verdicts", verdicts.read_text())
    for png in sorted(Path(report_dir).glob("*.png")) if report_dir else []:
        events.write("", 0, _image(f"report/{png.stem}", png))
    events.close()
    if tables is not None:
        write_mean_std(exp_dir, spec, *tables, diagnostics)


def cell_of(frame):
    """A table's `run_id`s as their cells' folders (`digits/he_normal__huber`)."""
    return frame["run_id"].str.rsplit("/", n=1).str[0]


def write_mean_std(exp_dir, spec, runs, epochs, diagnostics=None):
    """Per cell, `<cell>/mean_std`, over the seeds that finished ok: each curve's mean and mean -+
    std per epoch, the test metrics' at the cell's last epoch, and the mean of each diagnostic."""
    import pandas as pd

    for cell in set(cell_of(runs)):
        store.remove(Path(exp_dir) / cell / MEAN_STD, exp_dir)
    ok = runs[runs["status"] == "ok"]
    if epochs.empty or ok.empty:
        return
    epochs = epochs[epochs["run_id"].isin(ok["run_id"])]
    last = epochs.groupby(cell_of(epochs))["epoch"].max()
    tested = [c for c in curve_tags(spec) if c.startswith("test_") and c in ok]
    finals = ok.assign(epoch=cell_of(ok).map(last))[["run_id", "epoch", *tested]]
    per_epoch = pd.concat([epochs, finals], ignore_index=True)  # test columns only on the last epoch's row
    tags = [t for t in curve_tags(spec) if t in per_epoch]
    layers = pd.DataFrame(columns=["run_id", "step", "quantity", "layer", "value"]) if diagnostics is None \
        else diagnostics[diagnostics["run_id"].isin(ok["run_id"])]
    for cell, part in per_epoch.groupby(cell_of(per_epoch)):
        stats = part.groupby("epoch")[tags].agg(["mean", "std"])
        events = Events(Path(exp_dir) / cell / MEAN_STD)
        for epoch, row in stats.iterrows():
            values = {}
            for column in tags:
                mean, std = row[(column, "mean")], np.nan_to_num(row[(column, "std")])  # one seed: no spread
                if not np.isnan(mean):
                    tag = _tag(column)
                    values.update({tag: mean, f"band/{tag}/lower": mean - std, f"band/{tag}/upper": mean + std})
            events.scalars("", int(epoch), values)
        diagnosed = layers[cell_of(layers) == cell].groupby(["step", "quantity", "layer"], sort=False)["value"].mean()
        for step, values in diagnosed.groupby(level="step", sort=False):
            events.scalars("", int(step), {f"{q}/{layer}": v for (_, q, layer), v in values.items() if np.isfinite(v)})
        events.close()
