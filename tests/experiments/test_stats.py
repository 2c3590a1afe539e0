"""Paired comparisons on constructed data whose answers are known (`experiments.stats`)."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments import stats


def _seeded(values):
    return dict(enumerate(values))


def test_identical_distributions_are_practically_equivalent_with_enough_seeds():
    rng = np.random.default_rng(1)
    shared = rng.normal(0.95, 0.01, 40)  # what a seed does to both cells
    a, b = shared + rng.normal(0, 0.002, 40), shared + rng.normal(0, 0.002, 40)
    c = stats.compare(_seeded(a), _seeded(b), greater=True, margin=0.01)
    assert c.verdict == "practically equivalent" and -0.01 < c.lower < c.upper < 0.01
    assert c.n == 40 and not math.isnan(c.boot_lower)  # 10 or more pairs: a bootstrap interval too
    # the same cells on 3 seeds: the interval is too wide to say either
    few = stats.compare(_seeded(a[:3]), _seeded(b[:3] + [0.01, -0.01, 0.0]), greater=True, margin=0.001)
    assert few.verdict == "inconclusive" and math.isnan(few.boot_lower)


def test_a_shifted_distribution_is_better_and_in_a_loss_worse():
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 0.01, 10)
    higher, lower = _seeded(0.95 + noise + 0.03), _seeded(0.95 + noise + rng.normal(0, 0.003, 10))
    c = stats.compare(higher, lower, greater=True, margin=0.01)
    assert c.verdict == "better" and c.lower > 0 and c.p < 0.05
    assert c.boot_lower > 0 and c.boot_lower < c.diff < c.boot_upper
    assert stats.compare(lower, higher, greater=True, margin=0.01).verdict == "worse"
    assert stats.compare(higher, lower, greater=False, margin=0.01).verdict == "worse"  # an error: higher is worse


def test_pairing_by_seed_decides_where_an_unpaired_analysis_cannot():
    seed_effect = np.array([0.80, 0.95, 0.70, 0.90, 0.85])  # seeds differ far more than the cells do
    a = seed_effect + 0.01 + np.array([0.001, -0.001, 0.0005, 0.0, -0.0005])
    b = seed_effect
    unpaired = scipy_stats.ttest_ind(a, b).pvalue
    assert unpaired > 0.5  # unpaired: the seeds' spread hides the difference
    c = stats.compare(_seeded(a), _seeded(b), greater=True, margin=0.001)
    assert c.verdict == "better" and c.p < 1e-4


def test_seeds_are_paired_by_seed_not_by_position():
    a = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}
    b = {3: 4.0, 2: 3.0, 1: 2.0, 0: 1.0, 7: 9.0}  # another order and a seed a lacks
    c = stats.compare(a, b, greater=True, margin=0.1)
    assert c.n == 4 and c.diff == 0 and c.verdict == "practically equivalent"


def test_fewer_than_three_seeds_give_no_verdict():
    c = stats.compare({0: 0.9, 1: 0.95}, {0: 0.5, 1: 0.55}, greater=True, margin=0.01)
    assert c.n == 2 and c.verdict == "no verdict"
    assert stats.compare({0: 0.9}, {0: 0.5}, greater=True, margin=0.01).verdict == "no verdict"


def test_holm_corrects_a_family_and_can_undo_a_verdict():
    base = np.linspace(0.8, 0.9, 6)
    pattern = np.array([-1, 1, -1, 1, 0, 0]) * 0.01

    def against_base(shift):  # differences: `shift` plus a fixed pattern (spread 0.0089)
        return stats.compare(_seeded(base + shift + pattern), _seeded(base), greater=True, margin=0.0)

    family = [against_base(shift) for shift in (0.1, 0.0106, 0.002, -0.001, 0.0)]
    assert family[0].p < 1e-4 and 0.02 < family[1].p < 0.04 and family[1].verdict == "better"  # alone
    corrected = stats.holm(family)
    assert [c.p for c in corrected] == [c.p for c in family]
    ranked = np.argsort([c.p for c in family])  # Holm: the k-th smallest p times (5 - k), kept monotone
    assert corrected[ranked[0]].p_holm == pytest.approx(family[ranked[0]].p * 5)
    assert corrected[1].p_holm == pytest.approx(max(family[1].p * 4, corrected[ranked[0]].p_holm))
    assert corrected[0].verdict == "better" and corrected[1].verdict == "inconclusive"  # among five: not any more


def test_holm_adjusted_p_values_are_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    for p in ([0.01], [0.01, 0.01], [0.04, 0.01, 0.03, 0.5], [0.2, 0.3, 0.9, 0.6],
              *(rng.uniform(0, 0.1, size) for size in (2, 5, 12)), rng.choice([0.001, 0.02, 0.3], 9)):
        np.testing.assert_allclose(stats.holm_adjusted(p), multipletests(p, method="holm")[1], rtol=1e-12)


def test_seeds_needed_matches_a_simulation():
    """At the seeds the power calculation asks for, a simulated paired experiment separates the
    cells about 80% of the time, and clearly less often with half as many."""
    effect, sd = 0.01, 0.015
    n = int(stats.seeds_needed(effect, sd))
    assert 10 <= n <= 30
    rng = np.random.default_rng(4)

    def power(seeds, trials=3000):
        d = rng.normal(effect, sd, (trials, seeds))
        t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / np.sqrt(seeds))
        return np.mean(np.abs(t) > scipy_stats.t.ppf(0.975, seeds - 1))

    assert power(n) == pytest.approx(0.8, abs=0.03)
    assert power(n - 1) < 0.8 + 0.03 and power(n // 2) < 0.6
    # an inconclusive comparison says how many seeds would separate the cells
    few = stats.compare(_seeded(rng.normal(effect, sd, 3)), _seeded(np.zeros(3)), greater=True, margin=0.001)
    assert few.seeds_needed >= stats.MIN_PAIRS
    assert stats.seeds_needed(0.0, 0.01) == math.inf
    # larger effects need fewer seeds, also at a corrected level (where scipy's lower tail is NaN)
    level = 0.05 / 17
    needed = [stats.seeds_needed(effect, 1.0, level) for effect in (0.5, 1, 2, 3, 4, 6)]
    assert needed == sorted(needed, reverse=True) and needed[-2] <= 6, needed
    assert stats.power(4, int(needed[-2]), level) >= 0.8 > stats.power(4, int(needed[-2]) - 1, level)


def test_default_margins():
    assert stats.default_margin("test_accuracy", 0.95) == 0.01
    assert stats.default_margin("test_mean_absolute_error", 2.0) == pytest.approx(0.02)
    assert "compare.margin" in stats.margin_text("test_accuracy", configured=True)
