"""The TensorBoard dashboard, checked through a real `tensorboard` server's HTTP API.

One small real experiment (with cells made to diverge: SGD at learning rate 1000 on MSE) is run
through the CLI, then `tensorboard --logdir <its folder> --host 127.0.0.1 --port 0` serves it.
"""

import re

import numpy as np
import pandas as pd
import pytest

from experiments import cli

CONFIG = """
dataset = { name = "regression", n_samples = 300 }
model = { name = "mlp", widths = [8, 8] }
initializers = ["he_normal", "zeros"]
losses = ["mean_squared_error", "huber"]
optimizer = "sgd"
learning_rate = [0.01, 1000.0]
batch_size = 32
seeds = [0, 1]
epochs = 3
diagnostics = { every = 2 }
"""
STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


@pytest.fixture(scope="module")
def board(tmp_path_factory, tensorboard_server, wait):
    """(get, post, runs table, experiment folder) for a served real experiment."""
    out = tmp_path_factory.mktemp("tb")
    (out / "tb.toml").write_text(CONFIG)
    assert cli.main(["run", str(out / "tb.toml"), "--output", str(out), "--quiet"]) == 0
    exp_dir = out / "runs" / "tb"
    runs = pd.read_csv(out / "reports" / "tb" / "runs.csv")

    with tensorboard_server(exp_dir) as (get, post):
        expected = {f"{r}/{group}" for r in runs["run_id"] for group in ("train", "validation")}

        def loaded():  # every run is there and every session has ended, as the server sees it
            if not expected <= set(get("/data/runs")):
                return False
            groups = post("/data/plugin/hparams/session_groups", {
                "experimentName": "", "allowedStatuses": STATUSES, "colParams": [], "startIndex": 0,
                "sliceSize": 1000})
            sessions = [s for g in groups["sessionGroups"] for s in g["sessions"]]
            return len(sessions) == len(runs) and all(s["status"] != "STATUS_UNKNOWN" for s in sessions) and groups

        groups = wait(loaded, "tensorboard to load every session")
        yield get, post, runs, exp_dir, groups


def test_runs_are_named_for_the_run_selector(board):
    get, _, runs, _, _ = board
    served = set(get("/data/runs"))
    for run_id in runs["run_id"]:
        assert re.fullmatch(r"regression/(he_normal|zeros)__(mean_squared_error|huber)__lr[\d.]+/seed_\d", run_id)
        assert {run_id, f"{run_id}/train", f"{run_id}/validation"} <= served
    ok_cells = {r.rsplit("/", 1)[0] for r in runs.loc[runs["status"] == "ok", "run_id"]}
    assert {f"{cell}/mean_std" for cell in ok_cells} <= served


def test_scalars_are_the_values_the_runs_recorded(board):
    get, _, runs, exp_dir, _ = board
    for _, run in runs.iterrows():
        history = pd.read_csv(exp_dir / run["run_id"] / "history.csv")
        for column in history.columns.drop("epoch"):
            group, tag = ("validation", column[4:]) if column.startswith("val_") else ("train", column)
            served = get("/data/plugin/scalars/scalars", run=f"{run['run_id']}/{group}", tag=f"epoch_{tag}")
            assert [step for _, step, _ in served] == history["epoch"].tolist()
            values = np.array([float(v) for _, _, v in served])
            np.testing.assert_allclose(values, history[column].to_numpy(), rtol=1e-6)
        if run["status"] == "ok":
            served = get("/data/plugin/scalars/scalars", run=f"{run['run_id']}/test", tag="epoch_loss")
            assert served[0][2] == pytest.approx(run["test_loss"], rel=1e-6)


def test_hparams_declare_every_value_of_every_axis_and_the_metrics_by_group(board):
    _, post, _, _, _ = board
    experiment = post("/data/plugin/hparams/experiment", {"experimentName": ""})
    domains = {h["name"]: h["domainDiscrete"] for h in experiment["hparamInfos"]}
    assert domains == {"dataset": ["regression(n_samples=300)"], "model": ["mlp(widths=[8, 8])"],
                       "initializer": ["he_normal", "zeros"], "loss": ["huber", "mean_squared_error"],
                       "optimizer": ["sgd"], "learning_rate": [0.01, 1000.0], "batch_size": [32]}
    metrics = {(m["name"]["group"], m["name"]["tag"]) for m in experiment["metricInfos"]}
    errors = ("mean_absolute_error", "root_mean_squared_error")
    assert metrics == {(g, f"epoch_{m}") for g in ("train", "validation", "test")
                       for m in ("loss", *errors, *(e + "_raw" for e in errors))}


