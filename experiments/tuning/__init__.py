"""The tuning layer: keras-tuner searches of learning rate and batch size over a spec's cells
(`search.tune`), their trials trained by the engines' procedure (`trials`), keras-tuner's tuners
and roles (`tuners`), and the chief and workers as local processes (`distributed.launch`).

May import: `experiments.runner`, `experiments.reporting`, `experiments.engines`,
`experiments.records`, `experiments.spec` and below.
"""

from experiments.tuning.distributed import launch
from experiments.tuning.search import tune
from experiments.tuning.tuners import role

__all__ = ["launch", "role", "tune"]
