"""The vectorized engine against the reference Keras engine, run by run.

Tolerances: both engines do the same float32 arithmetic in a different order (a batched matmul
and XLA fusions against Keras' per-model kernels), about 1e-7 relative per operation. On
well-conditioned runs that stays near 1e-7 through training, so full trainings are compared at
1e-4. The `ones` initializer is the exception: its logits are in the thousands, and the reference
engine itself moves by 4e-4 to 2e-3 after one epoch when its inputs move by one rounding step
(and by percents after a few), so its runs are compared after one epoch, to within 10 times that.
"""

import dataclasses
import json
import time

import numpy as np
import pytest
from user_parts import PARTS, restored_catalogues

from experiments.engines import keras_fit as engine_keras
from experiments.engines import stacked_graph
from experiments.engines import vectorized as engine_vectorized
from experiments.records import rundir
from experiments.reporting.tables import load_tables
from experiments.runner import resolve_engines, run_experiment
from experiments.spec import expand, validate
from initializers import INITIALIZERS
from models import build, head_for

DIGITS = {
    "name": "eq", "dataset": "digits", "model": {"name": "mlp", "widths": [16, 16]},
    "initializers": ["he_normal", "ones", "random_uniform"],
    "losses": ["mean_squared_error", "categorical_crossentropy", "huber"], "seeds": [0, 1], "epochs": 1,
    "save_model": False,
}


def _group(config, tmp_path, data=None, graphs=None):
    """The experiment's runs as one vectorized group, recorders in tmp_path (`data`: the dataset
    object to train on, else the config's loaded; `graphs`: a `stacked_graph.Graphs` cache)."""
    spec, (loaded,) = validate(config)
    data = data or loaded
    jobs = [(run, rundir.RunRecorder(run, tmp_path / "vec" / run.run_id, tmp_path / "vec")) for run in expand(spec)]
    jobs.sort(key=lambda job: json.dumps(job[0].config.loss, sort_keys=True))
    for _, recorder in jobs:
        recorder.start()
    head = head_for(data.task, spec.losses[0], data.n_classes, data.n_targets)
    return engine_vectorized.Group(jobs, data, head, graphs=graphs), jobs, data


def _relative(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)


def test_every_members_initial_weights_are_bit_identical_to_the_reference(tmp_path):
    config = {**DIGITS, "initializers": INITIALIZERS.names, "losses": ["categorical_crossentropy"],
              "bias_initializer": "random_normal", "model": {"name": "mlp", "widths": [16, 8]}}
    group, jobs, data = _group(config, tmp_path)
    for m, (run, _) in enumerate(jobs):
        reference = build(run.config.model, data.input_shape, group.head, run.config.initializer,
                          run.config.bias_initializer, run.config.seed).get_weights()
        mine = [w.numpy()[m] for w in group.model.weights]
        assert len(mine) == len(reference) == 6
        for a, b in zip(mine, reference, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=run.run_id)


def _reference_weights(run, data, folder):
    recorder = rundir.RunRecorder(run, folder / run.run_id, folder)
    recorder.start()
    model, head = engine_keras.build_model(run.config, data)
    engine_keras.fit(model, head, run.config, data, recorder)
    return model.get_weights()


@pytest.mark.slow
def test_after_one_epoch_every_members_weights_match_the_reference(tmp_path):
    group, jobs, data = _group({**DIGITS, "seeds": [0]}, tmp_path)
    group.train(time.perf_counter())
    nudged = dataclasses.replace(data, x_train=np.nextafter(data.x_train, np.inf).astype("float32"))
    for m, (run, _) in enumerate(jobs):
        reference = _reference_weights(run, data, tmp_path / "ref")
        mine = [w.numpy()[m] for w in group.model.weights]
        if run.config.initializer["name"] != "ones":
            assert max(_relative(a, b) for a, b in zip(mine, reference, strict=True)) < 1e-5, run.run_id
            continue
        # ill-conditioned: the reference itself can move by more than 1e-5 when its inputs move by
        # one rounding step; the engines must agree to within that order (one nudge is one sample of
        # that noise, hence the factor 10 and the floor of 1e-4: with numpy 2.4 / TF 2.21 a nudge
        # moved it by 1e-6 while the engines differed by 1.9e-5; a wrong batch or gradient is off
        # by far more)
        noise = _relative(_flat(_reference_weights(run, nudged, tmp_path / "nudged")), _flat(reference))
        assert _relative(_flat(mine), _flat(reference)) < max(1e-4, 10 * noise), (run.run_id, noise)