def test_a_session_group_per_cell_with_the_true_statuses(board):
    _, _, runs, _, groups = board
    assert groups["totalSize"] == runs["cell"].nunique() == 8
    status = dict(zip(runs["run_id"], runs["status"], strict=True))
    seen = {}
    for group in groups["sessionGroups"]:
        assert {s["name"].rsplit("/", 1)[0] for s in group["sessions"]} == {group["name"]}
        assert "seed" not in group["hparams"]
        for session in group["sessions"]:
            seen[session["name"]] = session["status"]
    assert seen == {r: "STATUS_SUCCESS" if s == "ok" else "STATUS_FAILURE" for r, s in status.items()}
    assert {"ok", "diverged"} <= set(status.values())


def test_diagnostics_histograms_and_scalars(board):
    get, _, runs, _, _ = board
    tags = get("/data/plugin/histograms/tags")
    run = runs["run_id"][0]
    assert {f"{kind}/{layer}" for kind in ("kernel", "bias") for layer in ("hidden_0", "hidden_1", "output")} \
        <= set(tags[run])
    histogram = get("/data/plugin/histograms/histograms", run=run, tag="kernel/hidden_0")
    assert [step for _, step, _ in histogram] == [0, 2, 3]  # step 0, every 2 epochs, the last epoch
    for initializer, units in (("he_normal", 8), ("zeros", 1)):
        run = runs.loc[runs["initializer"] == initializer, "run_id"].iloc[0]
        served = get("/data/plugin/scalars/scalars", run=run, tag="distinct_units/hidden_0")
        assert served[0][1:] == [0, units]


def test_mean_std_runs_and_their_margin_charts(board):
    get, _, runs, exp_dir, _ = board
    layout = get("/data/plugin/custom_scalars/layout")
    series = [s for c in layout["category"] for chart in c["chart"] for s in chart["margin"]["series"]]
    assert {"value": "val_loss/mean", "lower": "val_loss/lower", "upper": "val_loss/upper"} in series
    ok = runs[runs["status"] == "ok"]
    cell = ok["run_id"].iloc[0].rsplit("/", 1)[0]
    seeds = [pd.read_csv(exp_dir / r / "history.csv")["val_loss"] for r in ok["run_id"] if r.startswith(cell + "/")]
    mean, std = np.mean(seeds, axis=0), np.std(seeds, axis=0, ddof=1)
    served = {name: [v for _, _, v in get("/data/plugin/scalars/scalars", run=f"{cell}/mean_std",
                                          tag=f"val_loss/{name}")] for name in ("mean", "lower", "upper")}
    np.testing.assert_allclose(served["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(served["upper"], mean + std, rtol=1e-6)
    np.testing.assert_allclose(served["lower"], mean - std, rtol=1e-5)


def test_config_environment_and_report_plots(board):
    get, _, _, _, _ = board
    assert {"config", "environment"} <= set(get("/data/plugin/text/tags")["."])
    assert {"report/curves", "report/heatmap", "report/layers"} <= set(get("/data/plugin/images/tags")["."])


def test_the_tensorboard_command_serves_one_experiment_on_127_0_0_1(board, wait):
    """`make tensorboard` runs this command: a real server over the experiment's folder, found by
    name under --output, stopped by its own process id."""
    import json
    import socket
    import subprocess
    import sys
    import urllib.request

    _, _, runs, exp_dir, _ = board
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "experiments", "tensorboard", "tb", "--output",
                               str(exp_dir.parent.parent), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert f"serving {exp_dir.resolve()} on http://127.0.0.1:{port}/" in server.stdout.readline()

        def served():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5) as response:
                    return set(json.loads(response.read()))
            except OSError:
                return None

        assert set(runs["run_id"]) <= wait(lambda: (found := served()) and set(runs["run_id"]) <= found and found,
                                           "the tensorboard command to serve the runs")
    finally:
        server.terminate()
        server.wait(timeout=30)
