"""Datasets: embedded (scikit-learn), generated, or read from a local file the user names.

Nothing is downloaded. Every dataset goes through the same preparation: a deterministic
(stratified, for classification) train/validation/test split, optional label noise or target
outliers injected into the training split only, and input standardization fitted on train only.
Regression targets are scaled by the training median and interquartile range (robust to the
outliers a user may have asked for), so errors are in those units. Generated datasets are drawn
with `split_seed` too: one seed fixes the data the runs of an experiment share.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from initializers.registry import Entry, Registry

_PREPARE = {
    "validation_fraction": 0.2,
    "test_fraction": 0.2,
    "split_seed": 0,
    "standardize": "zscore",
    "label_noise": 0.0,
    "outlier_fraction": 0.0,
    "outlier_magnitude": 10.0,
    "outlier_sides": "two",
}
_CHOICES = {
    "standardize": ("zscore", "minmax", "none"),
    "outlier_sides": ("one", "two"),
    "task": ("auto", "binary", "multiclass", "regression"),
}
MAX_SAMPLES = 10**7  # generated sets: beyond this, generation alone outgrows these machines
_CHECKS = {
    "choices": _CHOICES,
    "positive": ("validation_fraction", "test_fraction", "n_samples", "n_features", "factor"),
    "unit_interval": ("validation_fraction", "test_fraction", "label_noise", "outlier_fraction"),
    "ranges": {"n_samples": (1, MAX_SAMPLES), "n_features": (1, 10_000), "noise": (0.0, 1e6),
               "outlier_magnitude": (0.0, 1e6), "split_seed": (0, 2**32 - 1)},
}


def _entry(note, **params):
    return Entry({**params, **_PREPARE}, note=note, **_CHECKS)


def _sklearn(loader, task, shape=None):
    """An embedded scikit-learn dataset: `sklearn.datasets.<loader>`, reshaped to `shape` per example."""
    def load(name, options):
        from sklearn import datasets as sk

        x, y = getattr(sk, loader)(return_X_y=True)
        return (x if shape is None else x.reshape(-1, *shape)), y, task, None

    return load


def _rng(options):
    return np.random.default_rng(options["split_seed"])


def _moons(name, options):
    from sklearn import datasets as sk

    x, y = sk.make_moons(options["n_samples"], noise=options["noise"], random_state=_rng(options).integers(2**31))
    return x, y, "binary", None


def _circles(name, options):
    from sklearn import datasets as sk

    if not options["factor"] < 1:
        raise ValueError(f"dataset 'circles' parameter 'factor' must be in (0, 1), got {options['factor']}")
    x, y = sk.make_circles(options["n_samples"], noise=options["noise"], factor=options["factor"],
                           random_state=_rng(options).integers(2**31))
    return x, y, "binary", None


def _xor(name, options):
    rng = _rng(options)
    x = rng.uniform(-1, 1, size=(options["n_samples"], 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(int)
    return x + rng.normal(0, options["noise"], size=x.shape), y, "binary", None


def _friedman(name, options):
    from sklearn import datasets as sk

    if options["n_features"] < 5:
        raise ValueError(f"dataset 'regression' needs n_features >= 5, got {options['n_features']}")
    x, y = sk.make_friedman1(options["n_samples"], n_features=options["n_features"], noise=options["noise"],
                             random_state=_rng(options).integers(2**31))
    return x, y, "regression", None


@dataclass
class Dataset:
    """A prepared dataset: splits, task, and what was done to it."""

    name: str
    task: str  # binary | multiclass | regression
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int = 0
    classes: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def input_shape(self):
        return self.x_train.shape[1:]

    @property
    def n_targets(self):
        return 1 if self.y_train.ndim == 1 else self.y_train.shape[1]

    def summary(self):
        return {
            "name": self.name, "task": self.task, "n_classes": self.n_classes,
            "input_shape": list(self.input_shape),
            "n_train": len(self.x_train), "n_val": len(self.x_val), "n_test": len(self.x_test),
            "notes": self.notes,
        }


def _require_path(name, path, how):
    if not path:
        raise ValueError(f"dataset '{name}' needs a local file: set dataset.path to {how}")
    if not Path(path).is_file():
        raise ValueError(f"dataset '{name}': no file at {path!r}; set dataset.path to {how}")
    return Path(path)


def _csv(name, options):
    import pandas as pd

    path = _require_path("csv", options["path"], "a CSV file with a header row")
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise ValueError(f"dataset 'csv': cannot read {str(path)!r}: {str(e).splitlines()[0]}") from None
    target = options["target"]
    if target not in frame.columns:
        raise ValueError(
            f"dataset 'csv': no target column {target!r} in {str(path)!r}; "
            f"columns: {', '.join(map(str, frame.columns))}"
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0 or len(frame) == 0:
        raise ValueError(f"dataset 'csv': {str(path)!r} has {features.shape[1]} feature columns and {len(frame)} rows "
                         "beside the target; it needs at least one of each")
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text:
        raise ValueError(f"dataset 'csv': feature columns {text} are not numeric; encode them as numbers first")
    missing = [c for c in frame.columns if frame[c].isna().any()]
    if missing:
        raise ValueError(
            f"dataset 'csv': NaN or empty cells in columns {missing} of {str(path)!r}; drop or impute them first"
        )
    return features.to_numpy(dtype="float64"), frame[target].to_numpy(), options["task"], None


def _npz(name, options):
    if name == "npz":
        path = _require_path(name, options["path"], "an .npz file holding arrays x and y")
        keys = ("x", "y")
    else:
        how = (f"an .npz with x_train, y_train, x_test, y_test (e.g. saved with numpy.savez from "
               f"keras.datasets.{name}.load_data() on a machine with internet access)")
        path = _require_path(name, options["path"], how)
        keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as archive:
            found = {k: archive[k] for k in archive.files if k in keys}
    except (OSError, ValueError) as e:
        raise ValueError(f"dataset '{name}': cannot read {str(path)!r} as .npz: {e}") from None
    absent = [k for k in keys if k not in found]
    if absent:
        raise ValueError(f"dataset '{name}': {str(path)!r} lacks arrays {absent}; it needs {list(keys)}")
    arrays = [found[k] for k in keys]
    for key, array in zip(keys, arrays, strict=True):
        if array.dtype.kind not in "biuf" and not (key.startswith("y") and array.dtype.kind in "US"):
            raise ValueError(f"dataset '{name}': array {key!r} in {str(path)!r} has dtype {array.dtype}; "
                             "inputs must be numbers (labels may be numbers or strings)")
    for x_key, y_key in zip(keys[::2], keys[1::2], strict=True):
        x, y = found[x_key], found[y_key]
        if x.ndim < 2 or y.ndim not in (1, 2) or len(x) != len(y) or not len(x):
            raise ValueError(f"dataset '{name}': {str(path)!r} holds {x_key} of shape {x.shape} and {y_key} of shape "
                             f"{y.shape}; it needs {x_key} as (examples, features...) and {y_key} as (examples,) or "
                             "(examples, targets), with the same number of examples")
    if name == "npz":
        return arrays[0], arrays[1], options["task"], None
    x, y, x_test, y_test = arrays
    if x.ndim != 3 or x_test.shape[1:] != x.shape[1:]:
        raise ValueError(f"dataset '{name}': {str(path)!r} holds x_train of shape {x.shape} and x_test of shape "
                         f"{x_test.shape}; it needs grey images as (examples, height, width), the same size in both")
    # 28x28 grey images: add the channel axis so the CNN can use them
    return x[..., None], y, "multiclass", (x_test[..., None], y_test)


# --- preparation ---

def _infer_task(y):
    values = np.unique(y)
    numeric = np.issubdtype(y.dtype, np.number)
    if numeric and not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(values, 1) == 0):
        return "regression"
    if numeric and len(values) > 20:
        return "regression"
    return "binary" if len(values) == 2 else "multiclass"


def _check_finite(name, x, y):
    for what, array in (("inputs", x), ("targets", y)):
        if np.issubdtype(array.dtype, np.number) and not np.all(np.isfinite(array)):
            bad = int(np.sum(~np.isfinite(array)))
            raise ValueError(f"dataset '{name}': {bad} NaN or infinite values in its {what}; drop or impute them first")


# One entry per dataset: its catalogue entry (note and options) and its loader, `loader(name,
# options) -> (x, y, task or "auto", a predefined test split or None)`. Adding a dataset is one line here.
_CATALOGUE = {
    "digits": (_entry("embedded: 1797 handwritten digits, 8x8 images, 10 classes"),
               _sklearn("load_digits", "multiclass", (8, 8, 1))),  # image-shaped, for the CNN; the MLP flattens
    "breast_cancer": (_entry("embedded: 569 tumours, 30 features, binary"), _sklearn("load_breast_cancer", "binary")),
    "wine": (_entry("embedded: 178 wines, 13 features, 3 classes"), _sklearn("load_wine", "multiclass")),
    "iris": (_entry("embedded: 150 flowers, 4 features, 3 classes"), _sklearn("load_iris", "multiclass")),
    "diabetes": (_entry("embedded: 442 patients, 10 features, regression"), _sklearn("load_diabetes", "regression")),
    "moons": (_entry("generated: two interleaved half-moons, binary", n_samples=1000, noise=0.2), _moons),
    "circles": (_entry("generated: two concentric circles, binary", n_samples=1000, noise=0.1, factor=0.5),
                _circles),
    "xor": (_entry("generated: XOR of two coordinates' signs, binary", n_samples=1000, noise=0.1), _xor),
    "regression": (_entry("generated: Friedman #1 non-linear regression; add outliers with outlier_fraction",
                          n_samples=1000, n_features=8, noise=0.5), _friedman),
    "csv": (_entry("local CSV file: path, target column, task (auto infers it)", path="", target="", task="auto"),
            _csv),
    "npz": (_entry("local .npz file with arrays x and y", path="", task="auto"), _npz),
    "mnist": (_entry("local file only: path to mnist.npz (x_train, y_train, x_test, y_test)", path=""),
              _npz),
    "fashion_mnist": (_entry("local file only: path to an .npz with x_train, y_train, x_test, y_test", path=""),
                      _npz),
}
DATASETS = Registry("dataset", {name: entry for name, (entry, _) in _CATALOGUE.items()})


def load_dataset(spec):
    """Load and prepare a dataset from its spec (`"digits"` or `{"name": "digits", **options}`).

    Raises:
        ValueError: one line naming the bad value and what to do, for anything wrong.
    """
    spec = DATASETS.parse(spec)
    name, options = spec["name"], DATASETS.resolve(spec)
    x, y, task, test = _CATALOGUE[name][1](name, options)
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y)
    _check_finite(name, x, y)
    if test is not None:
        _check_finite(name, *test)
    if task == "auto":
        task = _infer_task(y)
    notes, classes = [], []
    if task != "regression":
        if y.ndim != 1:
            raise ValueError(f"dataset '{name}': a {task} task needs one label per example, got targets of shape "
                             f"{y.shape}; use task = 'regression' for several targets")
        classes, y = np.unique(y, return_inverse=True)
        if test is not None:
            test = (test[0], np.searchsorted(classes, test[1]))
        if len(classes) < 2:
            raise ValueError(f"dataset '{name}': a {task} task needs at least 2 classes, found {len(classes)} "
                             f"({', '.join(map(str, classes[:1]))}); check the target column or labels")
        if task == "binary" and len(classes) != 2:
            raise ValueError(f"dataset '{name}': task 'binary' needs 2 classes, found {len(classes)}")
    elif not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"dataset '{name}': task 'regression' needs numeric targets, got {y.dtype}")

    splits = _split(name, x, y, task, options, test)
    rng = np.random.default_rng([options["split_seed"], 1])
    x_tr, y_tr = splits[0], splits[1]
    if options["label_noise"]:
        if task == "regression":
            raise ValueError(f"dataset '{name}': label_noise applies to classification; this task is regression")
        y_tr = _flip_labels(y_tr, len(classes), options["label_noise"], rng)
        notes.append(f"label noise: {options['label_noise']:.0%} of training labels flipped")
    if options["outlier_fraction"]:
        if task != "regression":
            raise ValueError(f"dataset '{name}': outlier_fraction applies to regression; this task is {task}")
        y_tr = _add_outliers(y_tr, options, rng)
        notes.append(
            f"outliers: {options['outlier_fraction']:.0%} of training targets moved by "
            f"{options['outlier_magnitude']} x std ({options['outlier_sides']}-sided); validation and test clean"
        )
    x_tr, x_va, x_te = _standardize([x_tr, splits[2], splits[4]], options["standardize"])
    y_va, y_te = splits[3], splits[5]
    if task == "regression":
        center = np.median(y_tr, axis=0)
        q75, q25 = np.percentile(y_tr, [75, 25], axis=0)
        scale = np.where(q75 - q25 > 0, (q75 - q25) / 1.349, 1.0)
        y_tr, y_va, y_te = ((v - center) / scale for v in (y_tr, y_va, y_te))
        notes.append("targets scaled by the training median and IQR/1.349")
    if options["standardize"] != "none":
        notes.append(f"inputs standardized ({options['standardize']}) with training statistics")
    if task == "regression":
        y_tr, y_va, y_te = (np.asarray(v, dtype="float32") for v in (y_tr, y_va, y_te))
    x_tr, x_va, x_te = (np.asarray(v, dtype="float32") for v in (x_tr, x_va, x_te))
    return Dataset(
        name, task, x_tr, y_tr, x_va, y_va, x_te, y_te,
        n_classes=len(classes), classes=[c.item() if hasattr(c, "item") else c for c in classes], notes=notes,
    )


def _split(name, x, y, task, options, test):
    from sklearn.model_selection import train_test_split

    seed, val_f, test_f = options["split_seed"], options["validation_fraction"], options["test_fraction"]
    stratify = task != "regression"
    if test is None and not val_f + test_f < 1:
        raise ValueError(f"dataset '{name}': validation_fraction + test_fraction must be < 1, got {val_f + test_f}")
    try:
        if test is None:
            x, x_te, y, y_te = train_test_split(x, y, test_size=test_f, random_state=seed,
                                                stratify=y if stratify else None)
            val_f = val_f / (1 - test_f)
        else:
            x_te, y_te = np.asarray(test[0], dtype="float64"), test[1]
        x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=val_f, random_state=seed,
                                                  stratify=y if stratify else None)
    except ValueError as e:
        raise ValueError(f"dataset '{name}': cannot split it: {str(e).splitlines()[0]}") from None
    return x_tr, y_tr, x_va, y_va, x_te, y_te


def _flip_labels(y, n_classes, fraction, rng):
    y = y.copy()
    rows = rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)
    # a flipped label moves to one of the other classes, uniformly
    y[rows] = (y[rows] + rng.integers(1, n_classes, size=len(rows))) % n_classes
    return y


def _add_outliers(y, options, rng):
    y = np.array(y, dtype="float64")
    rows = rng.choice(len(y), size=int(round(options["outlier_fraction"] * len(y))), replace=False)
    sign = 1.0 if options["outlier_sides"] == "one" else rng.choice([-1.0, 1.0], size=len(rows))
    offset = options["outlier_magnitude"] * y.std(axis=0)
    y[rows] += (sign * offset.T).T if y.ndim > 1 else sign * offset
    return y


def _standardize(arrays, how):
    train = arrays[0]
    if how == "zscore":
        center, scale = train.mean(axis=0), train.std(axis=0)
    elif how == "minmax":
        center, scale = train.min(axis=0), train.max(axis=0) - train.min(axis=0)
    else:
        return arrays
    scale = np.where(scale > 0, scale, 1.0)  # constant features (digits' blank border pixels)
    return [(a - center) / scale for a in arrays]
