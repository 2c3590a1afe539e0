"""Metrics a spec may ask for, one catalogue entry each: the tasks it applies to, its direction,
the Keras metric the reference engine compiles, and the per-batch sums from which the
vectorized engine computes the same value over an epoch (what Keras' streaming metric adds up).

Importing this module does not import TensorFlow; building a metric or its sums does.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from initializers.registry import check_user_name, source_of
from models.losses import CLASSIFICATION, TASKS


@dataclass(frozen=True)
class Metric:
    """One metric.

    Args:
        tasks: the tasks it applies to.
        greater_is_better: its direction (losses and errors: False).
        keras: `(name, head) -> a new Keras metric` for the head's target encoding.
        sums: `(y, p, thresholds) -> [(members, k) tensors]`: per-member sums over a batch of
            targets and outputs of shape (members, batch, units).
        value: `(sums (members, k) array, n examples, thresholds) -> (members,) values`.
        columns: `(thresholds, units) -> k`, the number of sum columns for a head of `units` outputs.
    """

    tasks: tuple
    greater_is_better: bool
    keras: Callable
    sums: Callable
    value: Callable
    columns: Callable = lambda thresholds, units: 1
    thresholds: bool = False  # whether it needs Keras' AUC thresholds
    raw: bool = False  # computed on targets and outputs in the dataset's own units (`build_metrics`' scale)
    source: dict | None = None  # a user's own metric: what experiment.json records of it
    obj: Callable | None = None  # a user's own metric: the function


def _keras(class_name):
    def build(name, head):
        import keras

        return getattr(keras.metrics, class_name)(name=name)

    return build


def _accuracy(name, head):
    import keras

    return (keras.metrics.CategoricalAccuracy if head.target == "one_hot" else keras.metrics.BinaryAccuracy)(name=name)


def _accuracy_sums(y, p, thresholds):
    import tensorflow as tf

    if y.shape[-1] > 1:  # one-hot targets: the arg max matches
        hit = tf.cast(tf.equal(tf.argmax(y, -1), tf.argmax(p, -1)), "float32")
        return [tf.reduce_sum(hit, axis=1)[:, None]]
    hit = tf.cast(tf.equal(y, tf.cast(p > 0.5, "float32")), "float32")
    return [tf.reduce_sum(tf.reduce_mean(hit, -1), axis=1)[:, None]]


def _error_sums(error):
    def sums(y, p, thresholds):
        import tensorflow as tf

        return [tf.reduce_sum(tf.reduce_mean(error(y - p), -1), axis=1)[:, None]]

    return sums


def _abs(d):
    import tensorflow as tf

    return tf.abs(d)


def _square(d):
    import tensorflow as tf

    return tf.square(d)


def _auc_sums(y, p, thresholds):
    """Confusion counts at Keras' thresholds: true/false positives, false/true negatives."""
    import tensorflow as tf

    members = tf.shape(p)[0]
    above = tf.reshape(p, (members, -1))[:, :, None] > thresholds  # (M, N, T)
    positive = tf.reshape(y, (members, -1))[:, :, None] > 0.5
    count = lambda mask: tf.reduce_sum(tf.cast(mask, "float32"), axis=1)  # noqa: E731
    return [count(above & positive), count(above & ~positive), count(~above & positive), count(~above & ~positive)]


