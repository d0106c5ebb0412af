"""Judge published claims "group A scores above group B" against the seed noise of our runs.

Every claim is a two-sided Welch's t-test (unequal variances, Welch-Satterthwaite degrees of freedom) on the
per-seed values of its two groups, and the p-values of all the claims judged together (a results page:
one *family*) are corrected with Holm's step-down method at a family-wise error rate of ALPHA:

- *supported*: Holm-adjusted p < ALPHA and mean(A) > mean(B); *contradicted*: adjusted p < ALPHA and
  mean(A) < mean(B); *cannot decide* otherwise.
- A claim with fewer than 2 values in a group, or no spread at all in both groups (each group's seeds gave
  one number: no noise estimate, t = d/0), has no test: it cannot be decided and is left out of the
  family, so it does not dilute the others. One constant group beside a varying one is tested as usual
  (the standard error is the varying group's alone, df = its n - 1).
- The same values compared twice are one test, counted once (`judge_family`).
- Holm with ties: tied raw p-values get the same adjusted p, whatever their order (the step-down maximum
  carries the first one's larger multiplier to the rest), as in statsmodels' `multipletests(method="holm")`.
- *Seeds needed*: the seeds per group at which a two-sided Welch test at level ALPHA/m (m: the family's
  size; Bonferroni's level, below which Holm decides a claim whatever the other claims' p) would have
  POWER (80%) power, if the true difference and the two groups' standard deviations were the ones measured
  (`welch_power`: exact for normal groups, up to quadrature); more than MAX_SEEDS is reported as None (">1000").

SciPy is imported inside the functions: the CLI imports this module, and `scipy.stats` costs a fraction of
a second.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ALPHA = 0.05  # family-wise error rate
CONFIDENCE = 0.95  # of each difference's interval (per claim, not corrected)
POWER = 0.8  # of "seeds needed"
MAX_SEEDS = 1000
NODES = 48  # per sample variance, in welch_power's quadrature (96 changes its powers by < 1e-4)
SUPPORTS, CONTRADICTS, UNDECIDED = "supports", "contradicts", "cannot decide"
VERDICTS = (SUPPORTS, CONTRADICTS, UNDECIDED)
TOO_FEW, NO_SPREAD = "fewer than 2 runs in a group", "no spread over seeds in both groups"

RULE = (
    "Each claim \"A > B\" is tested with **Welch's t-test** (two-sided, unequal variances, Welch-Satterthwaite degrees of "
    "freedom) on the per-seed values of its two groups' completed runs, and the p-values of **all the tests on this page**, "
    "at equal epochs and at equal FLOPs, are corrected together as **one family with Holm's step-down method** at a "
    f"family-wise error rate of {ALPHA:g}. A claim is **supported** when its adjusted p < {ALPHA:g} and mean(A) > mean(B), "
    f"**contradicted** when its adjusted p < {ALPHA:g} and mean(A) < mean(B); otherwise these runs **cannot decide** it. "
    f"A claim with {TOO_FEW}, or with {NO_SPREAD} (no noise estimate), has no test: it cannot be decided and is not "
    "counted in the family; a comparison of exactly the values of another (at equal FLOPs, two groups that cost the same "
    "per epoch meet at both final epochs) is the same test and counted once. One family for the whole page because a "
    "reader takes in all its verdicts at once (the first table shows them side by side); the two tests of one claim are "
    "strongly dependent (often on the same runs), which Holm's method allows, at some cost in power."
)
COLUMNS = (
    f"Columns: the **difference** mean(A) - mean(B) with its **{CONFIDENCE:.0%} confidence interval** (the t quantile at "
    "the Welch df; per claim, not corrected for the family, so it can exclude 0 while the corrected test cannot decide); "
    "the **raw p** of the claim's own test and its **Holm-adjusted p**; and **seeds needed**: how many seeds per group a "
    f"two-sided Welch test at level {ALPHA:g}/m would need for {POWER:.0%} power (m: the tests in the family; "
    "Bonferroni's level, below which Holm decides a claim whatever the others' p), if the true difference and the "
    "groups' standard deviations were the ones measured here (normal seed noise; the power is exact, not the noncentral-t "
    f"shortcut; \">{MAX_SEEDS}\": more than that, e.g. a difference near 0)."
)


@dataclass(frozen=True)
class Welch:
    """Welch's t-test of mean(higher) - mean(lower)."""

    difference: float
    se: float  # sqrt(s_h^2/n_h + s_l^2/n_l), sample variances (n - 1)
    df: float  # Welch-Satterthwaite
    t: float
    p: float  # two-sided, not corrected
    low: float  # the CONFIDENCE interval of the difference
    high: float
    var_higher: float
    var_lower: float


