"""A grid's peak memory, estimated before anything trains, against what the machine has, and the
size of the stacks that keep it within a budget.

The estimate is an upper bound built from sizes the spec fixes: the datasets as float32 arrays
(and the copies the engines make), and the largest stack: per member its weights with the
optimizer's slots, gradients and the copies early stopping and masking keep, and its
activations for a training batch, an evaluation chunk and the diagnostics probe. TensorFlow's
own runtime is a fixed allowance. A group of runs larger than the budget (`engine_memory` GiB,
default a quarter of the machine's memory) trains as several stacks, each within it; a grid whose
estimate still exceeds the memory available (the machine's, or a container's limit) is refused
with the estimate, before anything is written.
"""

import os
from pathlib import Path

from initializers.registry import label
from models.builders import layer_sizes, stacking_blocker

RUNTIME_BYTES = 1.5 * 2**30  # TensorFlow, Keras and Python themselves
WEIGHT_COPIES = 8  # weights, 2 optimizer slots, gradients, pre-step copy, best weights, 2 host copies
ACTIVATION_COPIES = 4  # pre-activations, outputs and their gradients, per layer
EVAL_CHUNK = 2048  # examples per evaluation call of the vectorized engine: bounds memory on large sets
MEMORY_SHARE = 0.25  # without engine_memory, a stack may take a quarter of the machine's memory
GIB = 2**30


def _meminfo(field):
    """A /proc/meminfo field in bytes, or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup(name):
    """A cgroup v2 memory file's number of bytes, or None ("max", absent)."""
    try:
        text = Path(f"/sys/fs/cgroup/{name}").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes():
    """Memory this process may still use: /proc/meminfo's MemAvailable, capped by a cgroup limit."""
    available = _meminfo("MemAvailable")
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
    limit, used = _cgroup("memory.max"), _cgroup("memory.current")
    if limit is not None and used is not None:
        available = min(available, limit - used)
    return available


def machine_bytes():
    """The machine's memory (MemTotal), or a container's limit if smaller: fixed for a machine, so
    a default budget drawn from it splits a grid the same way on every run (and resume)."""
    known = [b for b in (_meminfo("MemTotal"), _cgroup("memory.max")) if b is not None]
    return min(known) if known else 8 * GIB


def group_size(spec, model):
    """Runs per training group, at most: the vectorized engine stacks every run that shares the
    dataset, model, optimizer and batch size (learning rates are per member); the keras engine
    (and a model the vectorized engine cannot stack) trains one at a time."""
    if spec.engine != "vectorized" or stacking_blocker(model):
        return 1
    return len(spec.initializers) * len(spec.losses) * len(spec.learning_rate) * len(spec.seeds)


def member_bytes(model, dataset, batch_size, probe):
    """One member's share of a stacked group's peak memory: its weights with the optimizer's slots,
    gradients and the copies early stopping and masking keep, its activations (and a convolution's
    shifted windows) for a training batch, an evaluation chunk and the diagnostics probe, and its
    gathered batch."""
    sizes = layer_sizes(model, dataset.input_shape, _units(dataset))
    params = sum(s.params for s in sizes)
    per_example = sum(s.outputs + s.workspace for s in sizes)
    n = len(dataset.x_train)
    examples = batch_size + min(EVAL_CHUNK, max(n, len(dataset.x_test))) + min(probe, n) * 2  # probe: float64
    return 4 * (WEIGHT_COPIES * params + ACTIVATION_COPIES * examples * per_example +
                batch_size * int(dataset.x_train[0].size))


def _units(dataset):
    """Output units, at most (a binary task may take a two-unit softmax head)."""
    return max(dataset.n_classes, dataset.n_targets) if dataset.task != "binary" else 2


def stack_budget(spec):
    """Bytes a stack may take: `engine_memory` GiB, else a share of the machine's memory."""
    return spec.engine_memory * GIB if spec.engine_memory is not None else MEMORY_SHARE * machine_bytes()


def stack_members(budget, model, dataset, batch_size, probe):
    """How many members one stack may hold within `budget` bytes (at least one)."""
    return max(1, int(budget // member_bytes(model, dataset, batch_size, probe)))


def peak_bytes(spec, datasets):
    """(estimated peak bytes, a phrase naming what dominates): the largest group, split into stacks
    within the budget."""
    data = sum(4 * 3 * sum(getattr(d, f"x_{s}").size + getattr(d, f"y_{s}").size * max(d.n_classes, 1)
                           for s in ("train", "val", "test")) for d in datasets)
    budget, batch, worst, what = stack_budget(spec), max(spec.batch_size), 0.0, ""
    for dataset in datasets:
        for model in spec.model:
            one = member_bytes(model, dataset, batch, spec.diagnostics.probe)
            members = min(group_size(spec, model), stack_members(budget, model, dataset, batch,
                                                                  spec.diagnostics.probe))
            if members * one > worst:
                params = sum(s.params for s in layer_sizes(model, dataset.input_shape, _units(dataset)))
                worst, what = members * one, (f"stacks of {members} runs of model {_label(model)} with "
                                              f"{params:,} weights each on {dataset.name}")
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
            f"{have / GIB:.1f} GiB available; use smaller models or batches, or a smaller engine_memory (GiB a "
            "stack may take)")
