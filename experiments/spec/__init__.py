"""The spec layer: what to run. A config (TOML and `--set` overrides) is validated into a spec, and
a spec expands into the grid of runs; the `[claim]` and `[tune]` tables are checked here too.

May import: `experiments.data`, `models`, `initializers` (never TensorFlow at import time).
"""

from experiments.spec.config import (
           DEFAULTS,
           ENGINES,
           SpecError,
           apply_overrides,
           load_config,
           locate_config,
           parse_value,
)
from experiments.spec.grid import AXES, RunSpec, expand
from experiments.spec.validate import validate

__all__ = ["AXES", "DEFAULTS", "ENGINES", "RunSpec", "SpecError", "apply_overrides", "expand", "load_config",
           "locate_config", "parse_value", "validate"]
