"""The engine registry: every engine the spec accepts is registered, and each has the interface the
runner uses; the vectorized engine groups exactly the runs that may share a stack."""

from conftest import TINY

from experiments import engines, spec
from experiments.data import load_dataset


def test_every_engine_a_spec_names_is_registered_with_its_interface():
    assert set(engines.ENGINES) == set(spec.ENGINES)
    for module in engines.ENGINES.values():
        assert callable(module.group_key) and callable(module.train_runs)


def test_the_vectorized_engine_groups_runs_that_share_everything_but_initializer_loss_and_seed():
    experiment, _ = spec.validate({**TINY, "learning_rate": [0.01, 0.1], "losses": ["binary_crossentropy", "huber"]})
    data = load_dataset(experiment.dataset[0])
    keys = {}
    for run in spec.expand(experiment):
        keys.setdefault(engines.ENGINES["vectorized"].group_key(run, data), set()).add(run.config.learning_rate)
    assert sorted(map(sorted, keys.values())) == [[0.01], [0.1]]  # one group per learning rate
    keras_keys = {engines.ENGINES["keras"].group_key(run, data) for run in spec.expand(experiment)}
    assert len(keras_keys) == len(spec.expand(experiment))  # the reference trains every run alone
