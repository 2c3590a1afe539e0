"""The verdict tables on runs tables built by hand: the best first, pairs by seed, runs that did not
finish left out of their pair, pooling per seed, and a report with no finished run."""

import numpy as np
import pandas as pd
import pytest

from experiments import cli, stats
from experiments.reporting import verdicts


def _runs(values, statuses=None):
    """A runs table: `values` {(initializer, loss): [test_accuracy per seed]}."""
    rows = []
    for (initializer, loss), per_seed in values.items():
        for seed, value in enumerate(per_seed):
            status = (statuses or {}).get((initializer, loss, seed), "ok")
            rows.append({"initializer": initializer, "loss": loss, "seed": seed, "status": status,
                         "cell": f"{initializer} | {loss}", "test_accuracy": value if status == "ok" else np.nan})
    return pd.DataFrame(rows)


def test_every_cell_against_the_best_paired_by_seed():
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 0.02, 5)
    runs = _runs({("a", "x"): 0.90 + seed_effect, ("b", "x"): 0.80 + seed_effect + rng.normal(0, 0.002, 5),
                  ("c", "x"): 0.90 + seed_effect + rng.normal(0, 0.001, 5)})
    (title, by, table), = verdicts.families(runs, "test_accuracy", ["initializer", "loss"])[0]
    assert title == "cells" and table["verdict"].iloc[0] == "best"
    verdict = dict(zip(table["initializer"], table["verdict"], strict=True))
    assert verdict["b"] == "worse" and verdict["c"] == "practically equivalent"
    row = table[table["initializer"] == "b"].iloc[0]
    best = table["initializer"].iloc[0]
    expected = runs[runs["initializer"] == "b"]["test_accuracy"].to_numpy() - \
        runs[runs["initializer"] == best]["test_accuracy"].to_numpy()
    assert row["difference"] == pytest.approx(expected.mean()) and row["n"] == 5
    twin = "c" if best == "a" else "a"  # a and c differ by less than the margin
    assert sorted(table.loc[verdicts.marked(table["verdict"]), "initializer"]) == sorted([best, twin])


def test_runs_that_did_not_finish_leave_their_seed_out_and_pooling_is_per_seed():
    runs = _runs({("a", "x"): [0.9, 0.91, 0.92, 0.93], ("a", "y"): [0.8, 0.81, 0.82, 0.83],
                  ("b", "x"): [0.5, 0.51, 0.52, 0.53], ("b", "y"): [0.5, 0.5, 0.5, 0.5]},
                 statuses={("b", "y", 1): "diverged"})
    found, margin, configured = verdicts.families(runs, "test_accuracy", ["initializer", "loss"])
    assert [title for title, _, _ in found] == ["cells", "initializers, losses pooled", "losses, initializers pooled"]
    assert margin == stats.BOUNDED_MARGIN and not configured
    pooled = found[1][2].set_index("initializer")
    assert pooled.loc["b", "n"] == 3  # seed 1 of b | y diverged: b's pooled seed 1 is left out
    values = verdicts.seed_values(runs, "test_accuracy", ["initializer"])
    assert values[("a",)] == pytest.approx({0: 0.85, 1: 0.86, 2: 0.87, 3: 0.88})
    assert sorted(values[("b",)]) == [0, 2, 3]


def test_a_configured_margin_and_fewer_than_three_seeds():
    runs = _runs({("a", "x"): [0.9, 0.91], ("b", "x"): [0.8, 0.81]})
    found, margin, configured = verdicts.families(runs, "test_accuracy", ["initializer"], {"accuracy": 0.05})
    assert (margin, configured) == (0.05, True)
    assert found[0][2]["verdict"].tolist() == ["best", "no verdict"]


def test_a_report_before_any_run_finished_says_there_is_nothing_to_compare(config_file, tmp_path, capsys):
    path = config_file(name="early", seeds=[0, 1, 2], epochs=1)
    assert cli.main(["run", str(path), "--output", str(tmp_path), "--quiet"]) == 0
    for result in (tmp_path / "runs" / "early").glob("**/result.json"):
        result.unlink()
    assert cli.main(["report", "early", "--output", str(tmp_path)]) == 0
    report = (tmp_path / "reports" / "early" / "report.md").read_text()
    assert "nothing to compare" in report