def _roc_auc(sums, n, thresholds):
    """Keras' AUC (ROC, interpolation) from confusion counts at its thresholds, per member."""
    tp, fp, fn, tn = np.split(sums, 4, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.nan_to_num(tp / (tp + fn))
        fp_rate = np.nan_to_num(fp / (fp + tn))
    heights = (recall[:, :-1] + recall[:, 1:]) / 2
    return np.sum((fp_rate[:, :-1] - fp_rate[:, 1:]) * heights, axis=1)


def _mean(sums, n, thresholds):
    return sums[:, 0] / n


def _raw_error(kind, root=False):
    def build(name, head, scale):
        from models.keras_metrics import RawError  # imports Keras

        return RawError(kind, list(scale), root, name=name)

    return build


def _top_k(k):
    def build(name, head):
        import keras

        return keras.metrics.TopKCategoricalAccuracy(k=k, name=name)

    def sums(y, p, thresholds):
        """A hit when fewer than k outputs exceed the true class's (ties count as in, as tf.math.in_top_k)."""
        import tensorflow as tf

        true = tf.reduce_sum(y * p, -1, keepdims=True)
        above = tf.reduce_sum(tf.cast(p > true, "float32"), -1)
        hit = tf.cast((above < k) & tf.math.is_finite(true[..., 0]), "float32")
        return [tf.reduce_sum(hit, axis=1)[:, None]]

    return Metric(("multiclass",), True, build, sums, _mean)


def _class_scores(kind):
    """Precision, recall or F1 of the positive class (binary) or their mean over classes (macro,
    multiclass), from per-class true positive, false positive and false negative counts."""
    def build(name, head):
        from models.keras_metrics import ClassScore  # imports Keras

        return ClassScore(kind, head.units, name=name)

    def sums(y, p, thresholds):
        import tensorflow as tf

        from models.keras_metrics import class_counts  # imports Keras

        return [tf.reduce_sum(c, axis=1) for c in class_counts(y, p)]  # (M, classes) each

    def value(sums, n, thresholds):
        from models.keras_metrics import class_score

        return class_score(kind, *np.split(sums, 3, axis=1))

    return Metric(CLASSIFICATION, True, build, sums, value, columns=lambda t, units: 3 * max(units, 2))


def _r2_sums(y, p, thresholds):
    """Per target: sum of targets, of their squares, and of squared errors."""
    import tensorflow as tf

    return [tf.reduce_sum(y, axis=1), tf.reduce_sum(y * y, axis=1), tf.reduce_sum(tf.square(y - p), axis=1)]


def _r2(sums, n, thresholds):
    """Keras' R2Score (uniform average over targets) from the sums."""
    total_y, total_y2, sse = np.split(sums, 3, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = 1 - sse / (total_y2 - total_y * (total_y / n))
    return np.where(np.isinf(scores), 0.0, scores).mean(axis=1)


METRICS = {
    "accuracy": Metric(CLASSIFICATION, True, _accuracy, _accuracy_sums, _mean),
    "auc": Metric(("binary",), True, _keras("AUC"), _auc_sums, _roc_auc, columns=lambda t, units: 4 * len(t),
                  thresholds=True),
    "top_2_accuracy": _top_k(2),
    "top_3_accuracy": _top_k(3),
    "top_5_accuracy": _top_k(5),
    "precision": _class_scores("precision"),
    "recall": _class_scores("recall"),
    "f1": _class_scores("f1"),
    "mean_absolute_error": Metric(("regression",), False, _keras("MeanAbsoluteError"), _error_sums(_abs), _mean),
    "mean_squared_error": Metric(("regression",), False, _keras("MeanSquaredError"), _error_sums(_square), _mean),
    "root_mean_squared_error": Metric(("regression",), False, _keras("RootMeanSquaredError"),
                                      _error_sums(_square), lambda s, n, t: np.sqrt(_mean(s, n, t))),
    "r2": Metric(("regression",), True, _keras("R2Score"), _r2_sums, _r2, columns=lambda t, units: 3 * units),
}
# the error metrics again, in the targets' own units (the dataset scaled them for training): the
# same sums over scaled targets and outputs, and a Keras metric that scales them
RAW = "_raw"
METRICS.update({name + RAW: dataclasses.replace(METRICS[name], keras=_raw_error(*kind), raw=True)
                for name, kind in (("mean_absolute_error", ("absolute",)), ("mean_squared_error", ("squared",)),
                                   ("root_mean_squared_error", ("squared", True)))})
DEFAULT_METRICS = {
    "binary": ["accuracy"],
    "multiclass": ["accuracy"],
    "regression": ["mean_absolute_error", "root_mean_squared_error"],
}


def greater_is_better(metric):
    """A logged metric's direction by its catalogue entry (`val_`, `test_` prefixes allowed);
    losses and anything else are minimized."""
    entry = METRICS.get(metric.removeprefix("val_").removeprefix("test_"))
    return bool(entry and entry.greater_is_better)


def build_metrics(names, head, scale=None):
    """Keras metric objects named as in `names`, matched to the head's target encoding; `_raw`
    metrics multiply targets and outputs by `scale` (per target) first."""
    return [METRICS[n].keras(n, head, scale) if METRICS[n].raw else METRICS[n].keras(n, head) for n in names]


def raw_metrics(metrics):
    """The `_raw` twins of a regression spec's error metrics, in order, that it does not list yet."""
    return [m + RAW for m in metrics if m + RAW in METRICS and m + RAW not in metrics]


def auc_thresholds():
    """The thresholds of Keras' AUC metric (its default 200), as float32."""
    import keras

    return np.asarray(keras.metrics.AUC().thresholds, dtype="float32")


def register_metric(name, fn, source=None):
    """Add your own metric to the catalogue under `name`, for configs to name.

    Args:
        fn: `f(y_true, y_pred) -> one value per example`; the metric is their mean (targets and
            outputs are encoded as for the run's loss). Optional attributes: `fn.greater_is_better`
            (default False: lower is better, like an error) and `fn.tasks` (default: all).
        source: what experiment.json records of it (default: its module, file and the file's hash).
    Raises:
        ValueError: one line saying what is wrong with it (it is tried on a small batch per task).
    """
    from models.user_parts import UserMetric, remember, try_pairwise  # imports Keras

    check_user_name("metric", name, METRICS)
    tasks = tuple(getattr(fn, "tasks", TASKS))
    if not callable(fn) or not tasks or not set(tasks) <= set(TASKS):
        raise ValueError(f"metric {name!r} must be a function with optional attribute tasks among {', '.join(TASKS)}")
    stacked = try_pairwise("metric", name, fn, tasks)

    def sums(y, p, thresholds):
        import tensorflow as tf

        return [tf.reduce_sum(tf.cast(fn(y, p), "float32"), axis=1)[:, None]]

    METRICS[name] = Metric(tasks, bool(getattr(fn, "greater_is_better", False)),
                           lambda metric, head: UserMetric(metric, fn), sums if stacked else None, _mean,
                           source=source or source_of(fn), obj=fn)
    remember("metric", name, fn)


def declare_metric(name, greater_is_better, tasks=TASKS):
    """A user's metric known by its direction only (a report read in another process ranks by it)."""
    if name not in METRICS:
        METRICS[name] = Metric(tuple(tasks), bool(greater_is_better), None, None, _mean, source={"reference": "?"})
