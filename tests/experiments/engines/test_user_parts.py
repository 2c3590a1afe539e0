"""A user's own parts train in both engines: the vectorized engine stacks a user's initializer,
element-wise loss, metric and activation with the reference's numbers, falls back to keras with a
notice for what it cannot stack, and saved models load with the parts registered again."""

import json
import subprocess
import sys

import numpy as np
import pytest
from user_parts import PARTS, restored_catalogues

import experiments as lab


@pytest.fixture
def parts(tmp_path):
    (tmp_path / "my_parts.py").write_text(PARTS)
    with restored_catalogues():
        yield f"{tmp_path}/my_parts.py"


def _config(parts, **changes):
    return {"name": "mine", "dataset": {"name": "iris"},
            "model": {"name": "mlp", "widths": [8], "activation": f"{parts}:swishy"},
            "initializers": ["he_normal", {"name": f"{parts}:scaled_normal", "scale": 0.5}],
            "losses": ["categorical_crossentropy", f"{parts}:log_cosh"], "metrics": ["accuracy", f"{parts}:hit"],
            "seeds": [0, 1], "epochs": 2, "batch_size": 16, "save_model": False, **changes}


def _tests(result):
    return result.runs.set_index("run_id")[["test_loss", "test_accuracy", "test_hit"]].sort_index()


def test_the_vectorized_engine_stacks_a_users_parts_with_the_references_numbers(parts, tmp_path, capsys):
    stacked = lab.run(_config(parts, seeds=[3]), output=tmp_path / "vec", progress=False)
    reference = lab.run(_config(parts, seeds=[3], engine="keras"), output=tmp_path / "keras", progress=False)
    assert "notice" not in capsys.readouterr().err and len(stacked.runs) == 4
    assert set(stacked.runs["engine"]) == {"vectorized"} and set(reference.runs["engine"]) == {"keras"}
    np.testing.assert_allclose(_tests(stacked).to_numpy(), _tests(reference).to_numpy(), rtol=1e-4, atol=1e-6)
    # hit is the accuracy, by the user's own function; its direction (greater is better) ranks the cells
    np.testing.assert_allclose(stacked.runs["test_hit"], stacked.runs["test_accuracy"], atol=1e-6)


def test_what_cannot_stack_falls_back_to_keras_with_a_notice(parts, tmp_path, capsys):
    result = lab.run(_config(parts, losses=[f"{parts}:batch_mean_squared"], initializers=["he_normal"],
                             model={"name": f"{parts}:two_dense", "width": 4}, metrics=["accuracy"],
                             dataset=f"{parts}:blobs", seeds=[0]), output=tmp_path, progress=False)
    err = capsys.readouterr().err
    assert "the vectorized engine does not support model two_dense(width=4) (model 'two_dense' has no stacked " \
           "version); training those runs with the keras engine" in err
    assert set(result.runs["engine"]) == {"keras"} and set(result.runs["status"]) == {"ok"}
    alone = lab.run(_config(parts, losses=[f"{parts}:batch_mean_squared"], initializers=["he_normal"], seeds=[0],
                            name="loss_only"), output=tmp_path, progress=False)
    assert "does not support loss batch_mean_squared (yours, not element-wise)" in capsys.readouterr().err
    assert set(alone.runs["engine"]) == {"keras"}


def test_a_saved_model_loads_in_another_process_and_a_changed_file_stops_a_resume(parts, tmp_path):
    result = lab.run(_config(parts, seeds=[0], initializers=[{"name": f"{parts}:scaled_normal", "scale": 0.5}],
                             losses=[f"{parts}:log_cosh"], save_model=True), output=tmp_path, progress=False)
    run = result.folder / result.runs["run_id"][0]
    script = f"""
import json, sys
import experiments as lab
from experiments.data import load_dataset
from models.losses import encode_targets, head_for
model = lab.load_model({str(run)!r})
data = load_dataset("iris")
y = encode_targets(data.y_test, head_for("multiclass", "log_cosh", 3))
print(json.dumps(model.evaluate(data.x_test, y, verbose=0, return_dict=True)))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stderr == "", out.stderr  # quiet, as the API is
    loaded, recorded = json.loads(out.stdout.strip().splitlines()[-1]), json.loads((run / "result.json").read_text())
    for metric in ("loss", "accuracy", "hit"):
        assert abs(loaded[metric] - recorded[f"test_{metric}"]) < 1e-6, metric
    with open(parts, "a") as f:
        f.write("\n# edited\n")
    with pytest.raises(ValueError, match=r"your initializer 'scaled_normal' \(.*my_parts.py\) changed since this "
                                         "experiment's runs trained with it; rerun with --overwrite"):
        lab.run(_config(parts, seeds=[0, 1], initializers=[{"name": f"{parts}:scaled_normal", "scale": 0.5}],
                        losses=[f"{parts}:log_cosh"], save_model=True), output=tmp_path, progress=False)
