"""The metric catalogue: each entry's streaming sums (what the vectorized engine adds up over an
epoch) give the value its Keras metric computes, and directions come from the catalogue."""

import numpy as np
import pytest

from models.losses import Head
from models.metrics import METRICS, auc_thresholds, build_metrics, greater_is_better

HEADS = {"accuracy": [Head(3, "softmax", "one_hot"), Head(1, "sigmoid", "binary")],
         "auc": [Head(1, "sigmoid", "binary")],
         "mean_absolute_error": [Head(2, "linear", "value")], "mean_squared_error": [Head(2, "linear", "value")],
         "root_mean_squared_error": [Head(2, "linear", "value")], "r2": [Head(2, "linear", "value")],
         **{f"{m}_raw": [Head(2, "linear", "value")]
            for m in ("mean_absolute_error", "mean_squared_error", "root_mean_squared_error")},
         **{f"top_{k}_accuracy": [Head(6, "softmax", "one_hot")] for k in (2, 3, 5)},
         **{score: [Head(4, "softmax", "one_hot"), Head(2, "softmax", "one_hot"), Head(1, "sigmoid", "binary")]
            for score in ("precision", "recall", "f1")}}


def _batch(head, rng, members=2, n=40):
    if head.target == "one_hot":
        y = np.eye(head.units, dtype="float32")[rng.integers(head.units, size=n)]
        p = rng.dirichlet(np.ones(head.units), size=(members, n)).astype("float32")
    elif head.target == "binary":
        y = rng.integers(2, size=(n, 1)).astype("float32")
        p = rng.uniform(size=(members, n, 1)).astype("float32")
    else:
        y = rng.normal(size=(n, head.units)).astype("float32")
        p = rng.normal(size=(members, n, head.units)).astype("float32")
    return y, p


@pytest.mark.parametrize("name,head", [(n, h) for n, heads in HEADS.items() for h in heads],
                         ids=lambda v: v if isinstance(v, str) else v.target)
def test_streaming_sums_give_the_keras_metric_per_member(name, head):
    import tensorflow as tf

    assert set(HEADS) == set(METRICS)  # every catalogue metric is covered here
    metric, rng = METRICS[name], np.random.default_rng(0)
    y, p = _batch(head, rng)
    thresholds = auc_thresholds() if metric.thresholds else np.zeros(0, dtype="float32")
    # two batches, summed as the engine sums an epoch
    halves = [(y[:25], p[:, :25]), (y[25:], p[:, 25:])]
    scale = np.array([2.0, 0.5], dtype="float32")  # a raw metric's targets' units; the engine scales what it sums
    by = scale if metric.raw else 1
    sums = sum(tf.concat(metric.sums(tf.broadcast_to(yy[None] * by, pp.shape), tf.constant(pp * by), thresholds),
                         1).numpy() for yy, pp in halves)
    assert sums.shape == (2, metric.columns(thresholds, head.units))
    values = metric.value(sums.astype("float64"), len(y), thresholds)
    for m in range(2):
        keras_metric = build_metrics([name], head, scale)[0]
        for yy, pp in halves:
            keras_metric.update_state(yy, pp[m])
        assert values[m] == pytest.approx(float(keras_metric.result()), rel=1e-5, abs=1e-6)


def test_directions_come_from_the_catalogue():
    assert greater_is_better("val_accuracy") and greater_is_better("test_auc")
    assert not greater_is_better("loss") and not greater_is_better("val_root_mean_squared_error")
    errors = {"mean_absolute_error", "mean_squared_error", "root_mean_squared_error"}
    assert {n for n, m in METRICS.items() if not m.greater_is_better} == errors | {e + "_raw" for e in errors}


def test_a_raw_error_is_the_error_in_the_targets_own_units():
    """MAE in raw units = the scaled MAE times the scale (one target); RMSE likewise."""
    import keras

    rng = np.random.default_rng(2)
    y, p = rng.normal(size=(30, 1)).astype("float32"), rng.normal(size=(30, 1)).astype("float32")
    head = Head(1, "linear", "value")
    raw, plain = build_metrics(["mean_absolute_error_raw", "root_mean_squared_error_raw"], head, [3.0]), [
        keras.metrics.MeanAbsoluteError(), keras.metrics.RootMeanSquaredError()]
    for a, b in zip(raw, plain, strict=True):
        a.update_state(y, p)
        b.update_state(y * 3, p * 3)
        assert float(a.result()) == pytest.approx(float(b.result()), rel=1e-6)


@pytest.mark.parametrize("units", [1, 2, 4])
def test_precision_recall_and_f1_are_scikit_learns(units):
    """Binary: the positive class's score (one sigmoid output, or two softmax outputs); more classes:
    the macro average."""
    from sklearn import metrics as sk

    rng = np.random.default_rng(1)
    head = Head(units, "sigmoid" if units == 1 else "softmax", "binary" if units == 1 else "one_hot")
    y, p = _batch(head, rng, members=1, n=60)
    truth = y[:, 0] if units == 1 else y.argmax(1)
    guess = (p[0, :, 0] > 0.5).astype(int) if units == 1 else p[0].argmax(1)
    average = "macro" if units > 2 else "binary"
    for name, score in (("precision", sk.precision_score), ("recall", sk.recall_score), ("f1", sk.f1_score)):
        keras_metric = build_metrics([name], head)[0]
        keras_metric.update_state(y, p[0])
        expected = score(truth, guess, average=average, zero_division=0)
        assert float(keras_metric.result()) == pytest.approx(expected, abs=1e-6), name
