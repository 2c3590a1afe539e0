"""Losses, the tasks they apply to, and the output head and target encoding each one needs.

The catalogue metadata imports no TensorFlow; `get` does.
"""

from dataclasses import dataclass

import numpy as np

from initializers.registry import Entry, Registry, check_user_name, keras_object, keyword_params, source_of

TASKS = ("binary", "multiclass", "regression")
CLASSIFICATION = ("binary", "multiclass")

LOSSES = Registry(
    "loss",
    {
        "mean_squared_error": Entry(note="all tasks; on classification: softmax/sigmoid outputs, one-hot targets",
                                    tasks=TASKS, make=keras_object("losses", "MeanSquaredError")),
        "mean_absolute_error": Entry(note="all tasks; on classification: softmax/sigmoid outputs, one-hot targets",
                                     tasks=TASKS, make=keras_object("losses", "MeanAbsoluteError")),
        "huber": Entry(
            {"delta": 1.0},
            positive=("delta",),
            ranges={"delta": (0, 1e6)},
            note="all tasks; Reference: https://doi.org/10.1214/aoms/1177703732",
            tasks=TASKS, make=keras_object("losses", "Huber"),
        ),
        "binary_crossentropy": Entry(note="binary tasks; one sigmoid output", tasks=("binary",),
                                     make=keras_object("losses", "BinaryCrossentropy")),
        "categorical_crossentropy": Entry(note="binary and multiclass tasks; softmax outputs, integer labels accepted",
                                          tasks=CLASSIFICATION, make=keras_object("losses", "CategoricalCrossentropy")),
    },
)


def check_loss(loss, task):
    """Raise a one-line ValueError when a loss cannot apply to a task."""
    name = LOSSES.parse(loss)["name"]
    if task not in LOSSES.entries[name].tasks:
        hint = " or ".join(n for n, entry in LOSSES.entries.items() if task in entry.tasks)
        raise ValueError(f"loss '{name}' does not apply to a {task} task; use {hint}")


@dataclass(frozen=True)
class Head:
    """The output layer a (task, loss) pair needs, and how targets are encoded for it."""

    units: int
    activation: str  # linear | sigmoid | softmax
    target: str  # value | binary | one_hot


def head_for(task, loss, n_classes=0, n_targets=1):
    """The output head for a loss on a task.

    MSE, MAE and Huber on a classification task train on softmax (sigmoid for two classes)
    outputs against one-hot (0/1) targets, as in the classic handwritten-digits example.
    """
    check_loss(loss, task)
    name = LOSSES.parse(loss)["name"]
    if task == "regression":
        return Head(n_targets, "linear", "value")
    if task == "binary" and name != "categorical_crossentropy":
        return Head(1, "sigmoid", "binary")
    return Head(n_classes, "softmax", "one_hot")


def encode_targets(y, head):
    """Targets as the head expects them: integer labels become one-hot or 0/1 columns."""
    y = np.asarray(y)
    if head.target == "one_hot":
        return np.eye(head.units, dtype="float32")[y.astype(int)]
    return y.astype("float32").reshape(len(y), -1)


def get(identifier):
    """A new Keras loss object for a name or `{"name": ..., **params}`."""
    return LOSSES.build(identifier)


def register_loss(name, fn, source=None):
    """Add your own loss to the catalogue under `name`, for configs to name.

    Args:
        fn: `f(y_true, y_pred, **params) -> one loss per example` (reduce only the last axis, as
            Keras' losses do). On classification tasks it gets one-hot (0/1 for binary) targets and
            softmax (sigmoid) outputs, as mean_squared_error does. An attribute `fn.tasks` (e.g.
            `("regression",)`) limits the tasks it applies to (default: all).
        source: what experiment.json records of it (default: its module, file and the file's hash).
    Raises:
        ValueError: one line saying what is wrong with it (it is tried on a small batch per task).
    """
    from models.user_parts import UserLoss, remember, try_pairwise  # imports Keras

    check_user_name("loss", name, LOSSES.entries)
    tasks = tuple(getattr(fn, "tasks", TASKS))
    if not callable(fn) or not tasks or not set(tasks) <= set(TASKS):
        raise ValueError(f"loss {name!r} must be a function with optional attribute tasks among {', '.join(TASKS)}")
    try:
        params = keyword_params(fn, positional=2)
    except ValueError as e:
        raise ValueError(f"loss {name!r}: {e}") from None
    stacked = try_pairwise("loss", name, lambda y, p: fn(y, p, **params), tasks)
    LOSSES.register(name, Entry(params, note="your own", tasks=tasks, stacked=stacked, obj=fn,
                                source=source or source_of(fn),
                                make=lambda **given: UserLoss(name, given, fn)))
    remember("loss", name, fn)
