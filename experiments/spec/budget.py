"""A grid's peak memory, estimated before anything trains, against what the machine has.

The estimate is an upper bound built from sizes the spec fixes: the datasets as float32 arrays
(and the copies the engines make), and the largest training group: its weights with the
optimizer's slots, gradients and the copies early stopping and masking keep, and its
activations for a training batch, an evaluation chunk and the diagnostics probe. TensorFlow's
own runtime is a fixed allowance. A grid whose estimate exceeds the memory available (the
machine's, or a container's limit) is refused with the estimate, before anything is written.
"""

import os
from pathlib import Path

from initializers.registry import label
from models.builders import layer_sizes, stacking_blocker

RUNTIME_BYTES = 1.5 * 2**30  # TensorFlow, Keras and Python themselves
WEIGHT_COPIES = 8  # weights, 2 optimizer slots, gradients, pre-step copy, best weights, 2 host copies
ACTIVATION_COPIES = 4  # pre-activations, outputs and their gradients, per layer
EVAL_CHUNK = 2048  # examples per evaluation call of the vectorized engine: bounds memory on large sets
GIB = 2**30


def available_bytes():
    """Memory this process may still use: /proc/meminfo's MemAvailable, capped by a cgroup limit."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit.isdigit():
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available


def group_size(spec, model):
    """Runs per training group, at most: the vectorized engine stacks every run that shares the
    dataset, model, optimizer and batch size (learning rates are per member); the keras engine
    (and a model the vectorized engine cannot stack) trains one at a time."""
    if spec.engine != "vectorized" or stacking_blocker(model):
        return 1
    return len(spec.initializers) * len(spec.losses) * len(spec.learning_rate) * len(spec.seeds)


def peak_bytes(spec, datasets):
    """(estimated peak bytes, a phrase naming what dominates)."""
    data = sum(4 * 3 * sum(getattr(d, f"x_{s}").size + getattr(d, f"y_{s}").size * max(d.n_classes, 1)
                           for s in ("train", "val", "test")) for d in datasets)
    worst, what = 0.0, ""
    for dataset in datasets:
        units = max(dataset.n_classes, dataset.n_targets) if dataset.task != "binary" else 2
        for model in spec.model:
            members = group_size(spec, model)
            sizes = layer_sizes(model, dataset.input_shape, units)
            params = sum(s.params for s in sizes)
            per_example = sum(s.outputs for s in sizes)
            n = len(dataset.x_train)
            examples = max(spec.batch_size) + min(EVAL_CHUNK, max(n, len(dataset.x_test))) + \
                min(spec.diagnostics.probe, n) * 2  # probe statistics are float64
            group = members * 4 * (WEIGHT_COPIES * params + ACTIVATION_COPIES * examples * per_example +
                                   max(spec.batch_size) * int(dataset.x_train[0].size))
            if group > worst:
                worst, what = group, (f"a training group of {members} runs of model "
                                      f"{_label(model)} with {params:,} weights each on {dataset.name}")
    return RUNTIME_BYTES + data + worst, what


def _label(model):
    text = label(model)
    return text if len(text) <= 60 else text[:57] + "..."


def check_memory(spec, datasets):
    """Raise a one-line ValueError when the grid cannot fit in the memory available."""
    need, what = peak_bytes(spec, datasets)
    have = available_bytes()
    if have is not None and need > have:
        raise ValueError(
            f"the grid needs an estimated {need / GIB:.1f} GiB of memory at its peak ({what}), more than the "
            f"{have / GIB:.1f} GiB available; use smaller models or batches, fewer runs per group (fewer seeds, "
            "initializers or losses), or engine = 'keras' (one run at a time)")
