"""A user's own parts named in a config: each reference (`package.module:attr` or
`path/file.py:attr`) is imported, checked and registered in its catalogue under its attribute's
name, which the config then holds; `recorded` says which of a spec's names are the user's, with
their sources, for experiment.json. Importing the user's code here is the one place where a config
runs code: the code the user named, from their own module.
"""

from experiments.data.datasets import DATASETS, register_dataset
from initializers import INITIALIZERS, register_initializer
from initializers.registry import import_reference, is_reference
from models.activations import ACTIVATIONS, register_activation
from models.builders import MODELS, register_model
from models.losses import LOSSES, register_loss
from models.metrics import METRICS, register_metric

# kind -> its catalogue's entries (name -> entry; a user's entry has `source` and `obj`)
ENTRIES = {"initializer": INITIALIZERS.entries, "loss": LOSSES.entries, "model": MODELS.entries,
           "activation": ACTIVATIONS.entries, "dataset": DATASETS.entries, "metric": METRICS}
REGISTER = {"initializer": register_initializer, "loss": register_loss, "activation": register_activation,
            "metric": register_metric, "model": register_model, "dataset": register_dataset}
# config field -> the kind of part its values name
FIELDS = {"initializers": "initializer", "bias_initializer": "initializer", "losses": "loss", "model": "model",
          "metrics": "metric", "dataset": "dataset"}


def resolve_parts(config, base, problems):
    """The config with every reference replaced by the name its object is registered under.

    Args:
        base: the folder relative file references are read from (the config file's).
        problems: a list that gets one line per reference that cannot be used.
    """
    done = {}  # reference -> name

    def resolve(kind, value):
        if isinstance(value, dict):  # { name = ..., params }; a model's activation may be a reference too
            fields = {"name": kind, "activation": "activation" if kind == "model" else None}
            return {k: resolve(fields[k], v) if fields.get(k) else v for k, v in value.items()}
        if not is_reference(value):
            return value
        if value in done:
            return done[value]
        try:
            name, obj, source = import_reference(value, base)
            clash = next((r for r, n in done.items() if n == name), None)
            if clash:
                raise ValueError(f"{value!r} and {clash!r} would both be named {name!r}; rename one of them")
            REGISTER[kind](name, obj, source)
        except ValueError as e:
            problems.append(f"{kind} {value!r}: {e}" if value not in str(e) else str(e))
            return value
        done[value] = name
        return name

    out = dict(config)
    for field, kind in FIELDS.items():
        if field not in config:
            continue
        value = config[field]
        out[field] = [resolve(kind, v) for v in value] if isinstance(value, list) else resolve(kind, value)
    return out


def register_recorded(parts):
    """Register again, from experiment.json's record, the user's parts an experiment used (to load
    its saved models in another process). A part registered in a notebook session has no module to
    import: register it again there first."""
    for kind, named in parts.items():
        for name, source in named.items():
            if getattr(ENTRIES[kind].get(name), "obj", None) is not None:
                continue
            where, attr = source["reference"].rsplit(":", 1)
            reference = f"{source['path']}:{attr}" if where.endswith(".py") else source["reference"]
            try:
                _, obj, now = import_reference(reference)
                if now["sha256"] != source["sha256"]:
                    raise ValueError(f"{now['path'] or reference} changed since the experiment ran (sha256 "
                                     f"{str(now['sha256'])[:12]}, recorded {str(source['sha256'])[:12]})")
                REGISTER[kind](name, obj, source)
            except ValueError as e:
                raise ValueError(f"{kind} {name!r} of this experiment: {e}; register it first "
                                 f"(experiments.register_{kind})") from None


def recorded(experiment):
    """`{kind: {name: source}}` for the user's own parts an experiment uses (empty when none)."""
    names = {
        "initializer": [i["name"] for i in (*experiment.initializers, experiment.bias_initializer)],
        "loss": [loss["name"] for loss in experiment.losses],
        "model": [m["name"] for m in experiment.model],
        "activation": [m["activation"] for m in experiment.model if "activation" in m],
        "dataset": [d["name"] for d in experiment.dataset],
        "metric": list(experiment.metrics),
    }
    parts = {}
    for kind, found in names.items():
        for name in found:
            entry = ENTRIES[kind].get(name)
            if getattr(entry, "source", None):
                # a metric's direction too: a report read in another process ranks by it
                extra = {"greater_is_better": entry.greater_is_better} if kind == "metric" else {}
                parts.setdefault(kind, {})[name] = {**entry.source, **extra}
    return parts
