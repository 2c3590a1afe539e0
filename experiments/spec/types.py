"""The validated spec as frozen dataclasses: what `validate` returns and what code downstream reads
by attribute. `as_dict()` gives the JSON form that experiment.json and config.json hold (the
same keys, in the same order, as the config file's fields); `from_dict` reads it back.

An axis field (dataset, model, initializers, losses, optimizer, learning_rate, batch_size)
holds a tuple of values; an identifier is a parsed catalogue entry, `{"name": ..., **params}`.
"""

import dataclasses
from dataclasses import dataclass


class _Record:
    """`as_dict` and `from_dict` for the frozen records below."""

    def as_dict(self):
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data):
        kinds = {f.name: _NESTED.get((cls.__name__, f.name)) for f in dataclasses.fields(cls)}
        return cls(**{k: _typed(kinds[k], v) for k, v in data.items() if k in kinds})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def _plain(value):
    if isinstance(value, _Record):
        return value.as_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _typed(kind, value):
    if value is None or kind is None:
        return tuple(value) if isinstance(value, list) else value
    if kind == "checks":
        return tuple(Check.from_dict(v) for v in value)
    return kind.from_dict(value)


@dataclass(frozen=True)
class EarlyStopping(_Record):
    monitor: str
    patience: int  # 0: off
    min_delta: float


@dataclass(frozen=True)
class Diagnostics(_Record):
    every: int  # epochs between diagnostics; 0: off
    probe: int  # training examples probed


@dataclass(frozen=True)
class LearningRateRange(_Record):
    min: float
    max: float
    sampling: str  # log | linear
    step: float | None


@dataclass(frozen=True)
class Tune(_Record):
    """The `[tune]` table, resolved (`experiments.spec.tune`)."""

    mode: str
    tuner: str
    objective: str
    direction: str
    max_trials: int
    learning_rate: LearningRateRange
    batch_size: tuple
    max_consecutive_failed_trials: int
    hyperband_factor: int
    hyperband_iterations: int
    engine: str = "keras"  # searches recorded before stacked trials trained one Keras fit per trial
    stack: int = 1
    executions: int = 1


@dataclass(frozen=True)
class Check(_Record):
    """One check of a claim (`experiments.spec.claim`); `cells` are (sign, cell label) pairs."""

    name: str
    metric: str
    plus: tuple
    minus: tuple
    test: str
    value: float
    margin: float
    fill: float | None
    cells: tuple


@dataclass(frozen=True)
class Claim(_Record):
    """The `[claim]` table, resolved."""

    statement: str
    source: str
    combine: str
    checks: tuple


@dataclass(frozen=True)
class Experiment(_Record):
    """A validated experiment spec."""

    name: str
    description: str
    dataset: tuple
    model: tuple
    initializers: tuple
    bias_initializer: dict
    losses: tuple
    optimizer: tuple
    learning_rate: tuple
    batch_size: tuple
    epochs: int
    seeds: tuple
    early_stopping: EarlyStopping
    metrics: tuple
    thresholds: dict
    engine: str
    diagnostics: Diagnostics
    claim: Claim | None
    tune: Tune | None
    save_model: bool = True  # records written before it existed saved no models
    engine_memory: float | None = None  # GiB a stack may take; None: a quarter of the machine's
    compare: dict = dataclasses.field(default_factory=lambda: {"margin": {}})  # margins: {metric: value}
    parts: dict = dataclasses.field(default_factory=dict)  # the user's own parts: {kind: {name: source}}

    @property
    def headline(self):
        """The metric the reports lead with: the spec's first."""
        return self.metrics[0]


@dataclass(frozen=True)
class RunConfig(_Record):
    """Everything one run trains with, every axis a single value (config.json)."""

    name: str
    bias_initializer: dict
    epochs: int
    early_stopping: EarlyStopping
    metrics: tuple
    thresholds: dict
    engine: str
    diagnostics: Diagnostics
    dataset: dict
    model: dict
    initializer: dict
    loss: dict
    optimizer: dict
    learning_rate: float
    batch_size: int
    seed: int


_NESTED = {
    ("Experiment", "early_stopping"): EarlyStopping, ("Experiment", "diagnostics"): Diagnostics,
    ("Experiment", "claim"): Claim, ("Experiment", "tune"): Tune, ("Tune", "learning_rate"): LearningRateRange,
    ("Claim", "checks"): "checks", ("RunConfig", "early_stopping"): EarlyStopping,
    ("RunConfig", "diagnostics"): Diagnostics,
}
