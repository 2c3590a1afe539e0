"""Claims: the decision rule's arithmetic, the claim table's validation, and a tiny claim run
end to end through the CLI, its verdicts recomputed from the runs table."""

import math
from pathlib import Path

import pandas as pd
import pytest
from rendered import markdown_tables

from experiments import cli
from experiments.claims.evaluate import combine, decide
from experiments.reporting.tables import load_tables
from experiments.spec import load_config, validate
from experiments.stats import interval

CLAIMS = sorted(Path(__file__).resolve().parents[3].joinpath("experiments", "configs", "claims").glob("*.toml"))

CLAIM = """
description = "A tiny claim for the tests."
dataset = { name = "regression", n_samples = 120 }
model = ["linear", { name = "mlp", widths = [8, 8] }]
initializers = ["he_normal", "zeros"]
losses = ["mean_squared_error"]
optimizer = "sgd"
learning_rate = [0.01, 1e12]
epochs = 3
seeds = [0, 1, 2]
diagnostics = { every = 3 }

[claim]
statement = "Tiny statements about regression."
source = "these tests"

[[claim.checks]]
name = "zeros leaves one unit per layer"
metric = "diag_end_distinct_units_hidden_0 + diag_end_distinct_units_hidden_1"
plus = [{ model = { widths = [8, 8] }, initializer = "zeros", learning_rate = 0.01 }]
test = "<"
value = 2.5

[[claim.checks]]
name = "zeros has more than four units (false)"
metric = "diag_end_distinct_units_hidden_0"
plus = [{ model = { widths = [8, 8] }, initializer = "zeros", learning_rate = 0.01 }]
test = ">"
value = 4

[[claim.checks]]
name = "he_normal MLP vs linear, error"
metric = "test_mean_absolute_error"
plus = [{ model = { widths = [8, 8] }, initializer = "he_normal", learning_rate = 0.01 }]
minus = [{ model = "linear", initializer = "he_normal", learning_rate = 0.01 }]
test = "within"
value = 100

[[claim.checks]]
name = "a learning rate of 1e12 diverges"
metric = "diverged"
plus = [{ model = "linear", initializer = "he_normal", learning_rate = 1e12 }]
test = ">"
value = 0.5
"""


@pytest.mark.parametrize("test, value, margin, mean, lower, upper, verdict", [
    (">", 0, 0, 0.5, 0.1, 0.9, "supported"),
    (">", 0, 0, 0.5, -0.1, 1.1, "inconclusive"),
    (">", 0, 0, -0.5, -0.9, -0.1, "not supported"),
    (">", 0, 0, 0.0, 0.0, 0.0, "not supported"),  # exactly no effect
    (">", 0, 1, 0.5, 0.1, 0.9, "not supported"),  # a real effect, but smaller than what matters
    (">", 0, 1, 1.5, 0.1, 2.9, "supported"),
    (">", 0, 1, 0.9, 0.1, 1.7, "inconclusive"),
    ("<", 2.5, 0, 2.0, 2.0, 2.0, "supported"),
    ("<", 2.5, 0, 3.0, 2.6, 3.4, "not supported"),
    ("within", 0.02, 0, 0.001, -0.01, 0.012, "supported"),
    ("within", 0.02, 0, 0.1, 0.05, 0.15, "not supported"),
    ("within", 0.02, 0, 0.01, -0.01, 0.03, "inconclusive"),
    (">", 0, 0, 1.0, math.nan, math.nan, "inconclusive"),  # fewer than 2 seeds
])
def test_decide(test, value, margin, mean, lower, upper, verdict):
    assert decide(test, value, margin, mean, lower, upper) == verdict


def test_interval_is_the_t_interval_and_a_point_when_seeds_agree():
    mean, lower, upper = interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and upper - mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert math.isnan(interval([1.0])[1])


def test_combine():
    assert combine(["supported", "supported"]) == "supported"
    assert combine(["supported", "inconclusive"]) == "inconclusive"
    assert combine(["supported", "not supported", "inconclusive"]) == "not supported"
    assert combine(["not supported", "supported"], "any") == "supported"
    assert combine(["not supported", "inconclusive"], "any") == "inconclusive"
    assert combine(["not supported", "not supported"], "any") == "not supported"


@pytest.mark.parametrize("path", CLAIMS, ids=lambda p: p.stem)
def test_every_claim_config_documents_its_rule_and_resolves_its_cells(path):
    doc = load_config(path)["description"]
    for needed in ("Source:", "Setup:", "Measured", "Decision rule, fixed before the first run", "Run:",
                   "Expected runtime"):
        assert needed in doc, f"{path.name} docstring lacks {needed!r}"
    spec, _ = validate(load_config(path))
    assert len(spec.seeds) >= 3 and spec.claim.checks
    for check in spec.claim.checks:
        assert len({cell for _, cell in check.cells}) == len(check.cells)


def test_twelve_claims_are_shipped():
    assert len(CLAIMS) == 12