@dataclass(frozen=True)
class Judgement:
    verdict: str
    difference: float | None  # mean(higher) - mean(lower); None without values on a side
    test: Welch | None = None  # None: no test (`untested` says why)
    adjusted_p: float | None = None  # Holm, over the family
    seeds_needed: int | None = None  # per group, for POWER at level alpha/m; None with a test: more than MAX_SEEDS
    untested: str = ""  # why there is no test
    repeats: int | None = None  # the index of an earlier comparison of the same values, whose test this one is


def untestable(higher: Sequence[float], lower: Sequence[float]) -> str:
    """Why Welch's test cannot be made on these values ("" when it can)."""
    if len(higher) < 2 or len(lower) < 2:
        return TOO_FEW
    if statistics.variance(higher) == 0 and statistics.variance(lower) == 0:  # exact for floats: all values equal
        return NO_SPREAD
    return ""


def welch(higher: Sequence[float], lower: Sequence[float], confidence: float = CONFIDENCE) -> Welch:
    """Welch's t-test, by `scipy.stats.ttest_ind(equal_var=False)`; ValueError where `untestable` says why."""
    import warnings

    import numpy as np
    from scipy import stats

    why = untestable(higher, lower)
    if why:
        raise ValueError(f"no Welch test: {why}")
    var_h, var_l = statistics.variance(higher), statistics.variance(lower)
    with warnings.catch_warnings():  # a constant group: scipy warns of "catastrophic cancellation" in its zero variance
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(np.asarray(higher, float), np.asarray(lower, float), equal_var=False)
    interval = result.confidence_interval(confidence)
    return Welch(difference=statistics.fmean(higher) - statistics.fmean(lower), se=math.sqrt(var_h / len(higher) + var_l / len(lower)),
                 df=float(result.df), t=float(result.statistic), p=float(result.pvalue), low=float(interval.low),
                 high=float(interval.high), var_higher=var_h, var_lower=var_l)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order.

    Sorted ascending, p_(1) <= ... <= p_(m): adjusted_(i) = min(1, max over j <= i of (m - j + 1) p_(j)). The
    running maximum keeps them monotone (a larger raw p never gets a smaller adjusted one), and gives tied raw
    p-values the same adjusted p whatever the order among them."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def welch_power(difference: float, var_higher: float, var_lower: float, n: int, alpha: float) -> float:
    """The power of a two-sided Welch test at level `alpha` with n runs per group, for normal groups whose means
    differ by `difference` and whose variances are these.

    Exact up to quadrature, not the usual noncentral-t approximation (which fixes the df at its value for the true
    variances and overstates the power at 2-6 runs a group by up to 0.05, doubling it at 2; tests/test_verdict.py
    checks both claims by Monte Carlo): given the two sample variances (independent, s^2 ~ var chi2(n-1)/(n-1)),
    the difference of the means is normal, N(difference, (var_h + var_l)/n), and independent of them, so the test
    rejects with probability Phi((|d| - c S)/sd) + Phi((-|d| - c S)/sd), where S is the sample's standard error and c
    the t quantile at the sample's Welch-Satterthwaite df. That is averaged over both chi-square laws by
    Gauss-Legendre quadrature on their probability scale (NODES x NODES points; a constant group is one point)."""
    import numpy as np
    from scipy import stats

    u, w = _nodes()

    def sample_variances(var: float) -> tuple[np.ndarray, np.ndarray]:
        return (np.zeros(1), np.ones(1)) if var == 0 else (var * stats.chi2.ppf(u, n - 1) / (n - 1), w)

    (s_h, w_h), (s_l, w_l) = sample_variances(var_higher), sample_variances(var_lower)
    a, b = s_h[:, None] / n, s_l[None, :] / n
    se = np.sqrt(a + b)
    critical = stats.t.ppf(1 - alpha / 2, (a + b) ** 2 / (a**2 / (n - 1) + b**2 / (n - 1)))
    sd = math.sqrt((var_higher + var_lower) / n)
    d = abs(difference)
    rejects = stats.norm.cdf((d - critical * se) / sd) + stats.norm.cdf((-d - critical * se) / sd)
    return float(np.sum(w_h[:, None] * w_l[None, :] * rejects))


