"""The TensorBoard dashboard, checked through a real `tensorboard` server's HTTP API.

One small real experiment (with cells made to diverge: SGD at learning rate 1000 on MSE) is run
through the CLI, then `tensorboard --logdir <its folder> --host 127.0.0.1 --port 0` serves it.
"""

import re

import numpy as np
import pandas as pd
import pytest
from rendered import click_checkbox, hparams_cells, html_tables, margin_matches, tensorboard_cards

from experiments import cli

CONFIG = """
dataset = { name = "regression", n_samples = 300 }
model = { name = "mlp", widths = [8, 8] }
initializers = ["he_normal", "zeros"]
losses = ["mean_squared_error", "huber"]
optimizer = "sgd"
learning_rate = [0.01, 1000.0]
batch_size = 32
seeds = [0, 1, 2]
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
        expected = set(runs["run_id"])

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
        assert run_id in served and f"{run_id}/train" not in served  # splits are tags, not subruns
    ok_cells = {r.rsplit("/", 1)[0] for r in runs.loc[runs["status"] == "ok", "run_id"]}
    assert {f"{cell}/mean_std" for cell in ok_cells} <= served


def test_scalars_are_the_values_the_runs_recorded(board):
    get, _, runs, exp_dir, _ = board
    for _, run in runs.iterrows():
        history = pd.read_csv(exp_dir / run["run_id"] / "history.csv")
        for column in history.columns.drop("epoch"):
            tag = f"validation/{column[4:]}" if column.startswith("val_") else f"train/{column}"
            served = get("/data/plugin/scalars/scalars", run=run["run_id"], tag=tag)
            assert [step for _, step, _ in served] == history["epoch"].tolist()
            values = np.array([float(v) for _, _, v in served])
            np.testing.assert_allclose(values, history[column].to_numpy(), rtol=1e-6)
        if run["status"] == "ok":
            served = get("/data/plugin/scalars/scalars", run=run["run_id"], tag="test/loss")
            assert served[0][2] == pytest.approx(run["test_loss"], rel=1e-6)


def test_hparams_declare_the_axes_that_vary_and_the_headline_metrics_first(board):
    _, post, _, _, _ = board
    experiment = post("/data/plugin/hparams/experiment", {"experimentName": ""})
    domains = {h["name"]: h["domainDiscrete"] for h in experiment["hparamInfos"]}
    # dataset, model, optimizer and batch size have one value here: no column that cannot vary
    assert domains == {"initializer": ["he_normal", "zeros"], "loss": ["huber", "mean_squared_error"],
                       "learning_rate": [0.01, 1000.0]}
    metrics = [m["name"]["tag"] for m in experiment["metricInfos"]]
    assert {m["name"].get("group", "") for m in experiment["metricInfos"]} == {""}  # tags of the session's run
    # TensorBoard ticks the first five: the test headline and loss, then validation's, then train's
    assert metrics[:6] == ["test/mean_absolute_error", "test/loss", "validation/mean_absolute_error",
                           "validation/loss", "train/mean_absolute_error", "train/loss"]
    errors = ("mean_absolute_error", "root_mean_squared_error")
    assert set(metrics) == {f"{split}/{m}" for split in ("train", "validation", "test")
                            for m in ("loss", *errors, *(e + "_raw" for e in errors))}


def test_a_session_group_per_cell_with_the_true_statuses(board):
    _, _, runs, _, groups = board
    assert groups["totalSize"] == runs["cell"].nunique() == 8
    status = dict(zip(runs["run_id"], runs["status"], strict=True))
    seen = {}
    cells = dict(zip(runs["run_id"], runs["cell"], strict=True))
    for group in groups["sessionGroups"]:
        assert {cells[s["name"]] for s in group["sessions"]} == {group["name"]}  # named by the cell's label
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
    bands, layers = layout["category"]
    series = [s for chart in bands["chart"] for s in chart["margin"]["series"]]
    for split in ("validation", "test", "train"):
        assert {"value": f"{split}/loss", "lower": f"band/{split}/loss/lower",
                "upper": f"band/{split}/loss/upper"} in series
    ok = runs[runs["status"] == "ok"]
    cell = ok["run_id"].iloc[0].rsplit("/", 1)[0]
    seeds = [pd.read_csv(exp_dir / r / "history.csv")["val_loss"] for r in ok["run_id"] if r.startswith(cell + "/")]
    mean, std = np.mean(seeds, axis=0), np.std(seeds, axis=0, ddof=1)
    tags = {"mean": "validation/loss", "lower": "band/validation/loss/lower", "upper": "band/validation/loss/upper"}
    served = {name: [v for _, _, v in get("/data/plugin/scalars/scalars", run=f"{cell}/mean_std", tag=tag)]
              for name, tag in tags.items()}
    np.testing.assert_allclose(served["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(served["upper"], mean + std, rtol=1e-6)
    np.testing.assert_allclose(served["lower"], mean - std, rtol=1e-5)
    # the test metrics: one point, at the cell's last epoch
    tested = ok[ok["run_id"].str.startswith(cell + "/")]["test_loss"]
    served = get("/data/plugin/scalars/scalars", run=f"{cell}/mean_std", tag="test/loss")
    assert [(step, pytest.approx(v, rel=1e-6)) for _, step, v in served] == [(len(mean), tested.mean())]
    # the diagnostics: a chart per quantity, a series per layer, the mean over the cell's seeds
    assert [chart["multiline"]["tag"] for chart in layers["chart"]][:2] == [["^activation_mean/"],
                                                                             ["^activation_std/"]]
    diagnosed = [pd.read_csv(exp_dir / r / "diagnostics.csv").query("quantity == 'activation_std' and "
                                                                    "layer == 'hidden_0'")["value"]
                 for r in ok["run_id"] if r.startswith(cell + "/")]
    served = get("/data/plugin/scalars/scalars", run=f"{cell}/mean_std", tag="activation_std/hidden_0")
    np.testing.assert_allclose([v for _, _, v in served], np.mean(diagnosed, axis=0), rtol=1e-6)


def test_config_environment_verdicts_and_report_plots(board):
    get, _, _, exp_dir, _ = board
    assert {"config", "environment", "verdicts"} <= set(get("/data/plugin/text/tags")["."])
    assert {"report/curves", "report/heatmap", "report/layers"} <= set(get("/data/plugin/images/tags")["."])
    # the report's verdicts, rendered by TensorBoard: a row per cell with its verdict
    (text,) = get("/data/plugin/text/text", run=".", tag="verdicts")
    verdicts = pd.read_csv(exp_dir.parent.parent / "reports" / "tb" / "verdicts.csv")
    (header, body), *_ = html_tables(text["text"])
    cells = verdicts[verdicts["family"] == "cells"]
    assert [row[header.index("verdict")] for row in body] == cells["verdict"].tolist()
    assert [row[header.index("initializer")] for row in body] == cells["initializer"].tolist()


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
        printed = server.stdout.readline()
        assert f"serving {exp_dir.resolve()}; open http://127.0.0.1:{port}/?runFilter=mean_std&" in printed

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


def test_in_a_browser_the_printed_address_opens_on_the_cells_means(board, browser, wait):
    """The address `init-loss-lab tensorboard` prints: Time Series with the validation charts of
    the cells' mean runs, curves drawn, no seed run among them."""
    from experiments.records.events import tensorboard_url

    get, _, runs, _, _ = board
    browser.set_window_size(1600, 2400)  # Time Series draws only the cards in view: all at once
    browser.get(tensorboard_url(int(get.base.rsplit(":", 1)[1]), "mean_absolute_error"))
    errors = ("mean_absolute_error", "root_mean_squared_error")
    expected = {f"validation/{m}" for m in ("loss", *errors, *(e + "_raw" for e in errors))}
    found = []
    try:
        cards = wait(lambda: (found.append(tensorboard_cards(browser)) or len(found[-1]) == len(expected)
                              and all(c[2] for c in found[-1]) and found[-1]), "a chart per validation metric")
    except AssertionError:
        raise AssertionError(f"cards (title, elements drawn): {[(c[0], c[2]) for c in found[-1]]}") from None
    assert {title for title, _, _ in cards} == expected
    ok_cells = {r.rsplit("/", 1)[0] for r in runs.loc[runs["status"] == "ok", "run_id"]}
    for _, text, _ in cards:  # a curve per cell whose seeds finished: its mean run, and no seed's run
        assert {f"{cell}/mean_std" for cell in ok_cells} <= set(text.split()) and "seed_" not in text
    browser.set_window_size(1600, 1000)