# RMSprop, Adagrad and Adadelta differ by rounding: TensorFlow's graph rewrites (grappler, which
# the engine skips: `stacked_graph.as_traced`) change how Keras' own graph divides by a square root
BIT_FOR_BIT = [("adam", ["categorical_crossentropy", "mean_squared_error"]),
               ({"name": "sgd", "momentum": 0.9, "nesterov": True}, ["categorical_crossentropy", "huber"]),
               ("sgd", ["mean_squared_error"])]


@pytest.mark.slow
@pytest.mark.parametrize(("optimizer", "losses"), BIT_FOR_BIT)
def test_unjitted_dense_members_train_bit_for_bit_as_their_keras_models(optimizer, losses, tmp_path, monkeypatch):
    """With TensorFlow's oneDNN kernels (which `experiments` and the tests turn on) and without XLA,
    each dense member's weights and optimizer state after training with Adam or SGD equal its own
    Keras fit's exactly, whatever its learning rate: the batched matmul, the members' rates in the
    optimizer's update and the bias gradients compute Keras' numbers (`stacked_graph`)."""
    from experiments.records.environment import devices

    assert devices()["onednn"], "TF_ENABLE_ONEDNN_OPTS=1 must be set before TensorFlow is imported"
    monkeypatch.setattr(stacked_graph, "XLA", False)
    config = {**DIGITS, "initializers": ["he_normal", "random_uniform"], "losses": losses, "seeds": [0],
              "epochs": 2, "batch_size": 32, "optimizer": optimizer, "learning_rate": [0.002, 0.05]}
    group, jobs, data = _group(config, tmp_path)
    group.train(time.perf_counter())
    for m, (run, _) in enumerate(jobs):
        recorder = rundir.RunRecorder(run, tmp_path / "ref" / run.run_id, tmp_path / "ref")
        recorder.start()
        reference, head = engine_keras.build_model(run.config, data)
        engine_keras.fit(reference, head, run.config, data, recorder)
        mine = group.member_model(m)
        for a, b in zip(mine.weights + mine.optimizer.variables, reference.weights + reference.optimizer.variables,
                        strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{run.run_id} {b.name}")


def _flat(weights):
    return np.concatenate([w.ravel() for w in weights])


GRIDS = {
    "digits: mse, huber, cross-entropy, top-k and macro scores": {
        **DIGITS, "initializers": ["he_normal", "zeros"], "epochs": 3, "seeds": [0],
        "metrics": ["accuracy", "top_2_accuracy", "precision", "recall", "f1"]},
    "breast cancer: sigmoid and softmax heads, auc, binary scores": {
        "name": "eq", "dataset": "breast_cancer", "model": {"name": "mlp", "widths": [16]},
        "initializers": ["glorot_normal", "random_uniform"],
        "losses": ["binary_crossentropy", "huber", "categorical_crossentropy"],
        "seeds": [0], "epochs": 3, "metrics": ["accuracy", "auc", "precision", "recall", "f1"],
        "save_model": False,
    },
    "regression: early stopping, l1/l2, tanh, error metrics": {
        "name": "eq", "dataset": {"name": "regression", "n_samples": 300, "outlier_fraction": 0.1},
        "model": {"name": "mlp", "widths": [16], "activation": "tanh", "l1": 0.001, "l2": 0.01},
        "initializers": ["he_normal", "glorot_uniform"], "losses": ["mean_squared_error", "mean_absolute_error"],
        "seeds": [0, 1], "epochs": 12, "optimizer": "sgd", "learning_rate": 0.05,
        "early_stopping": {"patience": 2, "min_delta": 0.001},
        "metrics": ["mean_absolute_error", "root_mean_squared_error", "mean_squared_error", "r2"],
    },
    "a batch larger than the training set": {
        "name": "eq", "dataset": {"name": "moons", "n_samples": 80}, "model": {"name": "mlp", "widths": [8]},
        "initializers": ["he_normal"], "losses": ["binary_crossentropy"], "seeds": [0, 1], "epochs": 3,
        "batch_size": 128,
    },
    "learning rates per member, every optimizer": {
        "name": "eq", "dataset": {"name": "moons", "n_samples": 120}, "model": {"name": "mlp", "widths": [8]},
        "initializers": ["he_normal"], "losses": ["binary_crossentropy"], "seeds": [0], "epochs": 3,
        "learning_rate": [0.003, 0.03, 0.3], "batch_size": 16,
        "optimizer": ["adam", {"name": "sgd", "momentum": 0.9, "nesterov": True}, {"name": "rmsprop", "momentum": 0.5},
                      "adagrad", "adadelta"],
    },
    "hidden activations per member: a model axis that differs only in its activation": {
        "name": "eq", "dataset": {"name": "moons", "n_samples": 120},
        "model": [{"name": "mlp", "widths": [8, 6], "activation": a} for a in ("relu", "tanh", "sigmoid", "linear")],
        "initializers": ["he_normal"], "losses": ["binary_crossentropy", "mean_squared_error"],
        "seeds": [0], "epochs": 3, "batch_size": 16, "diagnostics": {"every": 1}, "save_model": False},
    "digits CNN: convolutions, pooling, l2, the even kernel's padding": {
        **DIGITS, "model": {"name": "cnn", "filters": [4, 6], "kernel_size": 2, "widths": [12], "l2": 0.001},
        "initializers": ["he_normal", "glorot_uniform"], "losses": ["categorical_crossentropy", "mean_squared_error"],
        "seeds": [0, 1], "epochs": 3, "diagnostics": {"every": 1}},
    "batch norm: each member's batch statistics and moving averages, early stopping restores them": {
        "name": "eq", "dataset": "digits", "model": {"name": "mlp", "widths": [16, 12], "batch_norm": True},
        "initializers": ["he_normal", "glorot_uniform"], "losses": ["categorical_crossentropy", "mean_squared_error"],
        "seeds": [0, 1], "epochs": 4, "early_stopping": {"patience": 1, "min_delta": 0.01},
        "diagnostics": {"every": 2}, "save_model": False},
    "batch norm on a regression, rmsprop, learning rates per member": {
        "name": "eq", "dataset": {"name": "regression", "n_samples": 300},
        "model": {"name": "mlp", "widths": [16], "activation": "tanh", "batch_norm": True},
        "initializers": ["he_normal", "random_uniform"], "losses": ["mean_squared_error", "huber"], "seeds": [0],
        "epochs": 4, "optimizer": "rmsprop", "learning_rate": [0.001, 0.01], "save_model": False},
    "divergence: sgd at learning rate 1": {
        "name": "eq", "dataset": {"name": "regression", "n_samples": 300}, "model": {"name": "mlp", "widths": [16]},
        "initializers": ["he_normal", "ones"], "losses": ["mean_squared_error", "huber"], "seeds": [0],
        "epochs": 3, "optimizer": "sgd", "learning_rate": 1.0,
    },
}

# Batch norm divides by each batch's spread, which amplifies rounding: on the batch-norm digits grid
# the reference's own end-of-training gradient ratio moved by 9.2e-5 when its inputs moved by one
# rounding step (losses by 2.8e-5), and the engines differ by 2.8e-4 there (losses by 1.4e-5);
# at step 0 the diagnostics agree to 7e-8 (measured 2026-11-24 with numpy 2.4 / TF 2.21).
RTOL = {name: 1e-3 for name in GRIDS if name.startswith("batch norm")}


REFERENCE = {}  # grid name -> the keras engine's tables, trained once for both XLA settings


def _tables(grid, engine, folder):
    """(runs by run id, epochs) of the grid trained with `engine` in `folder`."""
    spec, data = validate({**grid, "engine": engine})
    exp_dir, _, _ = run_experiment(spec, data, folder, progress=False)
    runs, epochs = load_tables(exp_dir)
    return runs.set_index("run_id").sort_index(), epochs


# each grid as its groups decide (`stacked_graph.xla_pays`: XLA for the CNN alone), and two with
# every group's epoch loop XLA-compiled
XLA_GRIDS = ["learning rates per member, every optimizer",
             "batch norm: each member's batch statistics and moving averages, early stopping restores them"]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "xla"), [(name, None) for name in GRIDS] + [(name, True) for name in XLA_GRIDS])