@functools.cache
def _nodes() -> tuple[Any, Any]:
    """Gauss-Legendre nodes and weights on (0, 1)."""
    import numpy as np

    x, w = np.polynomial.legendre.leggauss(NODES)
    return (x + 1) / 2, w / 2


def seeds_needed(difference: float, var_higher: float, var_lower: float, alpha: float, power: float = POWER,
                 most: int = MAX_SEEDS) -> int | None:
    """The fewest runs per group (>= 2) at which `welch_power` reaches `power`; None if more than `most`.

    Power grows with n (the mean difference's sd shrinks as 1/sqrt(n), the df grow), so doubling from 2 and then
    bisecting finds it in about 2 log2(n) evaluations."""
    if var_higher + var_lower <= 0:
        raise ValueError("seeds needed: no spread in either group")
    reaches = lambda n: welch_power(difference, var_higher, var_lower, n, alpha) >= power  # noqa: E731
    low, high = 1, 2  # not reached at `low` (1 stands for "not yet": a test needs 2)
    while not reaches(high):
        if high >= most:
            return None
        low, high = high, min(2 * high, most)
    while high - low > 1:
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle
    return high


@dataclass(frozen=True)
class Family:
    """The judgements of claims tested together, in their order, and the family's size m (the distinct tests made)."""

    judgements: list[Judgement]
    size: int
    alpha: float = ALPHA

    @property
    def seeds_alpha(self) -> float:
        """The level "seeds needed" assumes: alpha / m."""
        return self.alpha / max(1, self.size)


def judge_family(comparisons: Sequence[tuple[Sequence[float], Sequence[float]]], alpha: float = ALPHA) -> Family:
    """The verdict on each "higher > lower" of `comparisons` (each group's per-seed values), Holm-corrected
    together over the ones that can be tested.

    A comparison of the same values as an earlier one (as multisets; e.g. a claim at equal FLOPs between two groups
    that cost the same per epoch, whose budget is both groups' final epoch) is the same test on the same data: it
    gets the earlier one's judgement and is counted once in the family."""
    first: dict[tuple[tuple[float, ...], tuple[float, ...]], int] = {}
    repeats = [first.setdefault((tuple(sorted(higher)), tuple(sorted(lower))), i) for i, (higher, lower) in enumerate(comparisons)]
    tests = [None if repeats[i] != i or untestable(higher, lower) else welch(higher, lower)
             for i, (higher, lower) in enumerate(comparisons)]
    made = [test for test in tests if test is not None]
    adjusted = iter(holm([test.p for test in made]))
    family_alpha = alpha / max(1, len(made))
    judgements: list[Judgement] = []
    for i, ((higher, lower), test) in enumerate(zip(comparisons, tests)):
        if repeats[i] != i:
            judgements.append(dataclasses.replace(judgements[repeats[i]], repeats=repeats[i]))
        elif test is None:
            difference = statistics.fmean(higher) - statistics.fmean(lower) if higher and lower else None
            judgements.append(Judgement(UNDECIDED, difference, untested=untestable(higher, lower)))
        else:
            p = next(adjusted)
            verdict = UNDECIDED if not p < alpha or test.difference == 0 else SUPPORTS if test.difference > 0 else CONTRADICTS
            needed = seeds_needed(test.difference, test.var_higher, test.var_lower, family_alpha)
            judgements.append(Judgement(verdict, test.difference, test, p, needed))
    return Family(judgements, len(made), alpha)


def judge(higher: Sequence[float], lower: Sequence[float]) -> Judgement:
    """One claim judged alone (a family of one: no correction)."""
    return judge_family([(higher, lower)]).judgements[0]
