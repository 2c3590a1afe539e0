"""Datasets read from files: a CSV or .npz file the user names (with optional test and validation
files of their own), and MNIST / Fashion-MNIST from a local .npz or Keras' cache.

Each reader returns what `datasets.load_dataset` prepares: `(x, y, task or "auto", predefined
splits {"test"/"val": (x, y)})`, after checking that the file can be read and has the shapes and
types a dataset needs (one-line errors naming the file).
"""

import os
from pathlib import Path

import numpy as np


def _require_path(name, path, how, key="path"):
    if not path:
        raise ValueError(f"dataset '{name}' needs a local file: set dataset.{key} to {how}")
    if not Path(path).is_file():
        raise ValueError(f"dataset '{name}': no file at {str(path)!r}; set dataset.{key} to {how}")
    return Path(path)


def _predefined(name, options, read):
    """The splits a user gave as files of their own (`test_path`, `val_path`), read by `read(path, key)`."""
    return {split: read(_require_path(name, options[key], "a file like dataset.path", key), key)
            for split, key in (("test", "test_path"), ("val", "val_path")) if options.get(key)}


def read_csv(name, options):
    target = options["target"]

    def read(path, key):
        import pandas as pd

        try:
            frame = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
            raise ValueError(f"dataset 'csv': cannot read {str(path)!r}: {str(e).splitlines()[0]}") from None
        if target not in frame.columns:
            raise ValueError(
                f"dataset 'csv': no target column {target!r} in {str(path)!r}; "
                f"columns: {', '.join(map(str, frame.columns))}"
            )
        features = frame.drop(columns=[target])
        if features.shape[1] == 0 or len(frame) == 0:
            raise ValueError(f"dataset 'csv': {str(path)!r} has {features.shape[1]} feature columns and {len(frame)} "
                             "rows beside the target; it needs at least one of each")
        text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
        if text:
            raise ValueError(f"dataset 'csv': feature columns {text} are not numeric; encode them as numbers first")
        missing = [c for c in frame.columns if frame[c].isna().any()]
        if missing:
            raise ValueError(
                f"dataset 'csv': NaN or empty cells in columns {missing} of {str(path)!r}; drop or impute them first"
            )
        if key != "path" and list(features.columns) != columns:
            raise ValueError(f"dataset 'csv': {str(path)!r} ({key}) has feature columns {list(features.columns)}; "
                             f"they must be those of dataset.path, in its order: {columns}")
        return features, frame[target].to_numpy()

    features, y = read(_require_path("csv", options["path"], "a CSV file with a header row"), "path")
    columns = list(features.columns)
    splits = {k: (v[0].to_numpy(dtype="float64"), v[1]) for k, v in _predefined("csv", options, read).items()}
    return features.to_numpy(dtype="float64"), y, options["task"], splits


def _read_npz(name, path, keys):
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
    check_arrays(name, keys, arrays, repr(str(path)))
    return arrays


def read_npz(name, options):
    x, y = _read_npz(name, _require_path(name, options["path"], "an .npz file holding arrays x and y"), ("x", "y"))
    splits = _predefined(name, options, lambda path, key: tuple(_read_npz(name, path, ("x", "y"))))
    for key, (x_split, _) in splits.items():
        if x_split.shape[1:] != x.shape[1:]:
            raise ValueError(f"dataset '{name}': the {key} split's x has examples of shape {x_split.shape[1:]}; "
                             f"dataset.path's have {x.shape[1:]}")
    return x, y, options["task"], splits


def keras_home():
    """Keras' own folder: `$KERAS_HOME`, else `~/.keras` (its datasets cache is `datasets/` inside)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()


def read_keras_images(name, options):
    """MNIST or Fashion-MNIST: a local `path`, else Keras' cache file `$KERAS_HOME/datasets/<name>.npz`,
    else `keras.datasets.<name>.load_data()` (Keras' own cache, or a download where the network
    allows it and `download` is true)."""
    keys = ("x_train", "y_train", "x_test", "y_test")
    cached = keras_home() / "datasets" / f"{name}.npz"
    if options["path"]:
        arrays = _read_npz(name, _require_path(name, options["path"], "an .npz with " + ", ".join(keys)), keys)
    elif cached.is_file():
        arrays = _read_npz(name, cached, keys)
    elif options["download"]:
        arrays = _keras_download(name, cached, keys)
    else:
        raise ValueError(f"dataset '{name}': no file at {str(cached)!r} (Keras' cache) and download = false; set "
                         f"dataset.path to an .npz with {', '.join(keys)}, or allow the download")
    x, y, x_test, y_test = arrays
    if x.ndim != 3 or x_test.shape[1:] != x.shape[1:]:
        raise ValueError(f"dataset '{name}': it holds x_train of shape {x.shape} and x_test of shape "
                         f"{x_test.shape}; it needs grey images as (examples, height, width), the same size in both")
    # 28x28 grey images: add the channel axis so the CNN can use them
    return x[..., None], y, "multiclass", {"test": (x_test[..., None], y_test)}


def _keras_download(name, cached, keys):
    import socket

    import keras

    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)  # an offline machine fails fast instead of hanging
    try:
        (x, y), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as e:  # noqa: BLE001 - urllib, OSError, HTTP errors: all mean "not available"
        raise ValueError(f"dataset '{name}': no file at {str(cached)!r} (Keras' cache) and keras.datasets could not "
                         f"download it ({type(e).__name__}: {str(e)[:200]}); set dataset.path to an .npz with "
                         f"{', '.join(keys)} saved on a machine with internet access") from None
    finally:
        socket.setdefaulttimeout(before)
    return x, y, x_test, y_test


def check_arrays(name, keys, arrays, where):
    """Pairs (x, y), (x_test, y_test): examples by features, one label or target row per example."""
    pairs = list(zip(keys, arrays, strict=True))
    for (x_key, x), (y_key, y) in zip(pairs[::2], pairs[1::2], strict=True):
        if x.ndim < 2 or y.ndim not in (1, 2) or len(x) != len(y) or not len(x):
            raise ValueError(f"dataset '{name}': {where} gives {x_key} of shape {x.shape} and {y_key} of shape "
                             f"{y.shape}; it needs {x_key} as (examples, features...) and {y_key} as (examples,) or "
                             "(examples, targets), with the same number of examples")
