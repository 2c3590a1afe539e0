"""keras-tuner searches: real tuners on tiny searches, reloaded with keras-tuner's own API; a
diverging trial; resume after a kill; keras-tuner's chief and two workers; the HParams dashboard."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras_tuner as kt
import pandas as pd
import pytest
from conftest import wait_until, write_config
from rendered import markdown_unescape

from experiments import cli
from experiments.reporting.tune_report import load_trials
from initializers.registry import label

MOONS = {
    "dataset": {"name": "moons", "n_samples": 80},
    "model": {"name": "mlp", "widths": [8]},
    "initializers": ["he_normal", "zeros"],
    "losses": ["binary_crossentropy", "mean_squared_error"],
    "epochs": 2,
    "seeds": [0, 1],
    "save_model": False,
    "tune": {"max_trials": 3},  # ranked by val_loss: ties (common in accuracy on 16 examples) are unlikely
}
# sgd on a regression with learning rates up to 1000: the large ones diverge
DIVERGING = {
    "dataset": {"name": "regression", "n_samples": 200},
    "model": {"name": "mlp", "widths": [8]},
    "initializers": ["he_normal"],
    "losses": ["mean_squared_error"],
    "optimizer": "sgd",
    "epochs": 3,
    "tune": {"max_trials": 4, "learning_rate": {"min": 0.001, "max": 1000.0}},
}
STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def _config(tmp_path, name, base, **changes):
    tune = {**base["tune"], **changes.pop("tune", {})}
    return write_config(tmp_path / f"{name}.toml", {"name": name, **base, **changes, "tune": tune})


def _tune(path, out, *extra):
    return cli.main(["tune", str(path), "--output", str(out), "--quiet", *extra])


def _subprocess(path, out, *extra):
    return [sys.executable, "-m", "experiments", "tune", str(path), "--output", str(out), "--quiet", *extra]


def _no_build(hp):
    raise AssertionError("reloading a finished project must not build a model")


def _reload(search_dir, project, tuner=kt.RandomSearch, **kwargs):
    """The search's project as keras-tuner itself reloads it from disk."""
    return tuner(hypermodel=_no_build, directory=str(search_dir / "tuner"), project_name=project, overwrite=False,
                 objective=kt.Objective(kwargs.pop("objective", "val_loss"), kwargs.pop("direction", "min")),
                 **kwargs)


