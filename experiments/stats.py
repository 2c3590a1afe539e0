"""Paired comparisons over seeds: is a difference between two cells real, or seed noise?

Runs of different cells with the same seed share the data split, the initial weights' seed and
the mini-batch order, so two cells are compared seed by seed, on the seeds both finished:
d_s = a_s - b_s. For one metric:

- the mean difference and its 95% t-interval, and with 10 or more pairs a paired bootstrap
  interval (percentile, resampling seeds: scipy.stats.bootstrap);
- p: the two-sided paired t-test of a mean difference of 0 (scipy.stats.ttest_rel), and in a
  family of comparisons Holm's correction of it (`holm_adjusted`);
- the verdict, in the metric's good direction (`greater`):
      practically equivalent  the t-interval lies inside (-margin, +margin): any difference is
                              smaller than what matters (a region of practical equivalence)
      better / worse          otherwise, when the (corrected) p is below 0.05
      inconclusive            otherwise
      no verdict              fewer than 3 pairs
- seeds needed: the fewest seeds at which the paired t-test at level 0.05 (in a family: 0.05 over
  its size, Holm's first step) detects the observed mean difference at the observed spread with
  80% power (scipy's noncentral t).

`interval` is also the claims' effect interval (`experiments.claims.evaluate`).
"""

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from models.metrics import greater_is_better

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
POWER = 0.8
MIN_PAIRS = 3  # fewer seeds: no verdict
BOOTSTRAP_PAIRS = 10  # a bootstrap interval from this many pairs
BOUNDED_MARGIN = 0.01  # default margin of a score in [0, 1] (accuracy, auc, f1, r2, ...)
RELATIVE_MARGIN = 0.01  # default margin of an error or loss: this share of the reference's mean
VERDICTS = ("better", "worse", "practically equivalent", "inconclusive", "no verdict")


@dataclass(frozen=True)
class Comparison:
    """Cell a against cell b on one metric, paired by seed (differences are a - b)."""

    n: int  # seeds both finished
    mean_a: float
    mean_b: float
    diff: float  # mean of a - b
    lower: float  # 95% t-interval of the mean difference
    upper: float
    boot_lower: float  # paired bootstrap interval (NaN below BOOTSTRAP_PAIRS pairs)
    boot_upper: float
    p: float  # two-sided paired t-test
    p_holm: float  # Holm-corrected within its family (p itself when compared alone)
    margin: float
    greater: bool  # the metric's good direction
    verdict: str  # one of VERDICTS, for a against b
    seeds_needed: float  # to separate them at this effect and spread; inf: no difference observed
    sd: float  # of the per-seed differences

    def as_dict(self):
        return asdict(self)


def interval(values):
    """(mean, lower, upper) of the 95% t-interval of the mean; a point when the values agree."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(np.mean(values)) if len(values) else math.nan
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def default_margin(metric, reference):
    """The margin of practical equivalence when a config sets none: 0.01 for a score in [0, 1]
    (greater is better), else 1% of |reference| (the best cell's mean of an error or a loss)."""
    if greater_is_better(metric):
        return BOUNDED_MARGIN
    return RELATIVE_MARGIN * abs(reference) if np.isfinite(reference) else 0.0


def margin_text(metric, configured):
    """Where a margin came from, as the report states it."""
    if configured:
        return "set by compare.margin"
    if greater_is_better(metric):
        return "the default for a score in [0, 1]; compare.margin sets another"
    return f"the default, {RELATIVE_MARGIN:.0%} of the best cell's mean; compare.margin sets another"


def power(effect, n, alpha=ALPHA):
    """The two-sided paired t-test's power at standardized effect |diff| / sd with `n` pairs: the
    noncentral t's upper tail beyond the critical value plus its lower tail (scipy; the lower tail,
    at most alpha / 2, comes back NaN for large effects, where it is 0 to double precision, which
    is why statsmodels' TTestPower, which adds it as is, is not used)."""
    from scipy import stats

    df, shift = n - 1, abs(effect) * math.sqrt(n)
    critical = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(critical, df, shift) + np.nan_to_num(stats.nct.cdf(-critical, df, shift)))


