"""The environment an experiment ran in: library versions, Python, CPU, the devices TensorFlow
trains on, and the code's commit."""

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

LIBRARIES = ("tensorflow", "tensorflow-cpu", "nvidia-cudnn-cu12", "keras", "keras-tuner", "tensorboard", "numpy",
             "pandas", "scikit-learn", "matplotlib")


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


@functools.cache
def _installed_versions():
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def library_versions():
    """Installed versions of the libraries that shape results (without importing them)."""
    return dict(_installed_versions())  # a copy: callers may add to it


@functools.cache
def devices():
    """The devices TensorFlow trains on (`CPU:0`, `GPU:0 NVIDIA ...`), whether this TensorFlow
    was built with CUDA, and whether its oneDNN kernels are on. Imports TensorFlow."""
    import tensorflow as tf

    found = []
    for device in tf.config.list_physical_devices():
        name = device.name.removeprefix("/physical_device:")
        if device.device_type == "GPU":
            details = tf.config.experimental.get_device_details(device)
            name += f" {details.get('device_name', '')}".rstrip()
        found.append(name)
    return {"devices": found, "built_with_cuda": tf.test.is_built_with_cuda(), "onednn": _onednn()}


def _onednn():
    """Whether TensorFlow runs its oneDNN kernels (`TF_ENABLE_ONEDNN_OPTS`, read when it loads;
    `experiments` turns them on), or None where this TensorFlow does not say."""
    from tensorflow.python.util import _pywrap_util_port  # TensorFlow's own check; no public one

    enabled = getattr(_pywrap_util_port, "IsMklEnabled", None)
    return bool(enabled()) if enabled else None


def describe():
    """Everything worth recording next to an experiment's results."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        **devices(),
        "commit": _commit(),
        "libraries": library_versions(),
    }
