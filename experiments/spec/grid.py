"""The grid of runs: the product of a validated spec's list-valued axes and its seeds, each run
with its folder (`<dataset>/<cell slug>/seed_<k>`), its cell label and its resolved config."""

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass

from experiments.spec.types import RunConfig
from initializers.registry import label, slug

# Axes in grid order: (spec field, run key, may the field be a single value?)
AXES = (
    ("dataset", "dataset", True),
    ("model", "model", True),
    ("initializers", "initializer", False),
    ("losses", "loss", False),
    ("optimizer", "optimizer", True),
    ("learning_rate", "learning_rate", True),
    ("batch_size", "batch_size", True),
)


@dataclass(frozen=True)
class RunSpec:
    """One run of a grid: where it lives, which cell it belongs to, and its resolved config."""

    run_id: str  # <dataset>/<cell slug>/seed_<k>, relative to the experiment's folder
    cell: str  # e.g. "he_normal | categorical_crossentropy"
    axes: dict  # every axis' label in this run, the seed included
    config: RunConfig  # everything needed to train it, all values single


def expand(spec, show=()):
    """The runs of an `Experiment`: the product of its axes and its seeds, in a stable order.

    Args:
        show: axes to name in the run ids even when they hold one value (the tuned comparison
            names each cell's learning rate and batch size, which differ between its searches).
    """
    values = [getattr(spec, field) for field, _, _ in AXES]
    shown = [i for i, (_, key, single) in enumerate(AXES) if not single or len(values[i]) > 1 or key in show]
    # the description, claim and tune tables are not a run's config: editing them must not make
    # finished runs stale (`run` trains the spec's own grid, untuned)
    shared = {f.name: getattr(spec, f.name) for f in dataclasses.fields(RunConfig) if hasattr(spec, f.name)}
    combos = list(itertools.product(*values))
    slugs = _cell_slugs([[_axis_slug(AXES[i][1], combo[i]) for i in shown] for combo in combos],
                        [json.dumps([combo[i] for i in shown], sort_keys=True) for combo in combos])
    runs = []
    for combo, cell_slug in zip(combos, slugs, strict=True):
        axes = {key: value for (_, key, _), value in zip(AXES, combo, strict=True)}
        cell = " | ".join(_cell_part(AXES[i][1], combo[i]) for i in shown)
        for seed in spec.seeds:
            runs.append(RunSpec(
                run_id=f"{axes['dataset']['name']}/{cell_slug}/seed_{seed}",
                cell=cell,
                axes={**{key: _axis_label(v) for key, v in axes.items()}, "seed": seed},
                config=RunConfig(**{**shared, **axes, "seed": seed}),
            ))
    return runs


MAX_SLUG = 120  # characters of a cell's folder name (a file system allows 255 bytes)


def _cell_slugs(parts, values):
    """One folder name per cell: its axis slugs joined by `__`. A name that is too long, or that
    two different cells would share (slugs replace unsafe characters), gets a short hash of the
    cell's own values (`values`, one canonical JSON text per cell), so every cell has its own folder."""
    names = ["__".join(p) for p in parts]
    hashed = [hashlib.sha256(v.encode()).hexdigest()[:8] for v in values]
    counts = {n: names.count(n) for n in names}
    return [f"{n[:MAX_SLUG - 9]}-{h}" if counts[n] > 1 or len(n) > MAX_SLUG else n
            for n, h in zip(names, hashed, strict=True)]


def _axis_label(value):
    return label(value) if isinstance(value, dict | str) else value


def _cell_part(key, value):
    return label(value) if isinstance(value, dict | str) else f"{key}={value}"


def _axis_slug(key, value):
    if isinstance(value, dict | str):
        return slug(value)
    short = f"{value:g}"
    # enough digits to tell every value apart: 0.001 and 0.0010000001 get different folders
    text = short if float(short) == value else repr(float(value))
    return {"learning_rate": "lr", "batch_size": "bs"}[key] + text
