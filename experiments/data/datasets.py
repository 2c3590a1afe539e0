"""Datasets: embedded (scikit-learn), generated, or read from a local file the user names (the
readers are in `files`); the catalogue, and the preparation every dataset goes through.

Nothing is downloaded, except MNIST and Fashion-MNIST by `keras.datasets` when neither a path nor
Keras' cache file holds them (and `download` is not false). Every dataset goes through the same
preparation: a deterministic (stratified, for classification) train/validation/test split (or the
splits a user gives as files), optional label noise or target outliers injected into the training
split only, and input standardization fitted on train only.
Regression targets are scaled (`target_scaling`: by default the training median and interquartile
range, robust to the outliers a user may have asked for), so losses and errors are in those
units; the `_raw` metrics give the errors in the targets' own units. Generated datasets are drawn
with `split_seed` too: one seed fixes the data the runs of an experiment share.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.data.files import check_arrays, read_csv, read_keras_images, read_npz
from initializers.registry import Entry, Registry, check_user_name, keyword_params, source_of

_PREPARE = {
    "validation_fraction": 0.2,
    "test_fraction": 0.2,
    "split_seed": 0,
    "standardize": "zscore",
    "label_noise": 0.0,
    "outlier_fraction": 0.0,
    "outlier_magnitude": 10.0,
    "outlier_sides": "two",
    "target_scaling": "robust",
}
_CHOICES = {
    "target_scaling": ("robust", "standard", "none"),
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
        return (x if shape is None else x.reshape(-1, *shape)), y, task, {}

    return load


def _rng(options):
    return np.random.default_rng(options["split_seed"])


def _moons(name, options):
    from sklearn import datasets as sk

    x, y = sk.make_moons(options["n_samples"], noise=options["noise"], random_state=_rng(options).integers(2**31))
    return x, y, "binary", {}


def _circles(name, options):
    from sklearn import datasets as sk

    if not options["factor"] < 1:
        raise ValueError(f"dataset 'circles' parameter 'factor' must be in (0, 1), got {options['factor']}")
    x, y = sk.make_circles(options["n_samples"], noise=options["noise"], factor=options["factor"],
                           random_state=_rng(options).integers(2**31))
    return x, y, "binary", {}


def _xor(name, options):
    rng = _rng(options)
    x = rng.uniform(-1, 1, size=(options["n_samples"], 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(int)
    return x + rng.normal(0, options["noise"], size=x.shape), y, "binary", {}


def _friedman(name, options):
    from sklearn import datasets as sk

    if options["n_features"] < 5:
        raise ValueError(f"dataset 'regression' needs n_features >= 5, got {options['n_features']}")
    x, y = sk.make_friedman1(options["n_samples"], n_features=options["n_features"], noise=options["noise"],
                             random_state=_rng(options).integers(2**31))
    return x, y, "regression", {}


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
    # regression: targets were (y - center) / scale per target; errors times scale are in y's units
    target_center: list = field(default_factory=lambda: [0.0])
    target_scale: list = field(default_factory=lambda: [1.0])

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
            **({"target_center": self.target_center, "target_scale": self.target_scale}
               if self.task == "regression" else {}),
        }


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
# options) -> (x, y, task or "auto", predefined splits {"test"/"val": (x, y)})`. Adding a dataset is
# one line here.
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
    "csv": (_entry("local CSV file: path, target column, task (auto infers it); optional test_path, val_path",
                   path="", target="", task="auto", test_path="", val_path=""), read_csv),
    "npz": (_entry("local .npz file with arrays x and y; optional test_path, val_path", path="", task="auto",
                   test_path="", val_path=""), read_npz),
    "mnist": (_entry("path, else Keras' cache $KERAS_HOME/datasets/mnist.npz, else keras.datasets (download)",
                     path="", download=True), read_keras_images),
    "fashion_mnist": (_entry("path, else $KERAS_HOME/datasets/fashion_mnist.npz, else keras.datasets (download)",
                             path="", download=True), read_keras_images),
}
DATASETS = Registry("dataset", {name: entry for name, (entry, _) in _CATALOGUE.items()})
_LOADERS = {name: loader for name, (_, loader) in _CATALOGUE.items()}


def register_dataset(name, fn, source=None):
    """Add your own dataset loader to the catalogue under `name`, for configs to name.

    Args:
        fn: `f(**params) -> (x, y)` or `(x, y, x_test, y_test)` (a predefined test split), arrays
            with one example per row; its keyword parameters with defaults are options a config may
            set, beside the preparation options every dataset takes (split, standardize, ...). The
            task is inferred from y unless `fn.task` or the config's `task` says it.
        source: what experiment.json records of it (default: its module, file and the file's hash).
    """
    check_user_name("dataset", name, DATASETS.entries)
    try:
        params = keyword_params(fn)
    except ValueError as e:
        raise ValueError(f"dataset {name!r}: {e}") from None
    shared = sorted(set(params) & {*_PREPARE, "task"})
    if not callable(fn) or shared:
        raise ValueError(f"dataset {name!r} must be a function f(**params) whose parameters are not named "
                         f"{', '.join(shared) or 'like the preparation options'}")

    def load(name, options):
        try:
            arrays = fn(**{k: options[k] for k in params})
        except Exception as e:  # noqa: BLE001 - the user's code may raise anything
            raise ValueError(f"dataset {name!r} failed to load: {type(e).__name__}: {e}") from None
        if not isinstance(arrays, tuple | list) or len(arrays) not in (2, 4):
            raise ValueError(f"dataset {name!r} must return (x, y) or (x, y, x_test, y_test)")
        arrays = [np.asarray(a) for a in arrays]
        check_arrays(name, ["x", "y", "x_test", "y_test"][:len(arrays)], arrays, "its loader")
        return arrays[0], arrays[1], options["task"], ({"test": tuple(arrays[2:])} if arrays[2:] else {})

    entry = _entry("your own", **params, task=getattr(fn, "task", "auto"))
    DATASETS.register(name, dataclasses.replace(entry, source=source or source_of(fn), obj=fn))
    _LOADERS[name] = load


def load_dataset(spec, base=None):
    """Load and prepare a dataset from its spec (`"digits"` or `{"name": "digits", **options}`).

    Args:
        base: the folder relative file paths are read from (the config file's; default: the
            current folder); `~` is expanded.
    Raises:
        ValueError: one line naming the bad value and what to do, for anything wrong.
    """
    spec = DATASETS.parse(spec)
    name, options = spec["name"], DATASETS.resolve(spec)
    for key in ("path", "test_path", "val_path"):
        if options.get(key):
            options[key] = str((Path(base or ".") / Path(options[key]).expanduser()).resolve())
    x, y, task, predefined = _LOADERS[name](name, options)
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y)
    _check_finite(name, x, y)
    for split in predefined.values():
        _check_finite(name, *split)
    if task == "auto":
        task = _infer_task(y)
    notes, classes = [], []
    if task != "regression":
        if y.ndim != 1:
            raise ValueError(f"dataset '{name}': a {task} task needs one label per example, got targets of shape "
                             f"{y.shape}; use task = 'regression' for several targets")
        classes, y = np.unique(y, return_inverse=True)
        for key, (x_split, y_split) in predefined.items():
            unseen = sorted(set(np.asarray(y_split).tolist()) - set(classes.tolist()))
            if unseen:
                raise ValueError(f"dataset '{name}': the {key} split has labels {unseen[:5]} that the training data "
                                 "lacks; every label must occur in the training data")
            predefined[key] = (x_split, np.searchsorted(classes, y_split))
        if len(classes) < 2:
            raise ValueError(f"dataset '{name}': a {task} task needs at least 2 classes, found {len(classes)} "
                             f"({', '.join(map(str, classes[:1]))}); check the target column or labels")
        if task == "binary" and len(classes) != 2:
            raise ValueError(f"dataset '{name}': task 'binary' needs 2 classes, found {len(classes)}")
    elif not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"dataset '{name}': task 'regression' needs numeric targets, got {y.dtype}")
    notes += [f"{key} split: given ({len(split[0])} examples)" for key, split in predefined.items()]

    splits = _split(name, x, y, task, options, predefined)
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
    center, scale = np.zeros(1), np.ones(1)
    if task == "regression":
        center, scale = _target_scaling(y_tr, options["target_scaling"])
        y_tr, y_va, y_te = ((v - center) / scale for v in (y_tr, y_va, y_te))
        notes.append(_SCALING_NOTES[options["target_scaling"]])
    elif "target_scaling" in spec:
        raise ValueError(f"dataset '{name}': target_scaling applies to regression; this task is {task}")
    if options["standardize"] != "none":
        notes.append(f"inputs standardized ({options['standardize']}) with training statistics")
    if task == "regression":
        y_tr, y_va, y_te = (np.asarray(v, dtype="float32") for v in (y_tr, y_va, y_te))
    x_tr, x_va, x_te = (np.asarray(v, dtype="float32") for v in (x_tr, x_va, x_te))
    return Dataset(
        name, task, x_tr, y_tr, x_va, y_va, x_te, y_te,
        n_classes=len(classes), classes=[c.item() if hasattr(c, "item") else c for c in classes], notes=notes,
        target_center=np.atleast_1d(center).astype(float).tolist(),
        target_scale=np.atleast_1d(scale).astype(float).tolist(),
    )


_SCALING_NOTES = {"robust": "targets scaled by the training median and IQR/1.349 (errors in those units; _raw "
                            "metrics in the targets' own)",
                  "standard": "targets scaled by the training mean and standard deviation (errors in those units; "
                              "_raw metrics in the targets' own)",
                  "none": "targets as given"}


def _target_scaling(y, how):
    """Per target center and scale of the training targets: median and IQR/1.349 (robust to the
    outliers a user may have asked for; the std of normal data), mean and std, or none."""
    if how == "none":
        return np.zeros(y.shape[1:] or 1), np.ones(y.shape[1:] or 1)
    if how == "robust":
        center = np.median(y, axis=0)
        q75, q25 = np.percentile(y, [75, 25], axis=0)
        spread = (q75 - q25) / 1.349
    else:
        center, spread = np.mean(y, axis=0), np.std(y, axis=0)
    return center, np.where(spread > 0, spread, 1.0)


def _split(name, x, y, task, options, predefined):
    """Train, validation and test splits: the predefined ones as given, the others drawn
    (stratified for classification) with `split_seed`."""
    from sklearn.model_selection import train_test_split

    seed, val_f, test_f = options["split_seed"], options["validation_fraction"], options["test_fraction"]
    stratify = task != "regression"
    drawn = [(key, f) for key, f in (("test", test_f), ("val", val_f)) if key not in predefined]
    if len(drawn) == 2 and not val_f + test_f < 1:
        raise ValueError(f"dataset '{name}': validation_fraction + test_fraction must be < 1, got {val_f + test_f}")
    splits, left = {}, 1.0
    try:
        for key, fraction in drawn:
            x, x_out, y, y_out = train_test_split(x, y, test_size=fraction / left, random_state=seed,
                                                  stratify=y if stratify else None)
            splits[key], left = (x_out, y_out), left - fraction
    except ValueError as e:
        raise ValueError(f"dataset '{name}': cannot split it: {str(e).splitlines()[0]}") from None
    splits.update({key: (np.asarray(xs, dtype="float64"), ys) for key, (xs, ys) in predefined.items()})
    return x, y, *splits["val"], *splits["test"]


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
