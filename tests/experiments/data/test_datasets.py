import numpy as np
import pandas as pd
import pytest

from experiments.data import DATASETS, load_dataset


@pytest.mark.parametrize("name, task, classes", [
    ("digits", "multiclass", 10), ("breast_cancer", "binary", 2), ("wine", "multiclass", 3),
    ("iris", "multiclass", 3), ("diabetes", "regression", 0), ("moons", "binary", 2),
    ("circles", "binary", 2), ("xor", "binary", 2), ("regression", "regression", 0),
])
def test_embedded_and_generated_datasets(name, task, classes):
    data = load_dataset(name)
    assert (data.task, data.n_classes) == (task, classes)
    sizes = np.array([len(data.x_train), len(data.x_val), len(data.x_test)])
    assert sizes / sizes.sum() == pytest.approx([0.6, 0.2, 0.2], abs=0.02)
    # standardized with training statistics only: train is centred, the others merely close
    assert np.abs(data.x_train.reshape(len(data.x_train), -1).mean(axis=0)).max() < 1e-4


def test_split_is_deterministic_stratified_and_follows_split_seed():
    a, b = load_dataset("iris"), load_dataset("iris")
    np.testing.assert_array_equal(a.x_train, b.x_train)
    for part in (a.y_train, a.y_val, a.y_test):
        assert np.bincount(part).min() == np.bincount(part).max()  # 50/50/50 iris stays balanced
    c = load_dataset({"name": "iris", "split_seed": 1})
    assert not np.array_equal(a.x_train, c.x_train)


def test_minmax_scaling_uses_training_range():
    data = load_dataset({"name": "wine", "standardize": "minmax"})
    assert data.x_train.min() == pytest.approx(0) and data.x_train.max() == pytest.approx(1)


def test_label_noise_flips_the_asked_fraction_of_training_labels_only():
    clean = load_dataset("digits")
    noisy = load_dataset({"name": "digits", "label_noise": 0.2})
    assert np.mean(clean.y_train != noisy.y_train) == pytest.approx(0.2, abs=0.005)
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)


def test_outliers_go_into_training_targets_only():
    clean = load_dataset("regression")
    dirty = load_dataset({"name": "regression", "outlier_fraction": 0.1, "outlier_magnitude": 10.0,
                          "outlier_sides": "one"})
    np.testing.assert_array_equal(clean.x_train, dirty.x_train)
    raw_gap = dirty.y_train - np.median(dirty.y_train)
    assert np.sum(raw_gap > 5) >= 0.09 * len(raw_gap)  # one-sided: they all went up
    assert np.sum(raw_gap < -5) == 0
    assert np.abs(dirty.y_test).max() < 5


def test_csv_with_inferred_task_and_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    frame["kind"] = np.where(frame["a"] > 0, "yes", "no")
    frame.to_csv(tmp_path / "d.csv", index=False)
    data = load_dataset({"name": "csv", "path": str(tmp_path / "d.csv"), "target": "kind"})
    assert data.task == "binary" and data.classes == ["no", "yes"] and data.input_shape == (3,)
    frame["kind"] = frame["a"] * 2.5
    frame.to_csv(tmp_path / "r.csv", index=False)
    assert load_dataset({"name": "csv", "path": str(tmp_path / "r.csv"), "target": "kind"}).task == "regression"


def test_npz_and_local_mnist(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(50, 4)), y=rng.integers(0, 3, 50))
    assert load_dataset({"name": "npz", "path": str(tmp_path / "d.npz")}).task == "multiclass"
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 255, (60, 28, 28)), y_train=np.arange(60) % 10,
             x_test=rng.integers(0, 255, (20, 28, 28)), y_test=np.arange(20) % 10)
    data = load_dataset({"name": "mnist", "path": str(tmp_path / "mnist.npz")})
    assert data.input_shape == (28, 28, 1) and len(data.x_test) == 20


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_keras_datasets_come_from_keras_cache_file_or_say_what_to_do(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(ValueError, match=f"dataset '{name}': no file at '{tmp_path}/keras/datasets/{name}.npz' "
                                         r"\(Keras' cache\) and download = false; set dataset.path"):
        load_dataset({"name": name, "download": False})
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "keras" / "datasets" / f"{name}.npz", x_train=rng.integers(0, 255, (60, 28, 28)),
             y_train=np.arange(60) % 10, x_test=rng.integers(0, 255, (20, 28, 28)), y_test=np.arange(20) % 10)
    data = load_dataset({"name": name, "download": False})
    assert data.input_shape == (28, 28, 1) and len(data.x_test) == 20 and len(data.x_train) + len(data.x_val) == 60


def _frame(rng, n):
    import pandas as pd

    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "label": np.arange(n) % 2})


def test_csv_and_npz_take_predefined_test_and_validation_files_relative_to_the_config(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    _frame(rng, 40).to_csv(tmp_path / "data" / "train.csv", index=False)
    _frame(rng, 12).to_csv(tmp_path / "data" / "test.csv", index=False)
    _frame(rng, 8).to_csv(tmp_path / "data" / "val.csv", index=False)
    spec = {"name": "csv", "path": "data/train.csv", "target": "label", "test_path": "data/test.csv"}
    data = load_dataset(spec, base=tmp_path)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (32, 8, 12)  # val: 20% of train.csv
    both = load_dataset({**spec, "val_path": "data/val.csv"}, base=tmp_path)
    assert (len(both.x_train), len(both.x_val), len(both.x_test)) == (40, 8, 12)
    assert "test split: given (12 examples)" in both.notes
    monkeypatch.setenv("HOME", str(tmp_path))  # ~ is expanded
    home = {**spec, "path": "~/data/train.csv", "test_path": "~/data/test.csv"}
    assert len(load_dataset(home, base="/elsewhere").x_test) == 12
    with pytest.raises(ValueError, match=f"no file at '{tmp_path}/data/nope.csv'; set dataset.test_path"):
        load_dataset({**spec, "test_path": "data/nope.csv"}, base=tmp_path)
    _frame(rng, 12).rename(columns={"b": "c"}).to_csv(tmp_path / "data" / "odd.csv", index=False)
    with pytest.raises(ValueError, match=r"odd.csv' \(test_path\) has feature columns \['a', 'c'\]; they must be"):
        load_dataset({**spec, "test_path": "data/odd.csv"}, base=tmp_path)
    frame = _frame(rng, 12)
    frame["label"] = 7
    frame.to_csv(tmp_path / "data" / "new_label.csv", index=False)
    with pytest.raises(ValueError, match=r"the test split has labels \[7\] that the training data lacks"):
        load_dataset({**spec, "test_path": "data/new_label.csv"}, base=tmp_path)
    np.savez(tmp_path / "data" / "train.npz", x=rng.normal(size=(40, 3)), y=rng.normal(size=40))
    np.savez(tmp_path / "data" / "test.npz", x=rng.normal(size=(10, 3)), y=rng.normal(size=10))
    data = load_dataset({"name": "npz", "path": "data/train.npz", "test_path": "data/test.npz"}, base=tmp_path)
    assert data.task == "regression" and len(data.x_test) == 10 and len(data.x_train) + len(data.x_val) == 40


def test_every_dataset_is_listed_with_a_note():
    assert all(entry.note for entry in DATASETS.entries.values())
