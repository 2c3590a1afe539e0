"""The tuner's wiring with cheap objectives (as keras-tuner's own tests do): ties go to the earliest
trial, per-cell and joint searches pick each cell's best trial, and a resumed search refuses a
changed config. A real keras-tuner oracle chooses every trial; nothing trains."""

import keras_tuner as kt
import pytest
from conftest import TINY

from experiments.spec import validate
from experiments.tuning.search import _check_same_search, _ranked, best_per_cell
from experiments.tuning.tuners import Search, search_space, searches

TUNE = {"mode": "per_cell", "objective": "val_accuracy", "max_trials": 6, "batch_size": [16, 32]}


def _spec(**tune):
    spec, _ = validate({**TINY, "tune": {**TUNE, **tune}})
    return spec


class _Cheap(kt.RandomSearch):
    """A search whose trials cost nothing: the objective is `score(hyperparameter values)`."""

    def __init__(self, search, score, **kwargs):
        super().__init__(**kwargs)
        self.plan, self.score = search, score

    def run_trial(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
        for name, choices in (("initializer", self.plan.initializers), ("loss", self.plan.losses)):
            if len(choices) > 1:
                hp.Choice(name, list(choices))
        return {"val_accuracy": self.score(hp.values)}


def _run(spec, score, tmp_path):
    tuners = {}
    for search in searches(spec):
        tuner = _Cheap(search, score, objective=kt.Objective("val_accuracy", "max"), max_trials=spec.tune.max_trials,
                       hyperparameters=search_space(spec), seed=1, directory=str(tmp_path), project_name=search.project,
                       overwrite=True)
        tuner.search(verbose=0)
        tuners[search.project] = tuner
    return tuners


def test_ties_go_to_the_earliest_trial(tmp_path):
    spec = _spec()
    tuners = _run(spec, lambda values: 0.5, tmp_path)
    for tuner in tuners.values():
        ranked = _ranked(tuner.oracle, "max")
        assert [int(t.trial_id) for t in ranked] == sorted(int(t) for t in tuner.oracle.trials)
    best = best_per_cell(spec, tuners)
    assert [row["trial_id"] for row in best] == [min(t.oracle.trials, key=int) for t in tuners.values()]


def test_per_cell_picks_each_searchs_best(tmp_path):
    spec = _spec()
    tuners = _run(spec, lambda values: -abs(values["learning_rate"] - 0.01), tmp_path)
    best = best_per_cell(spec, tuners)
    assert [row["cell"] for row in best] == ["he_normal | binary_crossentropy", "he_normal | mean_squared_error",
                                             "zeros | binary_crossentropy", "zeros | mean_squared_error"]
    for row in best:
        trials = tuners[row["project"]].oracle.trials.values()
        closest = min(trials, key=lambda t: (abs(t.hyperparameters.values["learning_rate"] - 0.01), int(t.trial_id)))
        assert row["trial_id"] == closest.trial_id and row["learning_rate"] == closest.hyperparameters["learning_rate"]


def test_joint_mode_picks_the_best_trial_of_each_cell(tmp_path):
    spec = _spec(mode="joint", max_trials=12)
    assert [s.project for s in searches(spec)] == ["joint"]
    points = {"he_normal": 2, "zeros": 0, "binary_crossentropy": 1, "mean_squared_error": 0}
    tuners = _run(spec, lambda v: points[v["initializer"]] + points[v["loss"]] + v["learning_rate"], tmp_path)
    best = best_per_cell(spec, tuners)
    trials = list(tuners["joint"].oracle.trials.values())
    for row in best:
        mine = [t for t in trials if f"{t.hyperparameters['initializer']} | {t.hyperparameters['loss']}" == row["cell"]]
        assert row["objective"] == max(t.score for t in mine)
    assert len({row["cell"] for row in best}) == len(best) == len({
        (t.hyperparameters["initializer"], t.hyperparameters["loss"]) for t in trials})
    assert best[0]["cell"] == "he_normal | binary_crossentropy"  # ranked: the best cell's best trial first


def test_a_resumed_search_refuses_a_changed_config_but_not_a_bigger_budget(tmp_path):
    spec = _spec()
    _check_same_search(tmp_path, spec.replace(tune=spec.tune.replace(max_trials=2)).as_dict(), spec)
    _check_same_search(tmp_path, spec.replace(seeds=(0, 5, 6)).as_dict(), spec)  # later seeds only add tuned runs
    with pytest.raises(ValueError, match=r"\(epochs changed\)"):
        _check_same_search(tmp_path, spec.replace(epochs=7).as_dict(), spec)
    with pytest.raises(ValueError, match=r"tune.objective changed"):
        _check_same_search(tmp_path, spec.replace(tune=spec.tune.replace(objective="val_loss")).as_dict(), spec)


def test_searches_follow_the_mode():
    spec = _spec()
    assert searches(spec) == [Search(f"{i}__{lo}", {i: {"name": i}}, {lo: {"name": lo}}) for i in ("he_normal", "zeros")
                              for lo in ("binary_crossentropy", "mean_squared_error")]


def test_workers_ask_their_share_of_a_stack_and_every_id_leaves_the_chiefs_roll(tmp_path, monkeypatch):
    """Two workers' stacked rounds against one real oracle: each asks for its share of
    `tune.stack` under its own tuner ids, and once the oracle has no trial left every id is told
    STOPPED, which is what keras-tuner's chief waits for before it exits."""
    from experiments.tuning import stacked

    spec = _spec()  # tune.stack = max_trials = 6
    space = search_space(spec)
    space.Float("learning_rate", 1e-4, 1e-1, sampling="log")
    tuner = _Cheap(searches(spec)[0], None, objective=kt.Objective("val_accuracy", "max"), max_trials=6,
                   hyperparameters=space, seed=1, directory=str(tmp_path), project_name="p", overwrite=True)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("INIT_LOSS_LAB_WORKERS", "2")
    pending = {}
    for worker in ("tuner0", "tuner1"):
        monkeypatch.setenv("KERASTUNER_TUNER_ID", worker)
        pending[worker] = stacked.tuner_ids(spec)
    assert pending == {w: [f"{w}-stack{k}" for k in range(3)] for w in ("tuner0", "tuner1")}
    given = {w: [] for w in pending}
    while pending:
        for worker in list(pending):
            trials, pending[worker] = stacked._ask(tuner, pending[worker])
            given[worker] += [t.trial_id for t in trials]
            for trial in trials:
                tuner.oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
                trial.status = "COMPLETED"
                tuner.oracle.end_trial(trial)
            if not pending[worker]:
                del pending[worker]
    assert given == {"tuner0": ["0", "1", "2"], "tuner1": ["3", "4", "5"]}
    assert not tuner.oracle.tuner_ids and not tuner.oracle.ongoing_trials
