"""Precision, recall and F1 from per-class counts: the counts of a batch, the score from counts
(for tensors and for the vectorized engine's NumPy sums), and the reference engine's Keras metric
that streams them (Keras has macro F1 but no macro precision or recall). Imports Keras."""

import keras
import numpy as np
from keras import ops


def class_counts(y, p):
    """Per example and class: true positive, false positive and false negative indicators. A single
    sigmoid output stands for the two classes (0, 1) at the 0.5 threshold; softmax outputs for the
    class of their arg max."""
    y, p = ops.cast(y, "float32"), ops.cast(p, "float32")
    if y.shape[-1] == 1:
        truth, guess = (ops.concatenate([1 - v, v], axis=-1) for v in (ops.cast(y > 0.5, "float32"),
                                                                        ops.cast(p > 0.5, "float32")))
    else:
        truth, guess = ops.one_hot(ops.argmax(y, -1), y.shape[-1]), ops.one_hot(ops.argmax(p, -1), y.shape[-1])
    return truth * guess, (1 - truth) * guess, truth * (1 - guess)


def class_score(kind, tp, fp, fn, tensors=False):
    """The score from per-class counts (last axis: classes): binary (two classes) scores class 1,
    more classes the mean over classes; an empty denominator counts as 0. NumPy arrays, or
    tensors (the Keras metric) with `tensors=True`."""
    divide = ops.divide_no_nan if tensors else lambda a, b: np.divide(a, b, out=np.zeros(np.shape(a)), where=b != 0)
    precision, recall = divide(tp, tp + fp), divide(tp, tp + fn)
    score = {"precision": precision, "recall": recall, "f1": divide(2 * precision * recall, precision + recall)}[kind]
    return score[..., 1] if score.shape[-1] == 2 else (ops if tensors else np).mean(score, axis=-1)


@keras.saving.register_keras_serializable(package="init_loss_lab")
class ClassScore(keras.metrics.Metric):
    """Precision, recall or F1 (`kind`) of the positive class for a binary head, macro-averaged
    over classes otherwise."""

    def __init__(self, kind, units, name=None, dtype=None):
        super().__init__(name=name or kind, dtype=dtype)
        self.kind, self.units = kind, units
        self.counts = [self.add_variable(shape=(max(units, 2),), initializer="zeros", name=n)
                       for n in ("tp", "fp", "fn")]

    def update_state(self, y_true, y_pred, sample_weight=None):
        for variable, value in zip(self.counts, class_counts(y_true, y_pred), strict=True):
            variable.assign(variable + ops.sum(value, axis=0))

    def result(self):
        return class_score(self.kind, *self.counts, tensors=True)

    def reset_state(self):
        for variable in self.counts:
            variable.assign(ops.zeros_like(variable))

    def get_config(self):
        return {"kind": self.kind, "units": self.units, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="init_loss_lab")
class RawError(keras.metrics.Mean):
    """Mean absolute or squared error (its root with `root`) of targets and outputs multiplied by
    `scale` (one factor per target): an error metric in the targets' own units."""

    def __init__(self, kind, scale, root=False, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.kind, self.scale, self.root = kind, list(scale), root

    def update_state(self, y_true, y_pred, sample_weight=None):
        error = (ops.cast(y_true, "float32") - ops.cast(y_pred, "float32")) * ops.array(self.scale, "float32")
        per_example = ops.mean(ops.abs(error) if self.kind == "absolute" else ops.square(error), axis=-1)
        return super().update_state(per_example, sample_weight=sample_weight)

    def result(self):
        mean = super().result()
        return ops.sqrt(mean) if self.root else mean

    def get_config(self):
        return {"kind": self.kind, "scale": self.scale, "root": self.root, "name": self.name, "dtype": self.dtype}