@pytest.mark.parametrize("tune, message", [
    ({"tuner": "annealing"}, "tune.tuner 'annealing' is unknown; valid: random, bayesian, hyperband, grid"),
    ({"mode": "joint"}, "cannot rank trials by val_loss"),
    ({"tuner": "grid"}, "the grid tuner needs a finite grid; set tune.learning_rate.step"),
    ({"objective": "val_accuracy", "direction": "min"}, "tune.direction 'min' is wrong for val_accuracy: it must be "
                                                         "'max'"),
    ({"objective": "val_auc"}, "tune.objective 'val_auc' is not a validation metric of this spec; valid: val_loss, "
                               "val_accuracy"),
    ({"learning_rate": {"min": 0.1, "max": 0.01}},
     "tune.learning_rate.max must be a finite number > 0.1 and <= 1,000,000, got 0.01"),
    ({"learning_rate": {"low": 0.1}}, "tune.learning_rate must be a table (min, max, sampling, step)"),
    ({"batch_size": [32, 32]}, "tune.batch_size must be a non-empty list of distinct integers > 0"),
    ({"max_trials": 0}, "tune.max_trials must be an integer > 0 and <= 100,000, got 0"),
    ({"executions": 3}, "tune.executions 3 needs as many seeds; the spec has 2: add seeds or lower tune.executions"),
    ({"speed": 1}, "tune: unknown keys ['speed']"),
])
def test_a_bad_tune_table_is_a_one_line_error(tmp_path, capsys, tune, message):
    path = _config(tmp_path, "bad", MOONS, tune=tune)
    assert _tune(path, tmp_path) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_tune_needs_a_tune_table(tmp_path, capsys):
    path = write_config(tmp_path / "plain.toml", {k: v for k, v in MOONS.items() if k != "tune"})
    assert _tune(path, tmp_path) == 2
    assert "has no [tune] table" in capsys.readouterr().err


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A per-cell random search over 2 initializers x 2 losses, 3 trials each, then its tuned runs."""
    out = tmp_path_factory.mktemp("tune")
    path = _config(out, "moons_tune", MOONS)
    assert _tune(path, out) == 0
    return path, out, out / "runs" / "moons_tune", out / "reports" / "moons_tune"


@pytest.mark.slow
def test_every_trial_is_recorded_once_with_every_epoch(searched):
    _, _, search_dir, reports = searched
    trials = pd.read_csv(reports / "trials.csv")
    assert len(trials) == 4 * 3 and not trials.duplicated(["project", "trial_id"]).any()
    assert set(trials["status"]) == {"COMPLETED"} and set(trials["epochs_run"]) == {2}
    epochs = pd.read_csv(reports / "trial_epochs.csv")
    assert len(epochs) == 4 * 3 * 2
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(epochs.columns)
    # the objective keras-tuner kept is the best epoch of the history we kept
    for _, trial in trials.iterrows():
        history = epochs[(epochs["project"] == trial["project"]) & (epochs["trial_id"] == trial["trial_id"])]
        assert trial["objective"] == pytest.approx(history["val_loss"].min())
        assert 1e-4 <= trial["learning_rate"] <= 0.1 and trial["batch_size"] in (16, 32, 64, 128, 256)


def test_keras_tuner_reloads_the_same_best_settings_as_the_report(searched):
    _, _, search_dir, reports = searched
    best = pd.read_csv(reports / "best.csv", dtype={"trial_id": str})
    assert len(best) == 4
    for _, row in best.iterrows():
        tuner = _reload(search_dir, row["project"], max_trials=3)
        assert len(tuner.oracle.trials) == 3
        best_score = tuner.oracle.get_best_trials(1)[0].score
        assert row["objective"] == pytest.approx(best_score, rel=1e-12)
        # keras-tuner breaks a tie by the order it reads trials from disk; the report, by trial id
        tied = [t.trial_id for t in tuner.oracle.trials.values() if t.score == best_score]
        assert row["trial_id"] == min(tied, key=int)
        found = tuner.oracle.get_trial(row["trial_id"]).hyperparameters.values
        assert found["learning_rate"] == pytest.approx(row["learning_rate"], rel=1e-12)
        assert found["batch_size"] == row["batch_size"]


def _page(path):
    """A Markdown page as a reader sees it (escapes undone)."""
    return markdown_unescape(path.read_text())


def test_each_cell_is_retrained_at_its_own_best_settings_on_every_seed(searched):
    _, out, _, reports = searched
    best = pd.read_csv(reports / "best.csv").set_index("cell")
    tuned = pd.read_csv(reports / "tuned.csv").set_index("cell")
    assert set(tuned.index) == set(best.index)
    assert all(text.endswith("(2)") for text in tuned["test accuracy"])
    runs = pd.read_csv(out / "reports" / "moons_tune_tuned" / "runs.csv")
    assert len(runs) == 4 * 2 and set(runs["status"]) == {"ok"}
    for run_id in runs["run_id"]:
        config = json.loads((out / "runs" / "moons_tune_tuned" / run_id / "config.json").read_text())
        cell = f"{label(config['initializer'])} | {label(config['loss'])}"
        assert config["learning_rate"] == pytest.approx(best.loc[cell, "learning_rate"])
        assert config["batch_size"] == best.loc[cell, "batch_size"]
    report = _page(reports / "tune.md")
    assert "## Tuned comparison" in report and "max_consecutive_failed_trials" in report
    assert (reports / "sensitivity_learning_rate.png").stat().st_size > 0
    assert (reports / "tune.html").is_file()


def test_hparams_dashboard_declares_the_domains_and_every_trial_status(searched, tensorboard_server, wait):
    _, _, search_dir, _ = searched
    with tensorboard_server(search_dir) as (get, post):
        def sessions():
            groups = post("/data/plugin/hparams/session_groups", {
                "experimentName": "", "allowedStatuses": STATUSES, "colParams": [], "startIndex": 0,
                "sliceSize": 1000})
            found = [s for g in groups["sessionGroups"] for s in g["sessions"]]
            return len(found) == 12 and found

        found = wait(sessions, "tensorboard to load every trial")
        experiment = post("/data/plugin/hparams/experiment", {"experimentName": ""})
        trial = search_dir / "trials" / "he_normal__binary_crossentropy" / "trial_0"
        served = get("/data/plugin/scalars/scalars", run=str(trial.relative_to(search_dir)),
                     tag="validation/accuracy")
        objective = get("/data/plugin/scalars/scalars", run=str(trial.relative_to(search_dir)),
                        tag="tuner/objective")
    infos = {h["name"]: h for h in experiment["hparamInfos"]}
    # the session shows the value the oracle scored (the best epoch's), first among the metrics
    assert experiment["metricInfos"][0]["name"]["tag"] == "tuner/objective"
    record = json.loads((trial / "trial.json").read_text())
    assert objective[0][2] == pytest.approx(record["objective"]) and record["objective"] > 0
    assert infos["learning_rate"]["domainInterval"] == {"minValue": 1e-4, "maxValue": 0.1}
    assert infos["batch_size"]["domainDiscrete"] == [16, 32, 64, 128, 256]
    assert infos["initializer"]["domainDiscrete"] == ["he_normal", "zeros"]
    assert {s["status"] for s in found} == {"STATUS_SUCCESS"}
    history = pd.read_csv(trial / "history.csv")
    assert [v for _, _, v in served] == pytest.approx(history["val_accuracy"].tolist())


def test_rerunning_a_finished_search_trains_no_trial(searched, capsys):
    path, out, search_dir, reports = searched
    before = {p: p.stat().st_mtime_ns for p in search_dir.glob("trials/*/*/trial.json")}
    assert _tune(path, out) == 0
    assert {p: p.stat().st_mtime_ns for p in search_dir.glob("trials/*/*/trial.json")} == before
    assert "2. resumed: kept 12 finished trials" in _page(reports / "tune.md")


def test_the_report_command_rebuilds_the_tuner_report_from_disk(searched):
    _, out, _, reports = searched
    before = (reports / "trials.csv").read_text()
    for name in ("tune.md", "trials.csv", "tuned.csv"):
        (reports / name).unlink()
    assert cli.main(["report", "--output", str(out)]) == 0
    assert (reports / "trials.csv").read_text() == before
    assert "## Tuned comparison" in _page(reports / "tune.md") and (reports / "tuned.csv").is_file()


@pytest.mark.slow
def test_a_diverging_trial_fails_with_its_reason_and_the_search_goes_on(tmp_path, tensorboard_server, wait):
    path = _config(tmp_path, "diverging", DIVERGING)
    assert _tune(path, tmp_path) == 0
    trials = pd.read_csv(tmp_path / "reports" / "diverging" / "trials.csv")
    assert len(trials) == 4
    failed, done = trials[trials["status"] == "FAILED"], trials[trials["status"] == "COMPLETED"]
    assert len(failed) >= 1 and len(done) >= 1
    assert failed["reason"].str.fullmatch(r"diverged: training loss (nan|inf) at epoch \d").all()
    assert (failed["learning_rate"] > done["learning_rate"].min()).all()
    report = _page(tmp_path / "reports" / "diverging" / "tune.md")
    assert "## Failed trials" in report and "diverged: training loss" in report
    with tensorboard_server(tmp_path / "runs" / "diverging") as (_, post):
        def statuses():
            groups = post("/data/plugin/hparams/session_groups", {
                "experimentName": "", "allowedStatuses": STATUSES, "colParams": [], "startIndex": 0,
                "sliceSize": 100})
            found = {s["name"].rsplit("/", 1)[-1]: s["status"] for g in groups["sessionGroups"] for s in g["sessions"]}
            return len(found) == 4 and found

        served = wait(statuses, "tensorboard to load every trial")
    expected = {f"trial_{t}": "STATUS_FAILURE" if s == "FAILED" else "STATUS_SUCCESS"
                for t, s in zip(trials["trial_id"], trials["status"], strict=True)}
    assert served == expected


def test_the_consecutive_failure_limit_stops_a_search_and_the_next_one_still_runs(tmp_path, capsys):
    # stacks of 2: the limit is checked as trials end, and the trials trained together all end
    path = _config(tmp_path, "failing", DIVERGING, losses=["mean_squared_error", "huber"], tune={
        "learning_rate": {"min": 300.0, "max": 1000.0}, "max_consecutive_failed_trials": 2, "stack": 2})
    assert _tune(path, tmp_path) == 0
    trials = pd.read_csv(tmp_path / "reports" / "failing" / "trials.csv")
    per_search = trials.groupby("project")["status"].agg(list).to_dict()
    # each stopped at the limit, 2 of its 4 trials; the first stop did not end the run
    assert per_search == {p: ["FAILED", "FAILED"] for p in ("he_normal__mean_squared_error", "he_normal__huber")}
    assert capsys.readouterr().err.count("stopped: Number of consecutive failures exceeded the limit of 2") == 2
    report = _page(tmp_path / "reports" / "failing" / "tune.md")
    assert "search he_normal__huber stopped early (Number of consecutive failures exceeded the limit of 2.)" in report
    assert "Not retrained, no completed trial: he_normal | huber, he_normal | mean_squared_error." in report


@pytest.mark.slow
def test_a_killed_search_resumes_without_redoing_finished_trials(tmp_path):
    path = _config(tmp_path, "killed", MOONS, initializers=["he_normal"], losses=["binary_crossentropy"],
                   epochs=40, tune={"max_trials": 5})
    search_dir = tmp_path / "runs" / "killed"
    process = subprocess.Popen(_subprocess(path, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(load_trials(search_dir)) >= 2 or process.poll() is not None, "two finished trials")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = {(r["trial_id"], r["started"]) for r in load_trials(search_dir)}
    assert 2 <= len(finished) < 5
    project = search_dir / "tuner" / "he_normal__binary_crossentropy"
    running = [json.loads(p.read_text())["trial_id"] for p in project.glob("trial_*/trial.json")
               if json.loads(p.read_text())["status"] == "RUNNING"]  # killed mid-trial, as keras-tuner saw it
    assert _tune(path, tmp_path) == 0
    records = load_trials(search_dir)
    assert sorted(r["trial_id"] for r in records) == ["0", "1", "2", "3", "4"]
    assert finished <= {(r["trial_id"], r["started"]) for r in records}  # not trained again
    assert {t.status for t in _reload(search_dir, "he_normal__binary_crossentropy", max_trials=5).oracle.trials
            .values()} == {"COMPLETED"}
    sessions = _page(tmp_path / "reports" / "killed" / "tune.md").split("## Sessions")[1]
    assert "1. interrupted" in sessions and f"2. resumed: kept {len(finished)} finished trials" in sessions
    resumed = next(line for line in sessions.splitlines() if "2. resumed" in line)
    assert running and "reran interrupted" in resumed and "from scratch" in resumed
    for trial_id in running:  # rerun from scratch, and said so
        assert f"he_normal__binary_crossentropy trial {trial_id}" in resumed
        assert [r["epochs_run"] for r in records if r["trial_id"] == trial_id] == [40]


@pytest.mark.slow
def test_keras_tuners_chief_and_two_workers_complete_every_trial_once(tmp_path):
    # two searches (one per cell), served at once on two ports; 60 epochs, so that a worker's first
    # round outlasts the other's start-up (with 2, one worker once took every trial before the other asked)
    path = _config(tmp_path, "spread", MOONS, seeds=[0], losses=["binary_crossentropy"], epochs=60,
                   tune={"max_trials": 4})
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    done = subprocess.run(_subprocess(path, tmp_path, "--workers", "2"), env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    search_dir = tmp_path / "runs" / "spread"
    records = load_trials(search_dir)
    assert sorted((r["project"], r["trial_id"]) for r in records) == [
        (p, t) for p in ("he_normal__binary_crossentropy", "zeros__binary_crossentropy") for t in "0123"]
    assert {r["status"] for r in records} == {"COMPLETED"}
    assert {r["worker"] for r in records} == {"tuner0", "tuner1"}
    # each worker asks every oracle for 2 of the 4 trials at once and trains the two cells' trials of
    # one batch size as one stacked model: stacks of 1 to 4, as the batch sizes drawn fall
    stacks = [r["stack"] for r in records]
    assert max(stacks) >= 2 and set(stacks) <= {1, 2, 3, 4}, stacks
    for project in ("he_normal__binary_crossentropy", "zeros__binary_crossentropy"):
        oracle = _reload(search_dir, project, max_trials=4).oracle
        assert sorted(oracle.trials) == ["0", "1", "2", "3"]
        assert {t.status for t in oracle.trials.values()} == {"COMPLETED"}
    assert {f"tuner{i}.log" for i in range(2)} <= {p.name for p in (search_dir / "workers").iterdir()}
    assert len(pd.read_csv(tmp_path / "reports" / "spread" / "tuned.csv")) == 2


@pytest.mark.slow
def test_a_joint_search_chooses_initializer_and_loss_and_retrains_each_cell_it_tried(tmp_path):
    path = _config(tmp_path, "joint", MOONS, seeds=[0], tune={"mode": "joint", "max_trials": 6,
                                                             "objective": "val_accuracy"})
    assert _tune(path, tmp_path) == 0
    records = load_trials(tmp_path / "runs" / "joint")
    assert len(records) == 6 and {r["project"] for r in records} == {"joint"}
    chosen = {(r["hyperparameters"]["initializer"], r["hyperparameters"]["loss"]) for r in records}
    assert len(chosen) > 1 and {f"{i} | {lo}" for i, lo in chosen} == {r["cell"] for r in records}
    best = pd.read_csv(tmp_path / "reports" / "joint" / "best.csv")
    assert set(best["cell"]) == {r["cell"] for r in records if r["status"] == "COMPLETED"}
    for _, row in best.iterrows():  # each cell's best is the best of its own trials
        own = [r["objective"] for r in records if r["cell"] == row["cell"]]
        assert row["objective"] == pytest.approx(max(own))
    tuned = pd.read_csv(tmp_path / "reports" / "joint" / "tuned.csv")
    assert set(tuned["cell"]) == set(best["cell"])


@pytest.mark.parametrize("tuner, tune", [
    ("bayesian", {"max_trials": 3}),
    ("grid", {"max_trials": 10, "learning_rate": {"min": 0.001, "max": 0.01, "step": 10}, "batch_size": [16, 32]}),
    ("hyperband", {"hyperband_factor": 3}),
])
@pytest.mark.slow
def test_every_tuner_runs_by_name(tmp_path, tuner, tune):
    path = _config(tmp_path, tuner, MOONS, initializers=["he_normal"], losses=["binary_crossentropy"], epochs=3,
                   tune={"tuner": tuner, **tune})
    assert _tune(path, tmp_path) == 0
    records = load_trials(tmp_path / "runs" / tuner)
    assert records and {r["status"] for r in records} == {"COMPLETED"}
    settings = {(round(r["hyperparameters"]["learning_rate"], 9), r["hyperparameters"]["batch_size"])
                for r in records}
    if tuner == "grid":  # the whole grid, each point once
        assert settings == {(0.001, 16), (0.001, 32), (0.01, 16), (0.01, 32)} and len(records) == 4
    if tuner == "hyperband":  # later rounds continue earlier trials from their saved epoch
        assert any(r["hyperparameters"].get("tuner/initial_epoch", 0) > 0 for r in records)
        assert all(r["epochs_run"] <= 3 for r in records)
    assert Path(tmp_path / "reports" / tuner / "tune.md").is_file()


def test_ties_go_to_the_earliest_trial_whatever_order_the_oracle_holds_them_in():
    from types import SimpleNamespace

    from experiments.tuning.search import _ranked

    def trial(trial_id, score, status="COMPLETED"):
        return SimpleNamespace(trial_id=trial_id, score=score, status=status)

    held = [trial("5", 0.9), trial("2", 0.9), trial("3", float("nan")), trial("4", 0.95, "FAILED"), trial("0", 0.5)]
    oracle = SimpleNamespace(trials={t.trial_id: t for t in held})  # as reloaded: files in any order
    assert [t.trial_id for t in _ranked(oracle, "max")] == ["2", "5", "0"]
    assert [t.trial_id for t in _ranked(oracle, "min")] == ["0", "2", "5"]


def test_a_trial_trains_exactly_as_the_keras_engine_trains_its_settings(tmp_path):
    """One training procedure: the best trial's history equals, value for value, the Keras engine's
    run of the same cell, learning rate, batch size and seed (the tuned comparison's first seed)."""
    path = _config(tmp_path, "same", MOONS, initializers=["he_normal"], losses=["binary_crossentropy"], seeds=[3],
                   epochs=4, engine="keras", early_stopping={"patience": 1}, tune={"max_trials": 2})
    assert _tune(path, tmp_path) == 0
    runs = pd.read_csv(tmp_path / "reports" / "same_tuned" / "runs.csv")
    best = pd.read_csv(tmp_path / "reports" / "same" / "best.csv").iloc[0]
    trial = tmp_path / "runs" / "same" / "trials" / best["project"] / f"trial_{best['trial_id']}"
    run = tmp_path / "runs" / "same_tuned" / runs["run_id"].iloc[0]
    trial_config = json.loads((trial / "config.json").read_text())
    assert trial_config["diagnostics"]["every"] == 0  # trials skip diagnostics; nothing else differs
    assert json.loads((run / "config.json").read_text()) == {**trial_config, "diagnostics": {"every": 10, "probe": 256}}
    pd.testing.assert_frame_equal(pd.read_csv(trial / "history.csv"), pd.read_csv(run / "history.csv"))


@pytest.mark.slow
@pytest.mark.parametrize("tuner, tune", [("random", {}), ("bayesian", {"stack": 2}), ("hyperband", {}),
                                         ("random", {"executions": 2})])
def test_stacked_trials_are_the_keras_engines_trials(tmp_path, tuner, tune):
    """The same oracle seed gives the same trials with either engine (the vectorized one trains
    them in stacks, a member per trial and seed, and tells each oracle what keras-tuner's own run
    would; Hyperband a round per stack, continued trials from their predecessors' checkpoints), and
    their histories agree within the engine-equivalence tolerance: the same objectives (with
    several seeds, each seed's and their mean), best epochs and best trials."""
    trials = {}
    for engine in ("vectorized", "keras"):
        (tmp_path / engine).mkdir()
        path = _config(tmp_path / engine, "same", DIVERGING, seeds=[0, 1], tune={
            **tune, "tuner": tuner, "engine": engine, "learning_rate": {"min": 0.001, "max": 1.0}})
        assert _tune(path, tmp_path / engine) == 0
        reports = tmp_path / engine / "reports" / "same"
        trials[engine] = (pd.read_csv(reports / "trials.csv").set_index(["project", "trial_id"]),
                          pd.read_csv(reports / "trial_epochs.csv").set_index(["project", "trial_id", "seed",
                                                                               "epoch"]),
                          pd.read_csv(reports / "best.csv"))
    (vec, vec_epochs, vec_best), (ref, ref_epochs, ref_best) = trials["vectorized"], trials["keras"]
    assert list(vec.index) == list(ref.index) and len(vec) >= 4  # hyperband sizes itself
    pd.testing.assert_series_equal(vec["learning_rate"], ref["learning_rate"])
    pd.testing.assert_series_equal(vec["batch_size"], ref["batch_size"])
    assert list(vec["status"]) == list(ref["status"]) and list(vec["best_epoch"]) == list(ref["best_epoch"])
    per_seed = [c for c in ref if c.startswith("objective")]
    assert len(per_seed) == 1 + 2 * ("executions" in tune)
    pd.testing.assert_frame_equal(vec[per_seed], ref[per_seed], rtol=1e-4)
    assert set(ref["stack"]) == {1}  # one fit per trial
    columns = [c for c in ref_epochs if c.startswith(("loss", "val_"))]
    pd.testing.assert_frame_equal(vec_epochs.loc[ref_epochs.index, columns], ref_epochs[columns], rtol=1e-4)
    assert list(vec_best["trial_id"]) == list(ref_best["trial_id"])


@pytest.mark.slow
@pytest.mark.parametrize("model", [{"name": "mlp", "widths": [8], "batch_norm": True},
                                   {"name": "mlp", "widths": [8], "dropout": 0.3}], ids=["batch norm", "dropout"])
def test_searches_of_batch_norm_and_dropout_models_train_their_trials_in_stacks(tmp_path, model):
    """Every catalogue model stacks, in a search too: the trials train as stacked members (no
    Keras fallback); with batch norm they are the keras engine's trials within the batch-norm
    tolerance of the engine-equivalence tests (1e-3); dropout's masks cannot match Keras' draws,
    so there only the settings and statuses are compared."""
    trials = {}
    for engine in ("vectorized", "keras"):
        (tmp_path / engine).mkdir()
        path = _config(tmp_path / engine, "norm", MOONS, model=model, initializers=["he_normal"], epochs=3,
                       losses=["binary_crossentropy"], tune={"max_trials": 4, "engine": engine})
        assert _tune(path, tmp_path / engine) == 0
        trials[engine] = pd.read_csv(tmp_path / engine / "reports" / "norm" / "trials.csv")
    vec, ref = trials["vectorized"], trials["keras"]
    assert len(vec) == 4 and set(vec["status"]) == set(ref["status"]) == {"COMPLETED"}
    assert vec["stack"].max() > 1 and set(ref["stack"]) == {1}  # stacked trials against one fit each
    pd.testing.assert_frame_equal(vec[["trial_id", "learning_rate", "batch_size"]],
                                  ref[["trial_id", "learning_rate", "batch_size"]])
    if "batch_norm" in model:
        pd.testing.assert_series_equal(vec["objective"], ref["objective"], rtol=1e-3)
