"""What every engine must do the same way, so that their runs can be compared one by one.

A run's mini-batches are not left to a framework's shuffling: each epoch's example order is a
permutation drawn from the run seed here, and every engine trains on exactly those batches (the
last batch of an epoch is the smaller remainder).
"""

import math

import numpy as np


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
