"""Regression in the user's units: targets are scaled for training as `target_scaling` says, and
every error metric is reported again in the targets' own units (`_raw`), in runs.csv and the report."""

import numpy as np
import pytest
from rendered import markdown_tables

import experiments as lab
from experiments.data import load_dataset
from experiments.reporting.tables import cell_table

REGRESSION = {"name": "units", "dataset": {"name": "diabetes"}, "model": {"name": "mlp", "widths": [8]},
              "initializers": ["he_normal"], "losses": ["mean_squared_error", "huber"], "seeds": [0, 1], "epochs": 2,
              "save_model": False}


@pytest.mark.parametrize("how", ["robust", "standard", "none"])
def test_target_scaling_centers_and_scales_the_training_targets(how):
    raw = load_dataset({"name": "diabetes", "target_scaling": "none"})
    data = load_dataset({"name": "diabetes", "target_scaling": how})
    center, scale = np.array(data.target_center), np.array(data.target_scale)
    np.testing.assert_allclose(data.y_train * scale + center, raw.y_train, rtol=1e-5)
    if how == "standard":
        assert abs(data.y_train.mean()) < 1e-5 and data.y_train.std() == pytest.approx(1, abs=1e-5)
    if how == "robust":
        assert abs(np.median(data.y_train)) < 1e-5
    assert (how == "none") == (scale.tolist() == [1.0])


def test_target_scaling_is_for_regression_only():
    with pytest.raises(ValueError, match="target_scaling applies to regression; this task is multiclass"):
        load_dataset({"name": "iris", "target_scaling": "standard"})
    with pytest.raises(ValueError, match="valid values: robust, standard, none"):
        load_dataset({"name": "diabetes", "target_scaling": "minmax"})


def test_raw_errors_are_the_scaled_errors_in_the_targets_units_in_results_and_report(tmp_path):
    result = lab.run(REGRESSION, output=tmp_path, progress=False)
    scale = load_dataset("diabetes").target_scale[0]
    runs = result.runs
    for metric in ("mean_absolute_error", "root_mean_squared_error"):
        for split in ("test_", "final_val_", "best_", "train_set_"):
            np.testing.assert_allclose(runs[f"{split}{metric}_raw"], runs[f"{split}{metric}"] * scale, rtol=1e-5)
    page = result.report.read_text()
    assert "## Test mean_absolute_error_raw: in the targets' own units" in page
    (header, rows), = [t for t in markdown_tables(page.split("own units")[1])][:1]
    cells = cell_table(runs, "test_mean_absolute_error_raw").set_index("loss")["result"]
    assert header[0] == "initializer" and set(header[1:]) == {"mean_squared_error", "huber"}
    for loss, value in zip(header[1:], rows[0][1:], strict=True):
        assert value == cells[loss]
