"""The engines agree in distribution where single runs part: with dropout (each engine draws its
own masks) and on a deep net (rounding amplified by training). Kept apart from
`test_vectorized.py` so that the two test workers share the engine comparisons' time."""

import pytest

from experiments.engines import stacked_graph
from experiments.reporting.tables import load_tables
from experiments.runner import run_experiment
from experiments.spec import validate


@pytest.mark.slow
def test_with_dropout_the_engines_agree_in_distribution_cell_by_cell(tmp_path):
    """Dropout masks are drawn differently per engine, so single runs part; in every cell the mean
    test accuracy and loss over 8 seeds differ by less than the 95% interval of their paired
    difference, and dropout is on in both (the training loss, with masks, exceeds the loss on the
    same training set without)."""
    from experiments.benchmarks.agreement import compare

    tables = {}
    for engine in ("vectorized", "keras"):
        spec, data = validate({
            "name": f"dropout_{engine}", "dataset": "digits", "engine": engine,
            "model": {"name": "mlp", "widths": [32], "dropout": 0.3}, "initializers": ["he_normal", "glorot_uniform"],
            "losses": ["categorical_crossentropy"], "epochs": 5, "seeds": list(range(8)), "diagnostics": {"every": 0},
            "save_model": False})
        exp_dir, _, _ = run_experiment(spec, data, tmp_path, progress=False)
        runs = load_tables(exp_dir)[0]
        assert set(runs["engine"]) == {engine} and set(runs["status"]) == {"ok"}
        assert (runs["final_loss"] > runs["train_set_loss"]).mean() > 0.9, engine  # masks were drawn
        tables[engine] = {cell: rows.set_index("seed").sort_index() for cell, rows in runs.groupby("initializer")}
    for cell in tables["keras"]:
        result = compare(tables["vectorized"][cell], tables["keras"][cell])
        assert result["within_1e-4"] < result["runs"], cell  # the masks differ run by run
        assert abs(result["mean_difference"]) < result["half_width"], (cell, result)
        loss = compare(*(t[cell].assign(test_accuracy=t[cell]["test_loss"]) for t in tables.values()))
        assert abs(loss["mean_difference"]) < loss["half_width"], (cell, "loss", loss)


@pytest.mark.slow
def test_on_a_deep_net_the_engines_agree_in_distribution_not_run_by_run(tmp_path, monkeypatch):
    """A 16-layer ReLU net trained 10 epochs with its epoch loop XLA-compiled (whose fused kernels
    round most unlike Keras'): float rounding, amplified by training, moves single runs apart (the
    initial weights are bit-identical), but over seeds the two engines' mean test accuracies differ
    by less than the 95% interval of their paired difference.
    `python -m experiments.benchmarks.agreement` measures this by depth on digits."""
    from experiments.benchmarks.agreement import compare

    monkeypatch.setattr(stacked_graph, "XLA", True)
    tables = []
    for engine in ("vectorized", "keras"):
        spec, data = validate({
            "name": f"deep_{engine}", "dataset": {"name": "moons", "n_samples": 400}, "engine": engine,
            "model": {"name": "mlp", "widths": [16] * 16}, "initializers": ["he_normal"],
            "losses": ["binary_crossentropy"], "learning_rate": 0.01, "epochs": 10, "seeds": list(range(6)),
            "diagnostics": {"every": 0}})
        exp_dir, _, _ = run_experiment(spec, data, tmp_path, progress=False)
        runs = load_tables(exp_dir)[0].set_index("seed").sort_index()
        assert set(runs["engine"]) == {engine} and set(runs["status"]) == {"ok"}
        tables.append(runs)
    result = compare(*tables)
    assert result["within_1e-4"] < result["runs"] and result["largest"] > 1e-3  # single runs do part
    assert abs(result["mean_difference"]) < result["half_width"], result
