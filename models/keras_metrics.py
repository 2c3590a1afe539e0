"""The reference engine's Keras metric for precision, recall and F1 (Keras has macro F1 but no
macro precision or recall): streaming per-class counts (`models.metrics.class_counts`), scored
by `models.metrics.class_score`, as the vectorized engine scores its own counts. Imports Keras."""

import keras
from keras import ops

from models.metrics import class_counts, class_score


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
        return class_score(self.kind, *self.counts, ops=ops)

    def reset_state(self):
        for variable in self.counts:
            variable.assign(ops.zeros_like(variable))

    def get_config(self):
        return {"kind": self.kind, "units": self.units, "name": self.name, "dtype": self.dtype}
