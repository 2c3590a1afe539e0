"""A user's own parts named in a config: imported from a file beside it (or a module), checked
before anything trains, registered under their own names and recorded with their file's hash."""

import hashlib

import pytest
from user_parts import PARTS, restored_catalogues

import experiments as lab
from experiments.spec import SpecError, validate
from initializers import INITIALIZERS

BASE = {"name": "mine", "dataset": {"name": "iris"}, "model": {"name": "mlp", "widths": [8]},
        "initializers": ["he_normal"], "losses": ["categorical_crossentropy"], "seeds": [0], "epochs": 1}


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "my_parts.py").write_text(PARTS)
    with restored_catalogues():
        yield tmp_path


def test_references_relative_to_the_config_are_registered_by_name_and_recorded_with_their_hash(folder):
    spec, _ = validate({**BASE, "initializers": ["he_normal", {"name": "./my_parts.py:scaled_normal", "scale": 0.5}],
                        "losses": ["categorical_crossentropy", "my_parts.py:log_cosh"],
                        "model": {"name": "mlp", "widths": [8], "activation": "./my_parts.py:swishy"},
                        "metrics": ["accuracy", "./my_parts.py:hit"]}, base=folder)
    assert spec.initializers[1] == {"name": "scaled_normal", "scale": 0.5}
    assert [loss["name"] for loss in spec.losses] == ["categorical_crossentropy", "log_cosh"]
    assert spec.model[0]["activation"] == "swishy" and spec.metrics == ("accuracy", "hit")
    digest = hashlib.sha256((folder / "my_parts.py").read_bytes()).hexdigest()
    assert spec.parts["initializer"]["scaled_normal"] == {"reference": "./my_parts.py:scaled_normal",
                                                         "path": str(folder / "my_parts.py"), "sha256": digest}
    assert set(spec.parts) == {"initializer", "loss", "activation", "metric"}
    assert spec.parts["metric"]["hit"]["greater_is_better"] is True
    assert INITIALIZERS.resolve("scaled_normal") == {"scale": 1.0}  # its keyword parameters are its options


def test_a_module_reference_and_a_users_model_and_dataset(folder, monkeypatch):
    monkeypatch.syspath_prepend(str(folder))
    spec, (data,) = validate({**BASE, "dataset": "my_parts:blobs", "model": {"name": "my_parts:two_dense",
                                                                             "width": 4}}, base=folder)
    assert data.name == "blobs" and data.task == "multiclass" and data.n_classes == 3
    assert spec.model[0] == {"name": "two_dense", "width": 4} and set(spec.parts) == {"dataset", "model"}


@pytest.mark.parametrize(("value", "field", "message"), [
    ("./nope.py:f", "initializers", "no file '{folder}/nope.py'"),
    ("./my_parts.py:absent", "initializers", "my_parts.py has no 'absent'"),
    ("./my_parts.py:wrong_shape", "initializers", "must return finite values of the shape asked for"),
    ("./my_parts.py:needs_value", "losses", "parameter 'weight' has no default; give it one"),
    ("./my_parts.py:batch_mean_squared", "initializers", "parameter 'y_pred' has no default"),
    ("./my_parts.py:swishy", "initializers", "failed on a (4, 3) kernel"),
    ("no_such_module_xyz:f", "losses", "importing it failed: ModuleNotFoundError"),
    ("os:system", "losses", "'os' is Python's own; a reference names your code"),
    ("shutil:rmtree", "initializers", "'shutil' is Python's own"),
    ("experiments.cli:main", "losses", "'experiments' is ours"),
    ("./my_parts.py:scaled_normal", "losses", "loss 'scaled_normal' failed on a binary batch of 5"),
])
def test_a_bad_reference_is_one_line_naming_it_before_anything_trains(folder, value, field, message):
    with pytest.raises(SpecError) as error:
        validate({**BASE, field: [value]}, base=folder)
    text = str(error.value)
    assert message.format(folder=folder) in text and value in text and "\n" not in text.strip()


def test_a_name_of_the_catalogue_or_two_references_with_one_name_are_refused(folder):
    (folder / "other.py").write_text("def he_normal(shape, dtype=None, seed=None):\n    return None\n"
                                     "def log_cosh(y_true, y_pred):\n    return y_true[..., 0]\n")
    with pytest.raises(SpecError, match="initializer 'he_normal' is in the catalogue already; give yours another"):
        validate({**BASE, "initializers": ["./other.py:he_normal"]}, base=folder)
    with pytest.raises(SpecError, match="would both be named 'log_cosh'; rename one of them"):
        validate({**BASE, "losses": ["./my_parts.py:log_cosh", "./other.py:log_cosh"]}, base=folder)


def test_a_models_output_must_fit_the_head(folder):
    (folder / "bad_model.py").write_text("import keras\ndef tiny(input_shape, head, initializer):\n    return "
                                         "keras.Sequential([keras.Input(input_shape), keras.layers.Dense(2)])\n")
    with pytest.raises(SpecError, match=r"model 'tiny' must return a keras.Model with output shape \(None, 3\)"):
        validate({**BASE, "model": "./bad_model.py:tiny"}, base=folder)


def test_notebook_registration_names_a_function_for_configs(folder):
    def halved(shape, dtype=None, seed=None):
        import keras

        return keras.random.uniform(shape, -0.5, 0.5, dtype=dtype, seed=seed)

    lab.register_initializer("halved", halved)
    spec, _ = validate({**BASE, "initializers": ["halved"]})
    assert spec.parts["initializer"]["halved"]["reference"].endswith(":test_notebook_registration_names_a_function_"
                                                                     "for_configs.<locals>.halved")
    with pytest.raises(ValueError, match="loss 'huber' is in the catalogue already"):
        lab.register_loss("huber", lambda y_true, y_pred: y_true)
    with pytest.raises(ValueError, match="activation 'bad' must return finite values of its input's shape"):
        lab.register_activation("bad", lambda x: x[0])
