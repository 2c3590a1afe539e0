"""The one training procedure: what every engine and every tuner trial does the same way, so
that their runs can be compared one by one.

- Batch order: a run's mini-batches are not left to a framework's shuffling: each epoch's example
  order is a permutation drawn from the run seed here, and everything trains on exactly those
  batches (the last batch of an epoch is the smaller remainder).
- Divergence: a NaN or inf training loss ends a run as diverged (`records.rundir.diverged`).
- Early stopping: Keras' rule with the best weights restored at the end, for a Keras model
  (`early_stopping`) and per member of a stacked group (`MemberEarlyStopping`).
"""

import math

import numpy as np

from models.metrics import greater_is_better


def clear_keras_session():
    """`keras.backend.clear_session(free_memory=False)` after a group or a stack, so that Keras'
    global state (name counters, graph) stays flat over long grids (Python's full collection,
    which `free_memory` adds, took 0.3 s a group), keeping what Keras' saving caches there: the
    attributes it skips per object type, which it works out by building a reference Layer,
    Metric, Optimizer and Loss. Keras 3.15 stores them as `saving_attr_skipset_<type>` but looks
    for `saving_attr_skiplist_<type>`, so it never finds them and rebuilds them at every save
    (1 s of the shipped make tune); kept here under the name it looks for."""
    import keras
    from keras.src.backend.common import global_state  # the cache's home: no public API reaches it

    state = vars(global_state.GLOBAL_STATE_TRACKER)
    kept = {name.replace("_skipset_", "_skiplist_"): value for name, value in state.items()
            if name.startswith(("saving_attr_skipset_", "saving_attr_skiplist_"))}
    keras.backend.clear_session(free_memory=False)
    for name, value in kept.items():
        global_state.set_global_attribute(name, value)


def epoch_orders(seed, epochs, n):
    """The example order of every epoch of a run, shape (epochs, n)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))  # 7: the stream for batch order
    return np.stack([rng.permutation(n) for _ in range(epochs)]).astype("int32")


def steps_per_epoch(n, batch_size):
    return math.ceil(n / batch_size)


def failure_reason(error):
    """One line naming an exception, for a run's result.json."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def early_stopping(settings):
    """The spec's early stopping as a Keras callback (best weights restored), or None when off."""
    import keras

    if not settings.patience:
        return None
    return keras.callbacks.EarlyStopping(monitor=settings.monitor, patience=settings.patience,
                                         min_delta=settings.min_delta, restore_best_weights=True)


class MemberEarlyStopping:
    """keras.callbacks.EarlyStopping(restore_best_weights=True), one state per member."""

    def __init__(self, settings, size):
        self.on = settings.patience > 0
        self.monitor, self.patience, self.min_delta = settings.monitor, settings.patience, settings.min_delta
        self.sign = 1.0 if greater_is_better(self.monitor) else -1.0
        self.best = [None] * size
        self.wait = [0] * size
        self.best_weights = [None] * size

    def _improved(self, current, best):
        return best is None or self.sign * (current - self.sign * self.min_delta - best) > 0

    def stop(self, m, epoch, logs, weights):
        """Keras' rule after an epoch of member m; True when the member stops here."""
        if not self.on or self.monitor not in logs:
            return False
        current = logs[self.monitor]
        if self.best_weights[m] is None:
            self.best_weights[m] = [w[m].copy() for w in weights]
        self.wait[m] += 1
        if self._improved(current, self.best[m]):
            self.best[m], self.wait[m] = current, 0
            self.best_weights[m] = [w[m].copy() for w in weights]
            return False
        return self.wait[m] >= self.patience and epoch > 0

    def restore(self, weights):
        """The stacked weights with every member's best epoch put back."""
        for m, best in enumerate(self.best_weights):
            if best is not None:
                for w, b in zip(weights, best, strict=True):
                    w[m] = b
        return weights
