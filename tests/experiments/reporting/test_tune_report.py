"""The tuner report from a search folder written by hand (no training): its tables, parsed back from
tune.md and tune.html, hold the numbers of trials.csv and best.csv, in their own columns."""

import math

import pandas as pd
from conftest import TINY
from rendered import html_tables, markdown_tables

from experiments.records import store
from experiments.reporting.tune_report import SEARCH, TRIAL, build_tune_report
from experiments.spec import validate


def _search(tmp_path):
    spec, _ = validate({**TINY, "initializers": ["he_normal"], "tune": {"objective": "val_accuracy", "max_trials": 3}})
    search_dir = tmp_path / "runs" / "tiny"
    project = "he_normal__binary_crossentropy"
    trials = [("0", "COMPLETED", 0.01, 16, 0.75, ""), ("1", "FAILED", 0.09, 32, math.nan, "diverged: loss nan"),
              ("2", "COMPLETED", 0.001, 32, 0.8125, "")]
    for trial_id, status, lr, bs, objective, reason in trials:
        folder = search_dir / "trials" / project / f"trial_{trial_id}"
        store.write_json(folder / TRIAL, {
            "project": project, "trial_id": trial_id, "cell": "he_normal | binary_crossentropy", "status": status,
            "objective": objective, "best_epoch": 2, "hyperparameters": {"learning_rate": lr, "batch_size": bs},
            "epochs_run": 2, "seconds": 1.5, "started": 0.0, "worker": "tuner0", "reason": reason})
        store.write_rows(folder / "history.csv", [{"epoch": e, "loss": 0.5, "val_accuracy": objective}
                                                  for e in (1, 2)])
    best = [{"project": project, "cell": "he_normal | binary_crossentropy", "trial_id": "2", "objective": 0.8125,
             "initializer": "he_normal", "loss": "binary_crossentropy", "learning_rate": 0.001, "batch_size": 32}]
    store.write_json(search_dir / SEARCH, {"spec": spec.as_dict(), "environment": {"libraries": {}}, "oracle_seed": 1,
                                           "sessions": [{"started": 0.0, "seconds": 9.0, "overwrite": False,
                                                         "role": "standalone", "resumed": {}}], "best": best})
    return search_dir


def test_the_tuner_reports_tables_hold_the_csvs_numbers(tmp_path):
    report = build_tune_report(_search(tmp_path), None, tmp_path / "reports" / "tiny")
    trials = pd.read_csv(report.parent / "trials.csv", dtype=str, keep_default_na=False)
    best = pd.read_csv(report.parent / "best.csv", dtype=str, keep_default_na=False)
    assert list(trials["status"]) == ["COMPLETED", "FAILED", "COMPLETED"]
    for tables in (markdown_tables(report.read_text()), html_tables((report.parent / "tune.html").read_text())):
        by_header = {tuple(header): rows for header, rows in tables}
        best_rows = next(rows for header, rows in by_header.items() if header[:3] == ("project", "cell", "trial_id"))
        assert [dict(zip(best.columns, row, strict=True))["objective"] for row in best_rows] == ["0.8125"]
        every = next((header, rows) for header, rows in by_header.items() if "worker" in header)
        for row, (_, csv_row) in zip(every[1], trials.iterrows(), strict=True):
            cells = dict(zip(every[0], row, strict=True))
            assert cells["status"] == csv_row["status"] and cells["learning_rate"] == csv_row["learning_rate"]
            assert cells["objective"] == (csv_row["objective"] or "-") or float(cells["objective"]) == float(
                csv_row["objective"])
    assert "No cell has a completed trial yet." in report.read_text()  # no tuned comparison without tuned runs
