"""What a reader sees equals what the tables hold: every report kind (experiment, tuner, claims)
built from names and texts full of `|`, `<`, `>`, `&` and quotes; every Markdown table, every
HTML table (parsed with html.parser) and the console table checked row by row against the header
and cell by cell against the CSV it came from."""

import numpy as np
import pandas as pd
import pytest
from conftest import write_config
from rendered import console_tables, html_tables, html_text, markdown_tables, markdown_unescape, shown_tables

from experiments import cli
from experiments.reporting.render import cell_text, console_table, html_table, markdown_table
from experiments.reporting.verdicts import shown as shown_verdicts

NASTY = "A | B <script>alert(\"x\")</script> & <img src=x onerror=alert(1)> 'quoted' `code` *star* [l](u) 1. list"


def _csv(path):
    return pd.read_csv(path)


def _same(shown, frame, digits=4, where=""):
    """A parsed table (header, rows) shows `frame`: the same header and, cell by cell, its values."""
    header, rows = shown
    assert header == [str(c) for c in frame.columns], where
    assert len(rows) == len(frame), where
    for row, (_, expected) in zip(rows, frame.iterrows(), strict=True):
        assert len(row) == len(header), (where, row)
        assert row == [cell_text(v, digits) for v in expected], (where, row)


def _pages(md_path, browser):
    """The Markdown tables, the HTML tables of a page and the tables a real browser shows of it,
    which must be the same tables; every image of the page loads in the browser."""
    md = markdown_tables(md_path.read_text())
    html_path = md_path.with_suffix(".html")
    page = html_path.read_text()
    assert "<script" not in page and "<img src=x" not in page  # user text is text, never markup
    assert html_tables(page) == md
    shown, images = shown_tables(browser, html_path)
    assert shown == [(header, rows) for header, rows in md], html_path.name
    assert images and all(loaded for _, loaded in images), images
    return md, page


def test_a_cell_holding_a_pipe_stays_in_its_column_in_every_format():
    frame = pd.DataFrame({"cell": ["he_normal | categorical_crossentropy", NASTY],
                          "test loss": [0.55, np.nan], "test accuracy": ["0.949 +- 0.01 (2)", "-"]})
    for parse, text in ((markdown_tables, markdown_table(frame)), (html_tables, html_table(frame)),
                        (console_tables, console_table(frame))):
        (shown,) = parse(text)
        _same(shown, frame, where=parse.__name__)


@pytest.fixture(scope="module")
def nasty(tmp_path_factory):
    """An experiment over two CSV datasets whose paths hold `| < > & ' "`, with a nasty description;
    a keras-tuner search whose cells are `initializer | loss`; a claim with a nasty statement and a
    `within` check (its rule reads `|effect| < v`)."""
    root = tmp_path_factory.mktemp("nasty")
    rng = np.random.default_rng(0)
    paths = []
    for i, name in enumerate(["d|a<t>a&'\".csv", "o|the<r>&.csv"]):
        x = rng.normal(size=(60, 2))
        rows = ["a,b,label"] + [f"{a},{b},{int(a + i * b > 0)}" for a, b in x]
        (root / name).write_text("\n".join(rows) + "\n")
        paths.append(str(root / name))
    common = {"description": NASTY, "model": {"name": "mlp", "widths": [4]}, "epochs": 1, "batch_size": 16}
    out = root / "out"
    experiment = write_config(root / "nasty.toml", {
        **common, "name": "nasty", "dataset": [{"name": "csv", "path": p, "target": "label"} for p in paths],
        "initializers": ["he_normal", "zeros"], "losses": ["binary_crossentropy"], "seeds": [0, 1, 2],
        "diagnostics": {"every": 1, "probe": 16}})
    assert cli.main(["run", str(experiment), "--output", str(out), "--quiet"]) == 0
    search = write_config(root / "nasty_tune.toml", {
        **common, "name": "nasty_tune", "dataset": {"name": "moons", "n_samples": 80},
        "initializers": ["he_normal", "zeros"], "losses": ["categorical_crossentropy"], "seeds": [0, 1, 2],
        "tune": {"max_trials": 2, "batch_size": [16, 32]}})
    assert cli.main(["tune", str(search), "--output", str(out), "--quiet"]) == 0
    claim = write_config(root / "nasty_claim.toml", {
        **common, "name": "nasty_claim", "dataset": {"name": "moons", "n_samples": 80},
        "initializers": ["he_normal", "zeros"], "losses": ["binary_crossentropy"], "seeds": [0, 1, 2],
        "claim": {"statement": NASTY, "source": "<b>a & b</b>", "checks": [
            {"name": "within | <check> & 'name'", "metric": "test_accuracy", "plus": [{"initializer": "he_normal"}],
             "minus": [{"initializer": "zeros"}], "test": "within", "value": 2.0},
            {"name": "greater", "metric": "abs(test_loss - 1)", "plus": [{"initializer": "he_normal"}],
             "test": ">", "value": 0}]}})
    assert cli.main(["claims", str(claim), "--output", str(out), "--quiet"]) == 0
    return out