def test_a_short_training_gives_every_run_the_reference_results(name, xla, tmp_path, monkeypatch):
    monkeypatch.setattr(stacked_graph, "XLA", xla)
    if name not in REFERENCE:
        REFERENCE[name] = _tables(GRIDS[name], "keras", tmp_path / "keras")
    (ref, ref_epochs), (vec, vec_epochs) = REFERENCE[name], _tables(GRIDS[name], "vectorized", tmp_path / "vectorized")
    assert list(vec_epochs.columns) == list(ref_epochs.columns)
    assert (vec["status"] == ref["status"]).all() and (vec["epochs_run"] == ref["epochs_run"]).all()
    assert (vec["reason"].fillna("") == ref["reason"].fillna("")).all()
    metrics = [c for c in ref if c.startswith(("final_", "best_", "test_", "train_set_", "diag_"))]
    assert set(metrics) <= set(vec) and any(c.startswith("test_") for c in metrics)
    np.testing.assert_allclose(vec[metrics].to_numpy(float), ref[metrics].to_numpy(float), rtol=RTOL.get(name, 1e-4),
                               atol=1e-6)
    if name.startswith("divergence"):
        assert set(ref["status"]) == {"ok", "diverged"}  # the grid holds both, and the engines agree on which


def test_xla_compiles_a_groups_epoch_loop_where_it_pays_and_a_split_group_decides_as_the_whole(tmp_path,
                                                                                                monkeypatch):
    from experiments.spec.budget import GIB, member_bytes

    group, jobs, data = _group(DIGITS, tmp_path)  # 18 small MLPs, one epoch: the compile would not pay
    assert not group.jit and group.train_full is group.train_rest
    assert engine_vectorized.Group(jobs, data, group.head, group_size=100_000).jit  # a wide stack pays
    cnn = {**DIGITS, "model": {"name": "cnn", "filters": [4], "kernel_size": 2, "widths": [8]}}
    assert _group(cnn, tmp_path / "cnn")[0].jit  # convolutions always pay
    decided = []
    monkeypatch.setattr(stacked_graph, "xla_pays", lambda *args: decided.append(args[-1]) or False)
    spec, (data,) = validate(DIGITS)
    one = member_bytes(spec.model[0], data, spec.batch_size[0], spec.diagnostics.probe)
    spec, datasets = validate({**DIGITS, "initializers": ["he_normal"], "engine_memory": 2.5 * one / GIB})
    run_experiment(spec, datasets, tmp_path / "split", progress=False)
    assert decided == [6, 6, 6]  # 6 runs in stacks of 2: each decides for the 6