def test_in_a_browser_hparams_shows_a_row_per_cell_with_the_test_metric(board, browser, wait):
    get, _, runs, _, _ = board
    browser.get(get.base + "/#hparams")
    labels = set(runs["cell"])
    cells = wait(lambda: labels <= set(found := hparams_cells(browser)) and found, "the HParams rows")
    header = cells[:cells.index("")]
    assert header[:2] == ["Trial ID", "Show Metrics"]
    assert {"initializer", "loss", "learning_rate", "test mean_absolute_error", "test loss"} <= set(header)
    assert not {"dataset", "model", "optimizer", "batch_size"} & set(header)  # they cannot vary here
    starts = [i for i, text in enumerate(cells) if text in labels]
    assert sorted(cells[i] for i in starts) == sorted(labels)  # a row per cell, named by its label
    column = header.index("test mean_absolute_error")
    for i in starts:
        part = runs[runs["cell"] == cells[i]]
        shown = cells[i + column]
        if (part["status"] == "ok").all():  # TensorBoard shows a group's mean over its sessions
            assert float(shown) == pytest.approx(part["test_mean_absolute_error"].mean(), rel=1e-3)
        else:
            assert shown in ("", "NaN")
    # the status filter: without "Success", the rows left are the cells whose runs failed (diverged)
    assert click_checkbox(browser, "Success")
    failed = set(runs.loc[runs["status"] != "ok", "cell"])
    wait(lambda: {c for c in hparams_cells(browser) if c in labels} == failed, "the failed cells only")


def test_in_a_browser_the_bands_address_opens_custom_scalars_with_the_cells_selected(board, browser, wait):
    from experiments.records.events import bands_url

    get, _, runs, _, _ = board
    browser.get(bands_url(int(get.base.rsplit(":", 1)[1])))
    ok_cells = {r.rsplit("/", 1)[0] for r in runs.loc[runs["status"] == "ok", "run_id"]}
    curves = ["loss", "mean_absolute_error", "root_mean_squared_error", "mean_absolute_error_raw",
              "root_mean_squared_error_raw"]
    # every split's margin chart matches every mean run; then a chart per diagnostics quantity,
    # a series per layer of each mean run (3 weighted layers, 2 hidden ones, 1 ratio)
    n = len(ok_cells)
    wanted = [f"Matches ({n})"] * len(curves) * 3 + [f"Matches ({k * n})" for k in (3, 3, 3, 2, 2, 1)]
    found = []
    try:
        wait(lambda: (found.append(margin_matches(browser)) or found[-1] == wanted), "a band per cell")
    except AssertionError:
        raise AssertionError(f"charts show {found[-1]}, not {wanted}") from None