def test_the_experiment_report_shows_its_csvs(nasty, browser):
    reports = nasty / "reports" / "nasty"
    tables, page = _pages(reports / "report.md", browser)
    cells, runs = _csv(reports / "cells.csv"), _csv(reports / "runs.csv")
    assert NASTY in html_text(page) and NASTY in markdown_unescape((reports / "report.md").read_text())
    pivot, ranking, versus, diagnostics = tables
    # the pivot: a row per (dataset, initializer), a column per loss, each cell the cell's result,
    # marked * when it is the best or not distinguishable from it
    assert pivot[0] == ["dataset", "initializer", "binary_crossentropy"]
    assert len(pivot[1]) == len(cells) == 4 and all(len(row) == 3 for row in pivot[1])
    for row in pivot[1]:
        match = cells[(cells["dataset"] == row[0]) & (cells["initializer"] == row[1])]
        star = " *" if match["vs_best"].item() in ("best", "practically equivalent", "inconclusive") else ""
        assert row[2] == match["result"].item() + star
    assert any(row[2].endswith(" *") for row in pivot[1])  # the best at least
    assert any("|" in row[0] and "<t>" in row[0] for row in pivot[1])  # the path's characters, as written
    _same(ranking, cells.drop(columns=["ok", "result"]), where="ranking")
    # which differences are real: one family (one loss), every cell against the best, as verdicts.csv
    verdicts = _csv(reports / "verdicts.csv")
    assert set(verdicts["family"]) == {"cells"} and "Holm-corrected" in page
    _same(versus, shown_verdicts(verdicts.drop(columns=["family"]), "test_accuracy"), where="verdicts")
    assert versus[1][0][versus[0].index("verdict")] == "best"
    assert dict(zip(cells["initializer"] + cells["dataset"], cells["vs_best"], strict=True)) == dict(zip(
        verdicts["initializer"] + verdicts["dataset"], verdicts["verdict"], strict=True))
    means = runs.groupby(["dataset", "initializer", "loss"], sort=False)[
        ["diag_init_distinct_units", "diag_end_distinct_units"]].mean().reset_index()
    assert diagnostics[0][:5] == ["dataset", "initializer", "loss", "distinct_units init", "distinct_units end"]
    for row in diagnostics[1]:
        match = means[(means["dataset"] == row[0]) & (means["initializer"] == row[1])]
        assert row[3:5] == [cell_text(match[c].item(), 3) for c in ("diag_init_distinct_units",
                                                                      "diag_end_distinct_units")]


def test_the_tuner_report_and_console_show_their_csvs(nasty, browser, capsys):
    reports = nasty / "reports" / "nasty_tune"
    tables, page = _pages(reports / "tune.md", browser)
    tuned, best, trials = (_csv(reports / f"{n}.csv") for n in ("tuned", "best", "trials"))
    assert NASTY in html_text(page)
    shown = tables[0]
    _same(shown, tuned, digits=6, where="tuned")  # the reported bug: test loss under "test accuracy"
    column = shown[0].index("test accuracy")
    assert [row[column] for row in shown[1]] == tuned["test accuracy"].tolist()
    assert all(row[0].count(" | ") == 1 for row in shown[1])
    versus = _csv(reports / "verdicts.csv")  # the tuned cells against the best, paired by seed
    _same(tables[1], shown_verdicts(versus.drop(columns=["family"]), "test_accuracy"), where="verdicts")
    assert tuned.set_index("cell")["vs best"].to_dict() == versus.set_index("cell")["verdict"].to_dict()
    _same(tables[2], best, digits=6, where="best")
    shown_trials = tables[-1]
    _same(shown_trials, trials[shown_trials[0]], digits=6, where="trials")
    # the console: the command prints the tuned table
    search = nasty.parent / "nasty_tune.toml"
    assert cli.main(["tune", str(search), "--output", str(nasty), "--quiet"]) == 0
    (console,) = console_tables(capsys.readouterr().out)
    _same(console, tuned, digits=6, where="console")


def test_the_claims_report_shows_its_csvs(nasty, browser):
    reports = nasty / "reports" / "claims"
    tables, page = _pages(reports / "claims.md", browser)
    claims, checks = _csv(reports / "claims.csv"), _csv(reports / "checks.csv")
    _same(tables[0], claims, where="claims")
    header, rows = tables[1]
    assert header == ["check", "rule", "cell means", "effect [95% CI]", "seeds", "verdict"]
    assert [row[0] for row in rows] == checks["check"].tolist()
    assert [row[1] for row in rows] == checks["rule"].tolist()  # `|effect| < 2` keeps its row
    assert rows[0][1].startswith("|test_accuracy of [he_normal | binary_crossentropy] - [zeros | binary_crossentropy]| "
                                 "< 2")
    assert [row[4] for row in rows] == [str(n) for n in checks["seeds"]]
    assert [row[5] for row in rows] == checks["verdict"].tolist()
    for row, (_, check) in zip(rows, checks.iterrows(), strict=True):
        assert row[3] == f"{check['mean']:.4g} [{check['lower']:.4g}, {check['upper']:.4g}]"
    text = html_text(page)
    assert NASTY in text and "<b>a & b</b>" in text
