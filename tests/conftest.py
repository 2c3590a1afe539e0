"""Shared fixtures: an autouse seed, quiet TensorFlow, tiny real configs written as TOML, a real
`tensorboard` server on 127.0.0.1, and a real browser (Debian's headless Chromium)."""

import contextlib
import json
import os
import queue
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as `experiments` sets it, before any test imports TensorFlow

# A real grid small enough to train in seconds: 2 initializers x 2 losses x 2 seeds.
TINY = {
    "name": "tiny",
    "dataset": {"name": "moons", "n_samples": 80},
    "model": {"name": "mlp", "widths": [8]},
    "initializers": ["he_normal", "zeros"],
    "losses": ["binary_crossentropy", "mean_squared_error"],
    "epochs": 2,
    "batch_size": 16,
    "seeds": [0, 1],
    "thresholds": {"val_accuracy": 0.6},
    "save_model": False,  # saved models have their own tests (engines/test_saved_models.py); off, CI is faster
}


def pytest_collection_modifyitems(items):
    """Tests under tests/integration (real processes: TensorBoard, keras-tuner's chief and workers,
    kills and resumes) carry the `integration` marker: `pytest -m "not integration"` skips them."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def timeless_tables(exp_dir):
    """An experiment's runs and epochs tables without their timing columns, in run order: what two
    trainings of one grid must agree on."""
    from experiments.reporting.tables import load_tables

    runs, epochs = load_tables(exp_dir)
    timing = [c for c in [*runs, *epochs] if c.endswith("time_s")]
    return (runs.drop(columns=timing, errors="ignore").set_index("run_id").sort_index(),
            epochs.drop(columns=timing, errors="ignore").sort_values(["run_id", "epoch"]).reset_index(drop=True))


def write_config(path, config):
    """Write a config dict as a TOML file; returns the path."""
    path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in config.items()))
    return path


@pytest.fixture
def config_file(tmp_path):
    """`config_file(**changes)` writes TINY updated with changes (None drops a key) as TOML."""

    def write(name="tiny", **changes):
        config = {**TINY, "name": name, **changes}
        path = tmp_path / f"{name}.toml"
        write_config(path, {k: v for k, v in config.items() if v is not None})
        return path

    return write


def wait_until(check, what, timeout=90):
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def _serve_tensorboard(logdir):
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(logdir), "--host", "127.0.0.1",
         "--port", "0", "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stderr], daemon=True).start()

    def address():
        try:
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", lines.get(timeout=0.5))
        except queue.Empty:
            match = None
        assert server.poll() is None, "tensorboard exited"
        return match and f"http://127.0.0.1:{match.group(1)}"

    try:
        base = wait_until(address, "tensorboard to print its address")

        def get(path, **params):
            query = "?" + urllib.parse.urlencode(params) if params else ""
            with urllib.request.urlopen(base + path + query, timeout=30) as response:
                return json.loads(response.read())

        def post(path, body):
            request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())

        get.base = base  # the server's address, for a browser
        yield get, post
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="session")
def tensorboard_server():
    """`with tensorboard_server(logdir) as (get, post):` a real `tensorboard --port 0` process on
    127.0.0.1 serving `logdir`, with JSON GET and POST helpers; stopped on leaving the block."""
    return _serve_tensorboard


@pytest.fixture(scope="session")
def wait():
    """`wait(check, what, timeout=90)`: poll until `check()` is true (see `wait_until`)."""
    return wait_until


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from Debian's packages, driven through Debian's chromedriver by selenium
    (`make browser` installs both; no browser download works here); quit at the session's end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver_path):
        pytest.fail("the browser tests need chromium and chromium-driver: make browser (as root), or "
                    "apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1600,1000", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