def seeds_needed(diff, sd, alpha=ALPHA, most=1_000_000):
    """Seeds for 80% power of the paired t-test at level `alpha` at effect `diff` and spread `sd` of
    the differences: at least MIN_PAIRS; inf when no difference was observed or more than `most`
    would be needed. Power grows with the seeds: doubling, then bisection."""
    if not np.isfinite(diff) or diff == 0:
        return math.inf
    if not sd > 0:  # every seed differs by the same amount
        return float(MIN_PAIRS)

    def enough(n):
        return power(diff / sd, n, alpha) >= POWER

    low, high = MIN_PAIRS - 1, MIN_PAIRS  # not enough at low (no test), maybe enough at high
    while not enough(high):
        if high > most:
            return math.inf
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return float(high)


def verdict(comparison, p):
    """The verdict of `comparison` at p-value `p` (see the module docstring)."""
    c = comparison
    if c.n < MIN_PAIRS:
        return "no verdict"
    if c.margin > 0 and -c.margin < c.lower and c.upper < c.margin:
        return "practically equivalent"
    if p < ALPHA:
        return "better" if (c.diff > 0) == c.greater else "worse"
    return "inconclusive"


def compare(a, b, greater, margin):
    """Cell `a` against cell `b`: each a `{seed: value}` mapping (or a Series by seed); seeds
    missing or not finite in either are left out."""
    import warnings

    from scipy import stats

    seeds = [s for s in a.keys() if s in b.keys() and np.isfinite(a[s]) and np.isfinite(b[s])]
    x, y = np.array([a[s] for s in seeds], dtype=float), np.array([b[s] for s in seeds], dtype=float)
    d = x - y
    n = len(d)
    diff, lower, upper = interval(d)
    boot = (math.nan, math.nan)
    if n >= BOOTSTRAP_PAIRS and np.ptp(d) > 0:
        result = stats.bootstrap((d,), np.mean, confidence_level=CONFIDENCE, n_resamples=9999, method="percentile",
                                 rng=np.random.default_rng(0))
        boot = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    elif n >= BOOTSTRAP_PAIRS:
        boot = (diff, diff)
    if n < 2:
        p = math.nan
    elif np.ptp(d) == 0:  # no spread: the t-test is undefined, the difference is exact
        p = 1.0 if diff == 0 else 0.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(stats.ttest_rel(x, y).pvalue)
    sd = float(np.std(d, ddof=1)) if n > 1 else math.nan
    comparison = Comparison(
        n=n, mean_a=float(np.mean(x)) if n else math.nan, mean_b=float(np.mean(y)) if n else math.nan,
        diff=diff, lower=lower, upper=upper, boot_lower=boot[0], boot_upper=boot[1], p=p, p_holm=p,
        margin=float(margin), greater=bool(greater), verdict="", seeds_needed=seeds_needed(diff, sd) if n > 1
        else math.inf, sd=sd)
    return _with_p(comparison, p)


def _with_p(comparison, p_holm):
    corrected = replace(comparison, p_holm=p_holm)
    return replace(corrected, verdict=verdict(corrected, p_holm if np.isfinite(p_holm) else 1.0))


def holm_adjusted(p):
    """Holm's step-down adjusted p-values: the k-th smallest p times (m - k) for k = 0.., kept
    from decreasing, at most 1. The values statsmodels' `multipletests(p, method="holm")` returns
    (tested so), without the `gc.collect()` it runs on every call: 42 ms a call with only scipy
    loaded, more beside TensorFlow (1.9 s of the shipped `make tune`, profiled)."""
    p = np.asarray(p, dtype="float64")
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1)), 1.0)
    return adjusted


def holm(comparisons):
    """The comparisons of one family with Holm-corrected p-values and the verdicts they give; seeds
    needed at the level Holm asks of the family's first comparison (0.05 / its size), so that
    that many seeds separate a pair whatever the others show."""
    tested = [i for i, c in enumerate(comparisons) if np.isfinite(c.p)]
    corrected = dict(zip(tested, holm_adjusted([comparisons[i].p for i in tested]), strict=True))
    level = ALPHA / max(len(tested), 1)
    return [replace(_with_p(c, float(corrected.get(i, math.nan))),
                    seeds_needed=seeds_needed(c.diff, c.sd, level) if c.n > 1 else math.inf)
            for i, c in enumerate(comparisons)]
