"""The engine registry: every engine the spec accepts is registered, and each has the interface the
runner uses; the vectorized engine groups exactly the runs that may share a stack."""

from conftest import TINY

from experiments import engines, spec
from experiments.data import load_dataset


def test_every_engine_a_spec_names_is_registered_with_its_interface():
    assert set(engines.ENGINES) == set(spec.ENGINES)
    for module in engines.ENGINES.values():
        assert callable(module.group_key) and callable(module.train_runs)


def test_the_vectorized_engine_groups_runs_that_share_everything_but_initializer_loss_rate_and_seed():
    experiment, _ = spec.validate({**TINY, "learning_rate": [0.01, 0.1], "batch_size": [16, 32],
                                   "losses": ["binary_crossentropy", "huber"]})
    data = load_dataset(experiment.dataset[0])
    keys = {}
    for run in spec.expand(experiment):
        keys.setdefault(engines.ENGINES["vectorized"].group_key(run, data), set()).add(
            (run.config.batch_size, run.config.learning_rate))
    # one group per batch size, each with both learning rates (a member's own rate scales its steps)
    assert sorted(map(sorted, keys.values())) == [[(16, 0.01), (16, 0.1)], [(32, 0.01), (32, 0.1)]]
    keras_keys = {engines.ENGINES["keras"].group_key(run, data) for run in spec.expand(experiment)}
    assert len(keras_keys) == len(spec.expand(experiment))  # the reference trains every run alone
