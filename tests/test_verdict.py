"""The statistics of the results pages (dilbench/sweep/verdict.py): Welch's t-test, Holm's correction,
the verdicts and "seeds needed". Checked against scipy, against cases worked by hand (the arithmetic is
in the comments, with the t distribution's closed forms for 1, 2 and 4 degrees of freedom), and against
the issue's recomputation of the compute page. No TensorFlow, no runs: about a second."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from scipy import stats

from dilbench.sweep.report import p_value
from dilbench.sweep.verdict import (
    CONTRADICTS,
    MAX_SEEDS,
    NO_SPREAD,
    SUPPORTS,
    TOO_FEW,
    UNDECIDED,
    holm,
    judge,
    judge_family,
    seeds_needed,
    untestable,
    welch,
    welch_power,
)


# ---- Welch's t-test -------------------------------------------------------------------------------------
def test_welch_matches_scipy_and_the_textbook_formulas_on_random_groups():
    rng = random.Random(13)
    for _ in range(100):
        a = [rng.gauss(0.3, rng.uniform(0.001, 0.05)) for _ in range(rng.randint(2, 8))]
        b = [rng.gauss(0.3 + rng.uniform(-0.05, 0.05), rng.uniform(0.001, 0.05)) for _ in range(rng.randint(2, 8))]
        test = welch(a, b)
        va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
        d = np.mean(a) - np.mean(b)
        reference = stats.ttest_ind(a, b, equal_var=False)
        assert test.difference == pytest.approx(d, abs=1e-12)
        assert test.se == pytest.approx(se, rel=1e-9)
        assert test.df == pytest.approx(df, rel=1e-9) == pytest.approx(reference.df, rel=1e-9)
        assert test.t == pytest.approx(d / se, rel=1e-9) == pytest.approx(reference.statistic, rel=1e-9)
        assert test.p == pytest.approx(2 * stats.t.sf(abs(d) / se, df), rel=1e-7) == pytest.approx(reference.pvalue, rel=1e-9)
        half = stats.t.ppf(0.975, df) * se
        assert (test.low, test.high) == (pytest.approx(d - half, abs=1e-12), pytest.approx(d + half, abs=1e-12))


def test_welch_by_hand_equal_variances_is_the_pooled_test_at_4_df():
    # A = 3, 4, 5 and B = 1, 2, 3: d = 2, s^2 = 1 in both, SE = sqrt(1/3 + 1/3) = sqrt(2/3), t = 2 / sqrt(2/3) = sqrt(6);
    # df = (2/3)^2 / ((1/3)^2/2 + (1/3)^2/2) = (4/9) / (1/9) = 4.
    # t with 4 df: F(t) = 1/2 + (3/8) x (1 - x^2/12) with x = t / sqrt(1 + t^2/4): x^2 = 6/2.5 = 2.4, so
    # F = 1/2 + (3/8) sqrt(2.4) 0.8 = 0.96476, p = 2 (1 - F) = 0.07048.
    test = welch([3, 4, 5], [1, 2, 3])
    x = math.sqrt(6) / math.sqrt(1 + 6 / 4)
    assert (test.difference, test.se, test.t, test.df) == (2, pytest.approx(math.sqrt(2 / 3)), pytest.approx(math.sqrt(6)),
                                                           pytest.approx(4))
    assert test.p == pytest.approx(2 * (1 - (0.5 + 3 / 8 * x * (1 - x * x / 12))), rel=1e-9) == pytest.approx(0.070484, abs=1e-6)
    # 95%: t(0.975, 4) = 2.776445, so 2 +- 2.776445 sqrt(2/3) = 2 +- 2.266958
    assert (test.low, test.high) == (pytest.approx(-0.266958, abs=1e-6), pytest.approx(4.266958, abs=1e-6))


def test_welch_by_hand_one_constant_group_has_the_other_groups_df():
    # A = 3, 4, 5 (s^2 = 1), B = 1, 1, 1 (s^2 = 0): SE = sqrt(1/3), t = 3 / sqrt(1/3) = 3 sqrt(3) = 5.19615, df = (1/3)^2 /
    # ((1/3)^2 / 2) = 2. With 2 df the two-sided p is 1 - t / sqrt(2 + t^2) = 1 - 5.19615 / sqrt(29) = 0.035099, and the
    # quantile t(q) = (2q - 1) / sqrt(2 q (1 - q)): t(0.975) = 0.95 / sqrt(0.04875) = 4.302653, CI 3 +- 4.302653 x 0.57735.
    test = welch([3, 4, 5], [1, 1, 1])
    t = 3 * math.sqrt(3)
    assert (test.t, test.df) == (pytest.approx(t), pytest.approx(2))
    assert test.p == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-9) == pytest.approx(0.035099, abs=1e-6)
    half = 0.95 / math.sqrt(2 * 0.975 * 0.025) * math.sqrt(1 / 3)
    assert (test.low, test.high) == (pytest.approx(3 - half), pytest.approx(3 + half)) == (pytest.approx(0.515862, abs=1e-6),
                                                                                           pytest.approx(5.484138, abs=1e-6))


def test_welch_by_hand_two_runs_give_1_df_the_cauchy():
    # A = 0, 2 (s^2 = 2, s^2/n = 1), B = 5, 5, 5: d = -4, SE = 1, t = -4, df = 1^2 / (1^2 / 1) = 1: Cauchy, p = 1 - (2/pi) atan(4)
    # = 0.155958; t(0.975, 1) = tan(0.475 pi) = 12.7062, CI -4 +- 12.7062.
    test = welch([0, 2], [5, 5, 5])
    assert (test.difference, test.se, test.t, test.df) == (-4, 1, pytest.approx(-4), pytest.approx(1))
    assert test.p == pytest.approx(1 - 2 / math.pi * math.atan(4), rel=1e-9) == pytest.approx(0.155958, abs=1e-6)
    assert (test.low, test.high) == (pytest.approx(-4 - math.tan(0.475 * math.pi)), pytest.approx(-4 + math.tan(0.475 * math.pi)))


def test_what_cannot_be_tested():
    assert untestable([0.5], [0.4, 0.5]) == untestable([], []) == TOO_FEW
    assert untestable([0.6, 0.6, 0.6], [0.5, 0.5]) == untestable([0.5, 0.5], [0.5, 0.5]) == NO_SPREAD
    assert untestable([0.6, 0.6, 0.6], [0.5, 0.51]) == ""  # one constant group is tested (above)
    with pytest.raises(ValueError, match="no spread"):
        welch([0.2, 0.2], [0.3, 0.3])


# ---- Holm -----------------------------------------------------------------------------------------------
def test_holm_by_hand_with_the_monotonicity_fix_up():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06 (never below an earlier one)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm([0.03]) == [0.03] and holm([]) == []


def test_holm_ties_get_one_adjusted_p_in_any_order():
    # m = 4: 0.01 x 4 = 0.04; then the tie: 0.02 x 3 = 0.06 for the first, 0.02 x 2 = 0.04 raised to 0.06 for the second;
    # 0.2 x 1 = 0.2
    for order in itertools.permutations(range(4)):
        pvalues = [[0.02, 0.02, 0.01, 0.2][i] for i in order]
        expected = [[0.06, 0.06, 0.04, 0.2][i] for i in order]
        assert holm(pvalues) == pytest.approx(expected)
    assert holm([0.01] * 5) == pytest.approx([0.05] * 5)  # all tied: m p, and so all rejected or none
    assert holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])


def test_holm_adjusted_p_rejects_what_the_step_down_procedure_rejects():
    rng = random.Random(5)
    for _ in range(300):
        pvalues = [round(rng.random() ** 3, 3) for _ in range(rng.randint(1, 12))]  # rounded: plenty of ties
        rejected, m = set(), len(pvalues)
        for k, i in enumerate(sorted(range(m), key=lambda i: pvalues[i])):  # Holm 1979: step down until one fails
            if not pvalues[i] < 0.05 / (m - k):
                break
            rejected.add(i)
        adjusted = holm(pvalues)
        assert {i for i, p in enumerate(adjusted) if p < 0.05} == rejected
        assert all(a >= p for a, p in zip(adjusted, pvalues))
        for i, j in itertools.combinations(range(m), 2):  # monotone, ties equal
            if pvalues[i] <= pvalues[j]:
                assert adjusted[i] <= adjusted[j]


# ---- verdicts -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("higher, lower, verdict", [
    ([0.60, 0.61, 0.62], [0.50, 0.51, 0.52], SUPPORTS),  # d = 0.1, SE = 0.0082, t = 12.2 at 4 df: p = 0.00026
    ([0.50, 0.51, 0.52], [0.60, 0.61, 0.62], CONTRADICTS),
    ([0.50, 0.60, 0.55], [0.52, 0.50, 0.54], UNDECIDED),  # d = 0.03, SE = 0.031
    ([0.9, 0.9], [0.5], UNDECIDED),  # one run: no noise estimate
    ([0.6, 0.6], [0.5, 0.5], UNDECIDED),  # no spread at all: no noise estimate either (the old rule said "supports")
])
def test_judge_alone(higher, lower, verdict):
    assert judge(higher, lower).verdict == verdict


def test_a_family_corrects_its_tests_together_and_leaves_out_what_has_no_test():
    clear = ([0.60, 0.61, 0.62], [0.50, 0.51, 0.52])  # p = 0.00026 alone
    borderline = ([0.60, 0.62, 0.64], [0.55, 0.57, 0.59])  # d = 0.05, SE = 0.0163, t = 3.06 at 4 df: p = 0.0376
    family = judge_family([clear, borderline, ([0.7], [0.5, 0.6]), ([0.5, 0.5], [0.5, 0.5])])
    assert family.size == 2 and family.seeds_alpha == 0.025
    one, two, few, flat = family.judgements
    assert one.verdict == SUPPORTS and one.adjusted_p == pytest.approx(2 * one.test.p)
    assert two.test.p == pytest.approx(0.0376, abs=1e-4) and two.adjusted_p == pytest.approx(0.0376, abs=1e-4)
    assert two.verdict == SUPPORTS  # second in Holm's order: compared with 0.05/1
    assert (few.verdict, few.test, few.adjusted_p, few.untested, few.difference) == (UNDECIDED, None, None, TOO_FEW, pytest.approx(0.15))
    assert (flat.verdict, flat.untested, flat.difference) == (UNDECIDED, NO_SPREAD, 0)
    # seeds needed at 0.05/2 for the borderline one: its power at 3 seeds is below 80% (it was decided anyway)
    assert two.seeds_needed == seeds_needed(0.05, 0.0004, 0.0004, 0.025) and two.seeds_needed > 3
    assert judge_family([]).size == 0 and judge_family([]).judgements == []


def test_the_same_values_compared_twice_are_one_test():
    same = ([0.60, 0.61, 0.62], [0.50, 0.51, 0.52])
    other = ([0.60, 0.62, 0.64], [0.55, 0.57, 0.59])
    family = judge_family([same, other, (same[0][::-1], same[1]), ([0.5], [0.4]), ([0.5], [0.4])])
    assert family.size == 2 and family.seeds_alpha == 0.025  # not 3 tests
    first, _, again, few, few_again = family.judgements
    assert (again.repeats, first.repeats) == (0, None)
    assert (again.verdict, again.test, again.adjusted_p, again.seeds_needed) == (first.verdict, first.test, first.adjusted_p,
                                                                                 first.seeds_needed)
    assert first.adjusted_p == pytest.approx(2 * first.test.p)
    assert few_again.test is None and few_again.untested == few.untested == TOO_FEW
    swapped = judge_family([same, same[::-1]])  # "a > b" and "b > a" are not the same values: two tests
    assert swapped.size == 2 and [j.verdict for j in swapped.judgements] == [SUPPORTS, CONTRADICTS]


def test_the_issues_recomputation_of_the_compute_page():
    """Issue 22: from the compute page's per-seed values (its mean and [min, max] over 3 seeds of final_eval_acc, on
    1,000 test images so multiples of 0.001: the third seed is 3 x mean - min - max), none of its four "supports" at
    equal epochs survives Welch + Holm over the ten testable claims; c > a has raw p 0.019, adjusted 0.19."""
    page = {  # group: (mean, min, max), from dilbench/experiments/unfair_backprop/results/compute/RESULTS.md at e6301d4
        "a": (0.2057, 0.1820, 0.2180), "b": (0.2257, 0.2180, 0.2300), "c": (0.2653, 0.2530, 0.2780),
        "d": (0.2633, 0.2330, 0.2820), "e": (0.2850, 0.2410, 0.3150), "a_lr3x": (0.2500, 0.2480, 0.2540),
        "a_adampub": (0.2490, 0.2380, 0.2560), "a_glr": (0.2377, 0.2130, 0.2620), "a_fo": (0.2207, 0.2110, 0.2270),
    }
    seeds = {group: [low, round(3 * mean - low - high, 3), high] for group, (mean, low, high) in page.items()}
    assert seeds["c"] == [0.253, 0.265, 0.278] and seeds["a"] == [0.182, 0.217, 0.218]
    for group, (mean, _, _) in page.items():
        assert np.mean(seeds[group]) == pytest.approx(mean, abs=5e-5)
    claims = [("c", "a"), ("e", "a"), ("c", "e"), ("d", "b"), ("b", "a"), ("c", "d"), ("c", "a_lr3x"), ("c", "a_adampub"),
              ("c", "a_glr"), ("a_fo", "a")]  # the twelve without b > f and e > f (case f has no runs)
    family = judge_family([(seeds[h], seeds[lo]) for h, lo in claims])
    assert family.size == 10
    by_claim = dict(zip(claims, family.judgements))
    c_a, e_a = by_claim["c", "a"], by_claim["e", "a"]
    assert c_a.difference == pytest.approx(0.0597, abs=1e-4)
    assert (p_value(c_a.test.p), p_value(c_a.adjusted_p)) == ("0.019", "0.19")
    assert c_a.adjusted_p == pytest.approx(10 * c_a.test.p)  # the smallest p: Holm's first step is Bonferroni's
    assert p_value(e_a.test.p) == "0.052"
    for supported in [("c", "a"), ("e", "a"), ("d", "b"), ("c", "a_lr3x")]:  # the old rule's four "supports"
        assert by_claim[supported].verdict == UNDECIDED and by_claim[supported].adjusted_p > 0.05
    assert {j.verdict for j in family.judgements} == {UNDECIDED}
    assert c_a.test.low > 0  # its own 95% interval excludes 0: uncorrected, as the page says
    # what would decide it: at 0.05/10 with the measured spreads, 80% power takes 5 seeds a group
    assert c_a.seeds_needed == 5


# ---- seeds needed ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("effect, n", [(0.5, 64), (0.8, 26), (1.0, 17)])
def test_seeds_needed_matches_cohens_table(effect, n):
    """Cohen's (1988) sample sizes for a two-sided two-sample t-test at 0.05 and 80% power, d = 0.5 -> 64, 0.8 -> 26,
    1.0 -> 17 per group, are the pooled test's; with equal variances Welch's test is nearly as powerful and needs the same."""
    assert seeds_needed(effect, 1.0, 1.0, 0.05) == n
    assert welch_power(effect, 1.0, 1.0, n - 1, 0.05) < 0.8 <= welch_power(effect, 1.0, 1.0, n, 0.05)


def nct_power(difference: float, var_h: float, var_l: float, n: int, alpha: float) -> float:
    """The usual approximation: noncentral t at the df the true variances would give."""
    df = (n - 1) * (var_h + var_l) ** 2 / (var_h**2 + var_l**2)
    nc, critical = abs(difference) / math.sqrt((var_h + var_l) / n), stats.t.ppf(1 - alpha / 2, df)
    return stats.nct.sf(critical, df, nc) + stats.nct.cdf(-critical, df, nc)


@pytest.mark.parametrize("difference, var_h, var_l, alpha", [
    (0.06, 0.0125**2, 0.0205**2, 0.005),  # the compute page's c > a, at 0.05/10
    (1.0, 1.0, 1.0, 0.05),
    (0.05, 1e-6, 4e-4, 0.0025),  # one group almost constant
])
def test_welch_power_agrees_with_monte_carlo_where_the_noncentral_t_does_not(difference, var_h, var_l, alpha):
    rng = np.random.default_rng(3)
    for n in (2, 3, 5, 8):  # 40,000 normal samples of n a group, Welch's test by scipy: Monte Carlo error <= 0.0025
        a = rng.normal(difference, math.sqrt(var_h), size=(40_000, n))
        b = rng.normal(0.0, math.sqrt(var_l), size=(40_000, n))
        with np.errstate(all="ignore"):
            simulated = np.mean(stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < alpha)
        assert welch_power(difference, var_h, var_l, n, alpha) == pytest.approx(simulated, abs=0.01)
    # the noncentral-t shortcut overstates it at 3 runs a group (0.256 against 0.21 for the first case)
    if var_h > 1e-4:
        assert nct_power(difference, var_h, var_l, 3, alpha) - welch_power(difference, var_h, var_l, 3, alpha) > 0.02


def test_seeds_needed_is_the_first_n_with_the_power():
    difference, var_h, var_l, alpha = 0.06, 0.0125**2, 0.0205**2, 0.005
    needed = seeds_needed(difference, var_h, var_l, alpha)
    brute = next(n for n in range(2, MAX_SEEDS) if welch_power(difference, var_h, var_l, n, alpha) >= 0.8)
    assert needed == brute == 5  # 0.807 at 5 (Monte Carlo: 0.806), 0.55 at 4
    for difference in (0.01, 0.02, 0.1):
        assert seeds_needed(difference, 0.01**2, 0.02**2, 0.0025) == next(
            n for n in range(2, MAX_SEEDS) if welch_power(difference, 0.01**2, 0.02**2, n, 0.0025) >= 0.8)


def test_seeds_needed_edge_cases():
    assert seeds_needed(0.0, 1e-4, 1e-4, 0.05) is None  # no difference: power stays at alpha
    assert seeds_needed(0.001, 0.03**2, 0.03**2, 0.0025) is None  # more than MAX_SEEDS
    # one constant group: the test is a one-sample t-test (df = n - 1), whose power the noncentral t gives exactly;
    # at n = 2: t(0.975, 1) = 12.7 against a noncentrality of 0.1 / sqrt(1e-4 / 2) = 14.1, power 0.73
    assert welch_power(0.1, 0.0, 1e-4, 2, 0.05) == pytest.approx(nct_power(0.1, 0.0, 1e-4, 2, 0.05), abs=1e-4)
    assert welch_power(0.1, 0.0, 1e-4, 2, 0.05) == pytest.approx(0.733, abs=1e-3)
    assert seeds_needed(0.1, 0.0, 1e-4, 0.05) == 3
    assert seeds_needed(-0.1, 1e-4, 1e-4, 0.05) == seeds_needed(0.1, 1e-4, 1e-4, 0.05)  # two-sided
    assert welch_power(30.0, 1.0, 1.0, 900, 0.001) == pytest.approx(1.0)  # far tails: no NaN
    with pytest.raises(ValueError):
        seeds_needed(0.1, 0.0, 0.0, 0.05)


def test_p_values_on_the_page_keep_two_significant_digits():
    assert [p_value(p) for p in (1.0, 0.189, 0.0189, 0.00519, 0.05, 0.000023)] == ["1.0", "0.19", "0.019", "0.0052", "0.050",
                                                                                  "2.3e-05"]
