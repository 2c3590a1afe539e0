"""The `[claim]` table of a spec, checked before anything trains: its keys, its checks' metric
expressions against the columns the runs will have, and the cells each check compares
(`experiments.claims` decides the claim once the runs are done)."""

import difflib
import itertools
import math

from experiments.spec import expressions
from experiments.spec.diagnostics import DEAD, SATURATED, SUMMARY
from experiments.spec.types import Check, Claim
from initializers.registry import label
from models.builders import layer_sizes
from models.losses import head_for

TESTS = (">", "<", "within")


CLAIM_KEYS = ("statement", "source", "combine", "checks")


CHECK_KEYS = ("name", "metric", "plus", "minus", "test", "value", "margin", "fill")


def check_claim(claim, spec, runs, datasets):
    """Validate a `[claim]` table against the spec (an `Experiment`), its expanded `runs` and the
    columns its runs will have (`claim_columns`).

    Returns:
        the `Claim`, with defaults.
    Raises:
        ValueError: one line naming the bad key or value and what is valid.
    """
    if not isinstance(claim, dict):
        raise ValueError(f"claim must be a table (statement, source, combine, checks), got {claim!r}")
    unknown = [k for k in claim if k not in CLAIM_KEYS]
    if unknown:
        raise ValueError(f"claim has unknown keys {unknown}; valid: {', '.join(CLAIM_KEYS)}")
    claim = {"combine": "all", **claim}
    for key in ("statement", "source"):
        if not isinstance(claim.get(key), str) or not claim[key].strip():
            raise ValueError(f"claim.{key} must be a non-empty string")
    if len(spec.seeds) < 3:
        raise ValueError(f"a claim is decided on statistics over seeds: give at least 3 seeds, got {list(spec.seeds)}")
    if claim["combine"] not in ("all", "any"):
        raise ValueError(f"claim.combine is {claim['combine']!r}; valid: all, any")
    checks = claim.get("checks")
    if not isinstance(checks, list) or not checks:
        raise ValueError("claim.checks must be a non-empty list of [[claim.checks]] tables")
    columns = claim_columns(spec, datasets)
    checks = tuple(Check.from_dict(_check_check(i, c, runs, columns)) for i, c in enumerate(checks, 1))
    return Claim.from_dict({**claim, "checks": ()}).replace(checks=checks)


def claim_columns(spec, datasets):
    """Every numeric column of the claim table that the spec's runs will produce: results, status
    indicators, first-epoch values, and per-layer diagnostics of each model's layers."""
    metrics = ["loss", *spec.metrics]
    logged = [*metrics, *(f"val_{m}" for m in metrics)]
    columns = {"diverged", "failed", "epochs_run", "wall_time_s", "epoch_time_s", "seed"}
    columns |= {f"{when}_{m}" for when in ("final", "best", "first") for m in logged}
    columns |= {f"{split}_{m}" for split in ("test", "train_set") for m in metrics}
    columns |= {f"epochs_to_{k}" for k in spec.thresholds}
    if spec.diagnostics.every:
        quantities = {"gradient_ratio"}
        for model, data, loss in itertools.product(spec.model, datasets, spec.losses):
            head = head_for(data.task, loss, data.n_classes, data.n_targets)
            layers = layer_sizes(model, data.input_shape, head.units, head.activation)
            for layer in layers:
                per_layer = {"activation_mean", "activation_std", "gradient_std"}
                if layer.name != "output":
                    per_layer |= {"distinct_units"} | ({"dead_fraction"} if layer.activation in DEAD else set()) | \
                        ({"saturated_fraction"} if layer.activation in SATURATED else set())
                quantities |= {f"{q}_{layer.name}" for q in per_layer} | (per_layer & set(SUMMARY))
        columns |= {f"diag_{when}_{q}" for when in ("init", "end") for q in quantities}
    return columns


def _check_check(i, check, runs, columns):
    where = f"claim check {i}"
    if not isinstance(check, dict):
        raise ValueError(f"{where} must be a table, got {check!r}")
    unknown = [k for k in check if k not in CHECK_KEYS]
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; valid: {', '.join(CHECK_KEYS)}")
    check = {"minus": [], "margin": 0.0, "fill": None, **check}
    if not isinstance(check.get("name"), str) or not check["name"]:
        raise ValueError(f"{where} needs a name")
    try:
        tree = expressions.parse(check.get("metric"))
    except ValueError as e:
        raise ValueError(f"{where} ({check['name']!r}): {e}") from None
    for name in expressions.columns(tree):
        if name not in columns:
            near = difflib.get_close_matches(name, sorted(columns), n=4, cutoff=0.6)
            raise ValueError(f"{where} ({check['name']!r}): metric {check['metric']!r} reads column {name!r}, which "
                             f"these runs will not have; " + (f"did you mean {', '.join(near)}? " if near else "") +
                             f"valid columns: {', '.join(sorted(columns)[:12])}, ... ({len(columns)} in all)")
    if check.get("test") not in TESTS:
        raise ValueError(f"{where}: test is {check.get('test')!r}; valid: {', '.join(TESTS)}")
    for key in ("value", "margin", "fill"):
        value = check[key]
        if key == "value" or value is not None:
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{where}: {key} must be a number, got {value!r}")
    if check["margin"] < 0 or (check["test"] == "within" and check["value"] <= 0):
        raise ValueError(f"{where}: margin must be >= 0 and a 'within' value > 0")
    if not check.get("plus") or not isinstance(check["plus"], list) or not isinstance(check["minus"], list):
        raise ValueError(f"{where}: plus (and minus) must be lists of cell selectors like {{initializer = 'zeros'}}")
    check["cells"] = [(1, cell_of(s, runs, where)) for s in check["plus"]] + \
                     [(-1, cell_of(s, runs, where)) for s in check["minus"]]
    return check


def _matches(wanted, value):
    """A selector value against a run's axis value: a table matches the parameters it names
    (`{activation = "tanh"}`), anything else must equal the value or its label."""
    if isinstance(wanted, dict):
        return isinstance(value, dict) and all(value.get(k) == v for k, v in wanted.items())
    return wanted == value or (isinstance(wanted, str) and wanted == label(value))


def cell_of(selector, runs, where="claim"):
    """The one cell (as the runs label it) that a selector `{axis: value}` picks out of `runs`."""
    if not isinstance(selector, dict) or not selector:
        raise ValueError(f"{where}: a cell selector is a table of axis = value, got {selector!r}")
    axes = [k for k in runs[0].axes if k != "seed"]
    unknown = [k for k in selector if k not in axes]
    if unknown:
        raise ValueError(f"{where}: selector axis {unknown[0]!r} is unknown; valid: {', '.join(axes)}")
    picked = [r.cell for r in runs if all(_matches(v, getattr(r.config, k)) for k, v in selector.items())]
    cells = list(dict.fromkeys(picked))
    if len(cells) != 1:
        found = "no cell" if not cells else f"{len(cells)} cells ({'; '.join(cells[:4])})"
        raise ValueError(f"{where}: selector {selector} matches {found}; it must pick exactly one")
    return cells[0]