@pytest.fixture
def claim_file(tmp_path):
    def write(text=CLAIM):
        path = tmp_path / "tiny_claim.toml"
        path.write_text(text)
        return path
    return write


@pytest.mark.parametrize("change, message", [
    (('test = "<"', 'test = "<="'), "test is '<='; valid: >, <, within"),
    (('initializer = "zeros", learning_rate = 0.01 }]\ntest = "<"', 'initializer = "zeros" }]\ntest = "<"'),
     "matches 2 cells"),
    (('minus = [{ model = "linear"', 'minus = [{ model = "cnn"'), "matches no cell"),
    (('plus = [{ model = { widths = [8, 8] }, initializer = "zeros", learning_rate = 0.01 }]\ntest = "<"',
      'plus = [{ depth = 3 }]\ntest = "<"'), "selector axis 'depth' is unknown; valid: dataset, model"),
    (("seeds = [0, 1, 2]", "seeds = [0, 1]"), "give at least 3 seeds"),
    (('source = "these tests"', 'source = "these tests"\nverdict = "supported"'), "claim has unknown keys"),
    (('value = 2.5', 'value = "2.5"'), "value must be a number"),
])
def test_a_bad_claim_is_one_line_and_exit_2_before_anything_trains(claim_file, tmp_path, capsys, change, message):
    path = claim_file(CLAIM.replace(*change, 1))
    assert cli.main(["claims", str(path), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_a_config_without_a_claim_is_refused(tmp_path, capsys):
    config = Path(__file__).resolve().parents[3] / "experiments" / "configs" / "breast_cancer_losses.toml"
    assert cli.main(["claims", str(config), "--output", str(tmp_path)]) == 2
    assert "has no [claim] table" in capsys.readouterr().err


def test_a_claim_runs_end_to_end_and_its_verdicts_follow_from_the_runs(claim_file, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["claims", str(claim_file()), "--output", str(out), "--quiet"]) == 0
    checks = pd.read_csv(out / "reports" / "claims" / "checks.csv")
    assert list(checks["verdict"]) == ["supported", "not supported", "supported", "supported"]
    assert pd.read_csv(out / "reports" / "claims" / "claims.csv")["verdict"].tolist() == ["not supported"]
    # the contrast recomputed from the runs table, seed by seed
    runs, _ = load_tables(out / "runs" / "tiny_claim")
    mae = runs[runs["learning_rate"] == 0.01].set_index(["model", "initializer", "seed"])["test_mean_absolute_error"]
    effect = (mae.loc["mlp(widths=[8, 8])", "he_normal"] - mae.loc["linear", "he_normal"]).to_numpy()
    row = checks.iloc[2]
    assert row["seeds"] == 3 and row["mean"] == pytest.approx(effect.mean())
    assert row["upper"] - row["mean"] == pytest.approx(4.302653 * effect.std(ddof=1) / math.sqrt(3), rel=1e-5)
    assert set(runs.loc[runs["learning_rate"] == 1e12, "status"]) == {"diverged"}
    assert runs.loc[runs["learning_rate"] == 1e12, "test_mean_absolute_error"].isna().all()
    # the report: summary, a section with the rule and a plot per claim, the experiment's own report
    text = (out / "reports" / "claims" / "claims.md").read_text()
    assert "| tiny_claim" in text and "## 1. Tiny statements about regression." in text
    rule = "diag_end_distinct_units_hidden_0 of [mlp(widths=[8, 8]) | zeros | mean_squared_error | " \
           "learning_rate=0.01] > 4"
    shown = markdown_tables(text)[1]  # the claim's checks, as the page shows them
    assert shown[0][:2] == ["check", "rule"] and [row[1] for row in shown[1]] == checks["rule"].tolist()
    assert checks["rule"].str.startswith(rule).any()
    assert (out / "reports" / "claims" / "tiny_claim.png").stat().st_size > 10_000
    assert (out / "reports" / "claims" / "claims.html").is_file()
    assert (out / "reports" / "tiny_claim" / "report.md").is_file()
    # like any experiment, in TensorBoard: the HParams config at the root, a session per run
    assert list((out / "runs" / "tiny_claim").glob("events.out.tfevents.*"))
    assert len(list((out / "runs" / "tiny_claim").glob("regression/*/seed_*/events.out.tfevents.*"))) == len(runs) == 24
    # a second call resumes: nothing retrains, the verdicts stay
    assert cli.main(["claims", str(claim_file()), "--output", str(out), "--quiet"]) == 0
    assert pd.read_csv(out / "reports" / "claims" / "checks.csv")["verdict"].tolist() == list(checks["verdict"])


def test_an_unknown_metric_column_is_one_line_naming_the_columns_before_anything_trains(claim_file, tmp_path,
                                                                                       capsys):
    path = claim_file(CLAIM.replace('metric = "diverged"', 'metric = "divergd"'))
    assert cli.main(["claims", str(path), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "reads column 'divergd', which these runs will not have; did you mean diverged" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()
