"""A name -> entry catalogue with Keras-style lookup, shared by every catalogue of the suite.

Each catalogue (initializers, losses, activations, optimizers, models, datasets) is one explicit
dict of entries. An entry knows the parameters a name accepts and their defaults, so a spec can
be validated without importing TensorFlow; building the Keras object is each catalogue's own
`get`.
"""

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entry:
    """What a catalogue name accepts.

    Args:
        params: accepted parameters and their defaults; the default's type is the expected type.
        choices: for some parameters, the allowed values.
        positive: parameters that must be > 0.
        unit_interval: parameters that must lie in [0, 1).
        ranges: for some parameters, the (lowest, highest) value allowed; for a list, of each element.
        note: one line shown by `python -m experiments list` (tasks, reference, ...).
        tasks: losses only: the tasks the loss applies to.
        make: builds the object from the parameters (`Registry.build`); imports Keras only when called.
        stacked: models only: None when the vectorized engine has no stacked version of the model
            (the allow list is the entries that set it), else `{option: reason}` for options that,
            when set (true or non-zero), keep a model from stacking.

    Every number must be finite, whatever the entry says.
    """

    params: dict = field(default_factory=dict)
    choices: dict = field(default_factory=dict)
    positive: tuple = ()
    unit_interval: tuple = ()
    ranges: dict = field(default_factory=dict)
    note: str = ""
    tasks: tuple = ()
    make: Callable | None = None
    stacked: dict | None = None


def keras_object(module, name):
    """A `make` that returns Keras' own `keras.<module>.<name>`, called with the parameters when
    it is a class (`keras_object("losses", "Huber")`), as is when it is a function."""
    def make(**params):
        found = getattr(importlib.import_module(f"keras.{module}"), name)
        return found(**params) if isinstance(found, type) else found

    return make


def _type_name(default):
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a finite number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, list):
        return "a list"
    return type(default).__name__


def _bound(value):
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _fits(value, default):
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(default, list):
        # the elements must fit the default's first element, e.g. widths [64, 64] takes integers
        return isinstance(value, list) and (not default or all(_fits(v, default[0]) for v in value))
    return isinstance(value, type(default))


class Registry:
    """One catalogue: `parse` validates an identifier, `label`/`slug` name it."""

    def __init__(self, kind, entries):
        self.kind = kind
        self.entries = dict(entries)

    @property
    def names(self):
        return list(self.entries)

    def __contains__(self, name):
        return name in self.entries

    def parse(self, identifier):
        """Validate a name or a `{"name": ..., **params}` dict.

        Returns:
            a new dict `{"name": name, **params}` holding only the parameters given.
        Raises:
            ValueError: one line naming the bad value and the valid choices.
        """
        if isinstance(identifier, str):
            name, params = identifier, {}
        elif isinstance(identifier, dict) and isinstance(identifier.get("name"), str):
            name = identifier["name"]
            params = {k: v for k, v in identifier.items() if k != "name"}
        else:
            raise ValueError(
                f"Could not interpret {self.kind} identifier: {identifier!r} "
                f"(give a name or a table with a 'name' key; valid names: {', '.join(self.names)})"
            )
        if name not in self.entries:
            raise ValueError(
                f"Could not interpret {self.kind} identifier: {name!r}; "
                f"valid names: {', '.join(self.names)}"
            )
        entry = self.entries[name]
        for key, value in params.items():
            where = f"{self.kind} '{name}' parameter '{key}'"
            if key not in entry.params:
                valid = ", ".join(entry.params) or "none"
                raise ValueError(f"{self.kind} '{name}' has no parameter '{key}'; its parameters: {valid}")
            default = entry.params[key]
            if not _fits(value, default):
                raise ValueError(f"{where} must be {_type_name(default)}, got {value!r}")
            if key in entry.choices and value not in entry.choices[key]:
                raise ValueError(f"{where} is {value!r}; valid values: {', '.join(map(str, entry.choices[key]))}")
            if key in entry.positive and not value > 0:
                raise ValueError(f"{where} must be > 0, got {value!r}")
            if key in entry.unit_interval and not 0 <= value < 1:
                raise ValueError(f"{where} must be in [0, 1), got {value!r}")
            if key in entry.ranges:
                low, high = entry.ranges[key]
                for item in value if isinstance(value, list) else [value]:
                    if not low <= item <= high:
                        each = "each element of " if isinstance(value, list) else ""
                        raise ValueError(f"{each}{where} must be from {_bound(low)} to {_bound(high)}, got {value!r}")
        return {"name": name, **params}

    def build(self, identifier, **extra):
        """The object an identifier names, made by its entry's `make` with its parameters and `extra`."""
        spec = self.parse(identifier)
        return self.entries[spec["name"]].make(**{k: v for k, v in spec.items() if k != "name"}, **extra)

    def resolve(self, spec):
        """The full parameter set of a parsed spec: defaults overlaid with what it gives."""
        spec = self.parse(spec)
        return {**self.entries[spec["name"]].params, **{k: v for k, v in spec.items() if k != "name"}}


def label(spec):
    """Human name of a parsed spec: `he_normal`, `random_normal(stddev=0.1)`."""
    if isinstance(spec, str):
        return spec
    params = [f"{k}={v}" for k, v in spec.items() if k != "name"]
    return spec["name"] + (f"({', '.join(params)})" if params else "")


def slug(spec):
    """Folder-safe name of a parsed spec: `he_normal`, `random_normal-stddev0.1`."""
    if isinstance(spec, str):
        return spec
    parts = [spec["name"]] + [f"{k}{v}" for k, v in spec.items() if k != "name"]
    text = "-".join(str(p) for p in parts)
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)