def test_a_stack_on_a_reused_graph_trains_exactly_as_on_its_own(tmp_path):
    """A tuning search's later stacks of one structure train on the first one's traced graph
    (`stacked_graph.Graphs`): each from its own initial weights (batch norm's too), learning rates
    and a fresh optimizer state, whatever its batch size and epochs; numbers identical to its own graph."""
    base = {**DIGITS, "initializers": ["he_normal", "random_uniform"], "losses": ["categorical_crossentropy", "huber"],
            "model": {"name": "mlp", "widths": [16, 8], "batch_norm": True}, "optimizer": "adam"}
    first = {**base, "learning_rate": [0.05], "batch_size": [32], "epochs": 3}
    second = {**base, "initializers": ["glorot_normal", "zeros"], "learning_rate": [0.003], "batch_size": [64],
              "seeds": [3, 4], "epochs": 2}
    graphs = stacked_graph.Graphs()
    earlier, _, data = _group(first, tmp_path / "earlier", graphs=graphs)
    earlier.train(time.perf_counter())
    reused, reused_jobs, _ = _group(second, tmp_path / "reused", data, graphs)
    assert reused.train_full is earlier.train_full and reused.model is earlier.model
    reused.train(time.perf_counter())
    own, own_jobs, _ = _group(second, tmp_path / "own", data)
    assert own.model is not earlier.model
    own.train(time.perf_counter())
    assert [r.history for _, r in reused_jobs] == [r.history for _, r in own_jobs]
    for a, b in zip(reused.model.weights + reused.optimizer.variables, own.model.weights + own.optimizer.variables,
                    strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    other, _, _ = _group({**second, "losses": ["huber"]}, tmp_path / "other", data, graphs)
    assert other.model is not earlier.model  # another structure: its own graph


def test_a_learning_rate_axis_trains_as_one_group():
    spec, (data,) = validate({**GRIDS["learning rates per member, every optimizer"], "optimizer": "adam"})
    runs = expand(spec)
    assert len({run.config.learning_rate for run in runs}) == 3
    assert len({engine_vectorized.group_key(run, data) for run in runs}) == 1


def test_an_activation_axis_trains_as_one_group_and_other_model_settings_do_not():
    grid = GRIDS["hidden activations per member: a model axis that differs only in its activation"]
    spec, (data,) = validate(grid)
    assert len({engine_vectorized.group_key(run, data) for run in expand(spec)}) == 1
    spec, (data,) = validate({**grid, "model": [grid["model"][0], {**grid["model"][1], "widths": [8, 5]}]})
    assert len({engine_vectorized.group_key(run, data) for run in expand(spec)}) == 2


def test_the_vectorized_engine_is_the_default_stacks_every_catalogue_model_and_falls_back_for_yours(
        capsys, tmp_path, monkeypatch):
    spec, _ = validate(DIGITS)
    assert spec.engine == "vectorized"
    assert {r.config.engine for r in resolve_engines(spec, expand(spec))} == {"vectorized"}
    for model in ({"name": "cnn", "dropout": 0.2}, {"name": "mlp", "dropout": 0.2, "batch_norm": True}, "linear"):
        spec, _ = validate({**DIGITS, "model": model})
        assert {r.config.engine for r in resolve_engines(spec, expand(spec))} == {"vectorized"}
    assert capsys.readouterr().err == ""
    # on a model axis, only the runs of a model it cannot stack (a user's own) fall back, with a notice
    (tmp_path / "my_parts.py").write_text(PARTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    with restored_catalogues():
        spec, _ = validate({**DIGITS, "model": ["mlp", {"name": "my_parts:two_dense", "width": 4}]}, base=tmp_path)
        engines = {r.axes["model"]: r.config.engine for r in resolve_engines(spec, expand(spec))}
    assert engines == {"mlp": "vectorized", "two_dense(width=4)": "keras"}
    notice = capsys.readouterr().err.strip()
    assert notice.startswith("notice: eq: the vectorized engine does not support model two_dense")
    assert "\n" not in notice


def test_a_failing_group_is_recorded_as_failed_and_the_other_groups_go_on(tmp_path, monkeypatch):
    real = engine_vectorized.Group.train

    def fail_sigmoid_heads(self, started):
        if self.head.activation == "sigmoid":
            raise RuntimeError("injected failure\nsecond line")
        return real(self, started)

    monkeypatch.setattr(engine_vectorized.Group, "train", fail_sigmoid_heads)
    spec, data = validate({"name": "fail", "dataset": {"name": "moons", "n_samples": 80},
                           "model": {"name": "mlp", "widths": [8]}, "initializers": ["he_normal"],
                           "losses": ["binary_crossentropy", "categorical_crossentropy"], "epochs": 2})
    exp_dir, trained, _ = run_experiment(spec, data, tmp_path, progress=False)
    runs, _ = load_tables(exp_dir)
    status = dict(zip(runs["loss"], runs["status"], strict=True))
    assert trained == 2 and status == {"binary_crossentropy": "failed", "categorical_crossentropy": "ok"}
    assert runs.set_index("loss").loc["binary_crossentropy", "reason"] == "RuntimeError: injected failure"
