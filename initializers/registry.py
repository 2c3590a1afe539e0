"""A name -> entry catalogue with Keras-style lookup, shared by every catalogue of the suite.

Each catalogue (initializers, losses, activations, optimizers, models, datasets) is one explicit
dict of entries. An entry knows the parameters a name accepts and their defaults, so a spec can
be validated without importing TensorFlow; building the Keras object is each catalogue's own
`get`.
"""

import hashlib
import importlib
import importlib.util
import inspect
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


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
            when set (true or non-zero), keep a model from stacking. A user's loss: False when it is
            not element-wise (the vectorized engine then falls back to keras).
        source: a user's own entry: `{"reference", "path", "sha256"}`, recorded in experiment.json;
            `obj` is the user's object.

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
    stacked: dict | bool | None = None
    source: dict | None = None
    obj: object = None


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


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_OURS = ("experiments", "models", "initializers")  # their parts are in the catalogues, by name
_REFERENCE = re.compile(r"(?P<where>[^:]+\.py|[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_]\w*)")


def is_reference(value):
    """Whether a config string names a user's object: `package.module:attr` or `path/file.py:attr`."""
    return isinstance(value, str) and _REFERENCE.fullmatch(value) is not None


def source_of(obj, reference=None):
    """What experiment.json records of a user's object: its reference (default `module:qualname`),
    source file and the file's SHA-256 (of its source text when it has no file, as in a notebook)."""
    reference = reference or f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', '?')}"
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:
        path = None
    if path and Path(path).is_file():
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    else:
        try:
            digest = hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()
        except (OSError, TypeError):
            digest = None
    return {"reference": reference, "path": str(Path(path).resolve()) if path else None, "sha256": digest}


def import_reference(reference, base=None):
    """The object a config names, `package.module:attr` or `path/file.py:attr` (a relative path
    is read from `base`, the config file's folder; `~` is expanded).

    Returns:
        (attr, the object, its `source_of` record).
    Raises:
        ValueError: one line naming the reference and what went wrong.
    """
    found = _REFERENCE.fullmatch(reference) if isinstance(reference, str) else None
    if not found:
        raise ValueError(f"{reference!r} is no reference to your own object; write 'package.module:name' or "
                         "'path/to/file.py:name'")
    where, attr = found["where"], found["attr"]
    try:
        if where.endswith(".py"):
            path = Path(where).expanduser()
            path = (Path(base or ".") / path).resolve()
            if not path.is_file():
                raise ValueError(f"{reference!r}: no file {str(path)!r}")
            module_name = f"init_loss_lab_user.{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
            spec.loader.exec_module(module)
        else:
            top = where.split(".")[0]
            if top in sys.stdlib_module_names or top in sys.builtin_module_names or top in _OURS:
                raise ValueError(f"{reference!r}: {top!r} is {'ours' if top in _OURS else 'Python'}'s own; a "
                                 "reference names your code (a module of yours, or a file)")
            module = importlib.import_module(where)
    except ValueError:
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's module may raise anything on import
        raise ValueError(f"{reference!r}: importing it failed: {type(e).__name__}: {e}") from None
    if not hasattr(module, attr):
        raise ValueError(f"{reference!r}: {where} has no {attr!r}")
    obj = getattr(module, attr)
    if not callable(obj):
        raise ValueError(f"{reference!r} is a {type(obj).__name__}, not a function or class")
    return attr, obj, source_of(obj, reference)


def keyword_params(obj, fixed=(), positional=0):
    """A user's function's own parameters (beyond the first `positional` ones and the `fixed` ones
    the suite passes) and their defaults, which a config may set; one without a default is an error."""
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return {}
    params = {}
    for index, (name, parameter) in enumerate(parameters.items()):
        if index < positional and parameter.kind != parameter.KEYWORD_ONLY:
            continue
        if name in fixed or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is parameter.empty:
            raise ValueError(f"parameter {name!r} has no default; give it one (a config sets it by name)")
        params[name] = parameter.default
    return params


def accepts(obj, names):
    """Whether `obj` can be called with these keyword arguments."""
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return True
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return True
    return all(n in parameters for n in names)


def check_user_name(kind, name, entries):
    """A user's part gets a plain name that is not the catalogue's own (`entries`: name -> entry)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{kind} name {name!r} must be letters, digits and _ (at most 64), not starting with a digit")
    if name in entries and getattr(entries[name], "source", None) is None:
        raise ValueError(f"{kind} {name!r} is in the catalogue already; give yours another name")


class Registry:
    """One catalogue: `parse` validates an identifier, `label`/`slug` name it; `register` adds a
    user's own entry."""

    def __init__(self, kind, entries):
        self.kind = kind
        self.entries = dict(entries)

    @property
    def names(self):
        return list(self.entries)

    def __contains__(self, name):
        return name in self.entries

    def __iter__(self):
        return iter(self.entries)

    def register(self, name, entry):
        """Add a user's own entry under `name` (a new one replaces an earlier one of the user's)."""
        check_user_name(self.kind, name, self.entries)
        self.entries[name] = entry

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
