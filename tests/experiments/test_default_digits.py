"""The acceptance figures of the default digits experiment, on the shipped config itself."""

from pathlib import Path

import pytest

from experiments.reporting.tables import load_tables, summarize_cells
from experiments.runner import run_experiment
from experiments.spec import apply_overrides, load_config, validate

CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "digits_init_x_loss.toml"


@pytest.mark.slow
def test_variance_scaled_inits_learn_digits_and_zeros_stays_at_chance(tmp_path):
    config = apply_overrides(load_config(CONFIG), [
        "initializers=['he_normal', 'glorot_normal', 'zeros']", "losses=['categorical_crossentropy']"])
    spec, data = validate(config)
    exp_dir, trained, _ = run_experiment(spec, data, tmp_path, progress=False)
    runs, _ = load_tables(exp_dir)
    cells = summarize_cells(runs, "test_accuracy").set_index("initializer")
    assert trained == 9 and list(cells["n"]) == [3, 3, 3]
    assert cells.loc["he_normal", "mean"] >= 0.95
    assert cells.loc["glorot_normal", "mean"] >= 0.95
    assert cells.loc["zeros", "mean"] <= 0.2
