"""Every run keeps its trained model as model.keras: loaded with Keras alone, it gives the run's
recorded test metrics, whichever engine trained it (the vectorized engine unstacks each member
into the model the Keras engine builds); `save_model = false` keeps none."""

import json
import warnings

import keras
import pytest
from conftest import TINY

from experiments.records.rundir import MODEL, RESULT
from experiments.runner import run_experiment
from experiments.spec import expand, validate
from models import head_for
from models.losses import encode_targets

GRID = {**TINY, "save_model": True, "epochs": 4, "early_stopping": {"patience": 1, "monitor": "val_loss"}}


def _models(tmp_path, **changes):
    spec, datasets = validate({**GRID, **changes})
    exp_dir, _, _ = run_experiment(spec, datasets, tmp_path, progress=False)
    return spec, datasets[0], exp_dir


@pytest.mark.parametrize(("engine", "model"), [
    ("vectorized", None), ("vectorized", {"name": "mlp", "widths": [8, 8], "batch_norm": True, "dropout": 0.2}),
    ("keras", None)])  # Keras saves its own batch-norm model as it saves any (39 s of the tests)
def test_a_saved_model_gives_the_runs_recorded_test_metrics(engine, model, tmp_path):
    spec, data, exp_dir = _models(tmp_path / engine, engine=engine, **({"model": model} if model else {}))
    layers = set()
    for run in expand(spec):
        folder = exp_dir / run.run_id
        result = json.loads((folder / RESULT).read_text())
        assert result["status"] == "ok"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # loads as saved: weights and optimizer state
            model = keras.saving.load_model(folder / MODEL)
        head = head_for(data.task, run.config.loss, data.n_classes, data.n_targets)
        measured = model.evaluate(data.x_test, encode_targets(data.y_test, head), batch_size=256, verbose=0,
                                  return_dict=True)
        assert set(measured) == {"loss", *spec.metrics}
        for name, value in measured.items():
            assert value == pytest.approx(result[f"test_{name}"], abs=1e-6), (run.run_id, name)
        layers.add(tuple((type(layer).__name__, layer.name, tuple(w.shape for w in layer.weights))
                         for layer in model.layers))
    assert len(layers) == 1  # every member unstacks into the same architecture


def test_the_engines_save_the_same_architecture_and_save_model_false_saves_none(tmp_path):
    kinds = {}
    for engine in ("vectorized", "keras"):
        spec, _, exp_dir = _models(tmp_path / engine, engine=engine, seeds=[0], initializers=["he_normal"])
        model = keras.saving.load_model(exp_dir / expand(spec)[0].run_id / MODEL)
        kinds[engine] = [(type(layer).__name__, layer.name, layer.get_config().get("activation"))
                         for layer in model.layers]
    assert kinds["vectorized"] == kinds["keras"]
    spec, _, exp_dir = _models(tmp_path / "off", save_model=False, seeds=[0])
    assert not list(exp_dir.rglob(MODEL)) and list(exp_dir.rglob(RESULT))


@pytest.mark.parametrize("optimizer", [{"name": "sgd", "momentum": 0.9}, {"name": "rmsprop", "momentum": 0.5},
                                       "adam"])
def test_both_engines_save_the_same_optimizer_state(optimizer, tmp_path):
    """The vectorized engine steps at learning rate 1 and scales each member's step; the momentum
    SGD and RMSprop keep holds the rate as a factor, so a saved member's is scaled back."""
    states = {}
    for engine in ("vectorized", "keras"):
        spec, _, exp_dir = _models(tmp_path / engine, engine=engine, seeds=[0], initializers=["he_normal"],
                                   losses=["binary_crossentropy"], optimizer=optimizer, learning_rate=[0.01, 0.1],
                                   early_stopping=False)
        states[engine] = [[v.numpy() for v in keras.saving.load_model(exp_dir / run.run_id / MODEL).optimizer.variables]
                          for run in expand(spec)]
    for vectorized, reference in zip(states["vectorized"], states["keras"], strict=True):
        assert len(vectorized) == len(reference)
        for a, b in zip(vectorized, reference, strict=True):
            assert a == pytest.approx(b, rel=1e-4, abs=1e-6)
