"""An experiment's own record, experiment.json: the resolved spec, the list of its runs (each
run's id, cell, axes, seed and engine), the datasets and the environment. Written by the runner
before anything trains; the tables, reports and TensorBoard records read the run list from it."""

from pathlib import Path

from experiments.records.store import read_json
from experiments.spec.types import Experiment
from models.metrics import declare_metric

EXPERIMENT = "experiment.json"


def load_experiment(exp_dir):
    """The experiment record written by the runner: its spec as an `Experiment`, the run list,
    the datasets and the environment."""
    path = Path(exp_dir) / EXPERIMENT
    if not path.is_file():
        raise ValueError(f"no experiment at {str(exp_dir)!r} (missing experiment.json); run it first")
    try:
        experiment = read_json(path)
    except (UnicodeDecodeError, ValueError):
        experiment = None
    try:
        spec = Experiment.from_dict(experiment["spec"])
        for name, source in spec.parts.get("metric", {}).items():  # a report ranks by the user's direction
            declare_metric(name, source["greater_is_better"])
        return {**experiment, "spec": spec}
    except (TypeError, KeyError, AttributeError, ValueError):  # not a record of this version's fields
        raise ValueError(f"{str(path)!r} is damaged; run the experiment's command again to rebuild it "
                         "(finished runs are kept)") from None
