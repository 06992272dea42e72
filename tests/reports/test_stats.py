"""Tests of the estimators in reports.stats against independently known values.

Each test names its reference: an R help-page example (values as printed by R), a textbook
value, a closed form written out in the test, or a brute-force enumeration.
"""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from reports import stats
from reports.ranking import cliques_within, critical_difference

# Hollander & Wolfe (1973, p. 29) depression scores, as in R's ?wilcox.test example.
DEPRESSION_X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
DEPRESSION_Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]

# R's `sleep` data set (Student 1908): extra sleep under drug 1 and drug 2, same 10 patients.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]

# R's `aml` data (survival package): weeks to relapse, 0 = censored.
AML_MAINTAINED = ([9, 13, 13, 18, 23, 28, 31, 34, 45, 48, 161], [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0])
AML_NONMAINTAINED = (
    [5, 5, 8, 8, 12, 16, 23, 27, 30, 33, 43, 45],
    [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1],
)


def _by_test(results):
    return {result.test: result for result in results}


# Location tests


def test_wilcoxon_r_example():
    """R ?wilcox.test: wilcox.test(x, y, paired = TRUE) gives V = 40, p-value = 0.03906."""
    result = _by_test(stats.paired_tests(DEPRESSION_X, DEPRESSION_Y))["wilcoxon"]

    assert result.statistic == 40
    assert result.p_value == pytest.approx(0.03906, abs=5e-6)
    assert "exact" in result.convention


def test_wilcoxon_ties_and_zero_brute_force():
    """Exact sign-flip enumeration after dropping zeros, ties at average ranks."""
    differences = np.array([1.5, -0.5, 2.0, 2.0, 0.0, 3.0, 1.0])
    result = _by_test(stats.paired_tests(differences, np.zeros_like(differences)))["wilcoxon"]

    nonzero = differences[differences != 0]
    ranks = scipy.stats.rankdata(np.abs(nonzero))
    observed = ranks[nonzero > 0].sum()
    flips = [
        sum(r for r, s in zip(ranks, signs) if s > 0)
        for signs in itertools.product([1, -1], repeat=nonzero.size)
    ]
    p_greater = np.mean([v >= observed for v in flips])
    p_less = np.mean([v <= observed for v in flips])

    assert result.statistic == observed
    assert result.p_value == pytest.approx(min(1.0, 2 * min(p_greater, p_less)))
    assert "permutation" in result.convention


def test_paired_t_r_sleep():
    """R: t.test(extra[group == 1], extra[group == 2], paired = TRUE) on `sleep`:
    t = -4.0621, df = 9, p-value = 0.002833."""
    result = _by_test(stats.paired_tests(SLEEP_1, SLEEP_2))["paired-t"]

    assert result.statistic == pytest.approx(-4.0621, abs=5e-5)
    assert result.p_value == pytest.approx(0.002833, abs=5e-7)
    assert result.n == 10


def test_welch_r_sleep():
    """R: t.test(extra ~ group, data = sleep): t = -1.8608, df = 17.776, p-value = 0.07939."""
    result = _by_test(stats.unpaired_tests(SLEEP_1, SLEEP_2))["welch"]

    assert result.statistic == pytest.approx(-1.8608, abs=5e-5)
    assert result.p_value == pytest.approx(0.07939, abs=5e-6)


def test_mann_whitney_r_example():
    """R ?wilcox.test: wilcox.test(x, y, alternative = "g") gives W = 35, p-value = 0.1272;
    the exact two-sided p-value is twice that, checked here by enumerating all C(15, 5)
    assignments of ranks to y."""
    x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
    y = [1.15, 0.88, 0.90, 0.74, 1.21]
    result = _by_test(stats.unpaired_tests(x, y))["mann-whitney"]

    all_u = []
    for y_ranks in itertools.combinations(range(1, 16), 5):
        x_rank_sum = sum(range(1, 16)) - sum(y_ranks)
        all_u.append(x_rank_sum - 10 * 11 / 2)
    p_upper = np.mean([u >= 35 for u in all_u])

    assert result.statistic == 35
    assert p_upper == pytest.approx(0.1272, abs=5e-5)
    assert result.p_value == pytest.approx(2 * p_upper)


def test_paired_tests_all_zero_differences():
    results = _by_test(stats.paired_tests([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]))

    assert results["wilcoxon"].p_value is None
    assert results["wilcoxon"].not_testable == "all 4 paired differences are zero"
    assert "zero variance" in results["paired-t"].not_testable


def test_paired_t_constant_differences():
    results = _by_test(stats.paired_tests([2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0]))

    assert results["paired-t"].statistic is None
    assert "zero variance" in results["paired-t"].not_testable
    assert results["wilcoxon"].p_value == pytest.approx(2 / 2**4)  # all 4 signs positive


def test_unpaired_tests_all_tied():
    results = _by_test(stats.unpaired_tests([0.5] * 4, [0.5] * 5))

    assert "zero variance" in results["welch"].not_testable
    assert (
        results["mann-whitney"].not_testable
        == "all 9 values are tied, so the ranks carry no information"
    )


def test_tests_too_few_seeds():
    paired = stats.paired_tests([1.0, 2.0], [0.0, 0.5])
    unpaired = stats.unpaired_tests([1.0, 2.0], [0.0, 0.5, 0.7])

    for result in paired + unpaired:
        assert result.p_value is None
        assert "at least 3" in result.not_testable


def test_paired_tests_drop_nan_pairwise():
    x = [1.0, np.nan, 3.0, 4.0, 5.0, 7.0]
    y = [0.5, 1.0, np.nan, 3.1, 4.4, 5.0]
    result = _by_test(stats.paired_tests(x, y))["paired-t"]
    expected = scipy.stats.ttest_rel([1.0, 4.0, 5.0, 7.0], [0.5, 3.1, 4.4, 5.0])

    assert result.n == 4
    assert result.n_dropped == 2
    assert result.statistic == pytest.approx(expected.statistic)


def test_unpaired_tests_count_dropped():
    results = stats.unpaired_tests([1.0, np.inf, 2.0, 3.0], [np.nan, 2.0, 2.5, 4.0])

    assert all(result.n_dropped == 2 for result in results)
    assert all(result.n == 6 for result in results)


def test_as_sample_rejects_strings():
    with pytest.raises(ValueError, match="`x` must contain numbers only"):
        stats.unpaired_tests(["a", "b", "c"], [1.0, 2.0, 3.0])


def test_paired_tests_length_mismatch():
    with pytest.raises(ValueError, match="paired samples must have equal length"):
        stats.paired_tests([1.0, 2.0, 3.0], [1.0, 2.0])


# Multiple comparisons


def test_holm_hand_example():
    """Holm (1979) step-down by hand: sorted p (0.005, 0.01, 0.03, 0.04) times (4, 3, 2, 1)
    gives (0.02, 0.03, 0.06, 0.04), made monotone: (0.02, 0.03, 0.06, 0.06)."""
    adjusted = stats.adjust([0.01, 0.04, 0.03, 0.005], "holm")

    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_benjamini_hochberg_hand_example():
    """BH by hand: sorted p times m / rank = (0.02, 0.02, 0.04, 0.04), already monotone."""
    adjusted = stats.adjust([0.01, 0.04, 0.03, 0.005], "fdr_bh")

    assert adjusted == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_adjust_keeps_none():
    adjusted = stats.adjust([0.01, None, 0.04, float("nan")], "holm")

    assert adjusted[1] is None
    assert adjusted[3] is None
    assert adjusted[0] == pytest.approx(0.02)
    assert adjusted[2] == pytest.approx(0.04)


def test_adjust_rejects_unknown_method():
    with pytest.raises(ValueError, match="`method` must be one of \\['holm', 'fdr_bh'\\]"):
        stats.adjust([0.01], "bonferroni")


def test_adjust_rejects_p_above_one():
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\], got 1.5"):
        stats.adjust([0.01, 1.5])


# Effect sizes and bootstrap intervals


def test_cliffs_delta_brute_force():
    """Cliff's delta and A12 by a double loop over all pairs, ties counted as 1/2."""
    x = [1.0, 2.0, 2.0, 5.0]
    y = [2.0, 3.0, 0.5]
    greater = sum(a > b for a in x for b in y)
    less = sum(a < b for a in x for b in y)
    ties = sum(a == b for a in x for b in y)
    delta = (greater - less) / 12
    a12 = (greater + 0.5 * ties) / 12

    effects = stats.effect_sizes(x, y, paired=False, higher_is_better=True, n_resamples=999)
    lower_better = stats.effect_sizes(x, y, paired=False, higher_is_better=False, n_resamples=999)

    assert effects["cliffs_delta"].value == pytest.approx(delta)
    assert effects["a12"].value == pytest.approx(a12)
    assert effects["a12"].value == pytest.approx((delta + 1) / 2)
    assert effects["prob_improvement"].value == pytest.approx(a12)
    assert lower_better["prob_improvement"].value == pytest.approx(1 - a12)


def test_hedges_g_closed_form():
    """Hedges' g with J(df) = Γ(df/2) / (sqrt(df/2) Γ((df-1)/2)) written out by hand;
    J also agrees with the approximation 1 - 3 / (4 df - 1) to 1e-3."""
    x, y = np.array(SLEEP_2), np.array(SLEEP_1)
    df = x.size + y.size - 2
    pooled = math.sqrt(((x.size - 1) * x.var(ddof=1) + (y.size - 1) * y.var(ddof=1)) / df)
    factor = math.gamma(df / 2) / (math.sqrt(df / 2) * math.gamma((df - 1) / 2))
    expected = factor * (x.mean() - y.mean()) / pooled

    effects = stats.effect_sizes(x, y, paired=False, higher_is_better=True, n_resamples=999)

    assert factor == pytest.approx(1 - 3 / (4 * df - 1), abs=1e-3)
    assert effects["hedges_g"].value == pytest.approx(expected)


def test_d_z_and_paired_improvement_by_hand():
    x, y = np.array(SLEEP_2), np.array(SLEEP_1)
    differences = x - y
    expected_d_z = differences.mean() / differences.std(ddof=1)
    improved = (np.sum(differences > 0) + 0.5 * np.sum(differences == 0)) / differences.size

    effects = stats.effect_sizes(x, y, paired=True, higher_is_better=True, n_resamples=999)

    assert effects["d_z"].value == pytest.approx(expected_d_z)
    assert effects["prob_improvement"].value == pytest.approx(improved)
    assert "hedges_g" not in effects


@pytest.mark.parametrize("paired", [True, False])
def test_effect_intervals_bracket_estimates(paired):
    rng = np.random.default_rng(3)
    x, y = rng.normal(0.5, 1.0, 20), rng.normal(0.0, 1.0, 20)

    effects = stats.effect_sizes(x, y, paired=paired, higher_is_better=True, n_resamples=1999)

    for name, estimate in effects.items():
        assert estimate.low <= estimate.value <= estimate.high, name


def test_effect_sizes_zero_variance():
    effects = stats.effect_sizes([1.0] * 4, [1.0] * 4, paired=False, higher_is_better=True)

    assert effects["hedges_g"].value is None
    assert "zero variance" in effects["hedges_g"].not_testable
    assert effects["cliffs_delta"].value == 0.0
    assert effects["cliffs_delta"].low is None
    assert "degenerate" in effects["cliffs_delta"].note


def test_effect_sizes_too_few_pairs():
    effects = stats.effect_sizes(
        [1.0, np.nan, 2.0], [0.0, 1.0, 1.0], paired=True, higher_is_better=True
    )

    assert all(estimate.value is None for estimate in effects.values())
    assert "only 2 finite pairs" in effects["d_z"].not_testable


def test_iqm_hand_value():
    """trim_mean(x, 0.25) of 1..8 drops 1, 2, 7, 8 and averages 3..6: 4.5."""
    estimate = stats.bootstrap_ci(np.arange(1.0, 9.0), "iqm", n_resamples=999)

    assert estimate.value == 4.5
    assert estimate.low <= 4.5 <= estimate.high


def test_bootstrap_mean_close_to_t_interval():
    """For n = 200 normal values the BCa interval of the mean is close to the t interval."""
    values = np.random.default_rng(7).normal(10.0, 2.0, 200)
    half_width = scipy.stats.t.ppf(0.975, 199) * values.std(ddof=1) / math.sqrt(200)

    estimate = stats.bootstrap_ci(values, "mean", n_resamples=1999)

    assert estimate.low == pytest.approx(values.mean() - half_width, abs=0.1 * half_width)
    assert estimate.high == pytest.approx(values.mean() + half_width, abs=0.1 * half_width)


def test_bootstrap_ci_constant_values():
    estimate = stats.bootstrap_ci([0.25] * 6, "median")

    assert estimate.value == 0.25
    assert estimate.low is None
    assert estimate.note == "all 6 values are equal, so the interval is undefined"


def test_bootstrap_ci_too_few_values():
    estimate = stats.bootstrap_ci([1.0, np.nan, 2.0], "mean")

    assert estimate.value is None
    assert estimate.not_testable == "only 2 finite values (at least 3 are needed)"


def test_bootstrap_ci_rejects_unknown_statistic():
    with pytest.raises(ValueError, match="`statistic` must be one of .* got 'mode'"):
        stats.bootstrap_ci([1.0, 2.0, 3.0], "mode")


# Variance


def test_brown_forsythe_closed_form():
    """Brown-Forsythe = one-way ANOVA F on |x - median(x)|, written out by hand."""
    x, y = np.array(SLEEP_1), np.array([0.1, 0.4, 0.2, 0.9, 0.3, 0.35, 0.6])
    groups = [np.abs(x - np.median(x)), np.abs(y - np.median(y))]
    pooled = np.concatenate(groups)
    between = sum(g.size * (g.mean() - pooled.mean()) ** 2 for g in groups) / 1
    within = sum(((g - g.mean()) ** 2).sum() for g in groups) / (pooled.size - 2)

    result = _by_test(stats.variance_tests(x, y))["brown-forsythe"]

    assert result.statistic == pytest.approx(between / within)
    assert result.p_value == pytest.approx(scipy.stats.f.sf(between / within, 1, pooled.size - 2))


def test_fligner_closed_form():
    """Fligner-Killeen (Conover et al. 1981): a_i = Φ⁻¹(1/2 + rank_i / (2(N+1))) of
    |x - median| over both groups; statistic Σ n_j (mean_j(a) - mean(a))² / var(a)."""
    x, y = np.array(SLEEP_1), np.array([0.1, 0.4, 0.2, 0.9, 0.3, 0.35, 0.6])
    deviations = np.concatenate([np.abs(x - np.median(x)), np.abs(y - np.median(y))])
    scores = scipy.stats.norm.ppf(
        0.5 + scipy.stats.rankdata(deviations) / (2 * (deviations.size + 1))
    )
    groups = [scores[: x.size], scores[x.size :]]
    expected = sum(g.size * (g.mean() - scores.mean()) ** 2 for g in groups) / scores.var(ddof=1)

    result = _by_test(stats.variance_tests(x, y))["fligner-killeen"]

    assert result.statistic == pytest.approx(expected)
    assert result.p_value == pytest.approx(scipy.stats.chi2.sf(expected, 1))


def test_variance_tests_zero_variance():
    results = stats.variance_tests([1.0] * 5, [2.0] * 5)

    for result in results:
        assert result.p_value is None
        assert result.not_testable == "both arms have zero variance"


def test_sd_ratio_f_interval_closed_form():
    """F interval as in R's var.test, square-rooted: (s_x/s_y) / sqrt(F quantiles)."""
    x, y = np.array(SLEEP_1), np.array(SLEEP_2[:7])
    ratio = x.std(ddof=1) / y.std(ddof=1)

    estimate = stats.sd_ratio_ci(x, y, 0.9)

    assert estimate.value == pytest.approx(ratio)
    assert estimate.low == pytest.approx(ratio / math.sqrt(scipy.stats.f.ppf(0.95, 9, 6)))
    assert estimate.high == pytest.approx(ratio / math.sqrt(scipy.stats.f.ppf(0.05, 9, 6)))


def test_sd_ratio_f_interval_coverage():
    """Simulation: the 95% interval covers the true ratio 2 in 95% ± 3% of 600 normal draws."""
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(600):
        estimate = stats.sd_ratio_ci(rng.normal(0, 2, 8), rng.normal(0, 1, 12))
        covered += estimate.low <= 2.0 <= estimate.high

    assert 0.92 <= covered / 600 <= 0.98


def test_sd_ratio_reference_zero_variance():
    estimate = stats.sd_ratio_ci([1.0, 2.0, 3.0], [4.0, 4.0, 4.0])

    assert estimate.value is None
    assert "reference has zero variance" in estimate.not_testable


def test_sd_ratio_paired_bootstrap_brackets():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 2, 16)
    estimate = stats.sd_ratio_ci(x, x * 0.5 + rng.normal(0, 0.3, 16), paired=True, n_resamples=999)

    assert estimate.low <= estimate.value <= estimate.high
    assert "paired resampling" in estimate.method


# Survival


def test_kaplan_meier_hand_six():
    """Hand KM on 1, 2+, 3, 3, 4+, 5: S = 5/6 at 1, 5/6 * 2/4 at 3, 0 at 5. Greenwood:
    Var S(3) = S(3)² (1/(6*5) + 2/(4*2)); pointwise CI on the log(-log S) scale."""
    result = stats.kaplan_meier([1, 2, 3, 3, 4, 5], [1, 0, 1, 1, 0, 1])
    s3 = 5 / 12
    se3 = s3 * math.sqrt(1 / 30 + 2 / 8)
    se_loglog = se3 / (s3 * abs(math.log(s3)))
    z = scipy.stats.norm.ppf(0.975)

    assert result.times == (1.0, 3.0, 5.0)
    assert result.survival == pytest.approx((5 / 6, s3, 0.0))
    assert result.ci_low[1] == pytest.approx(s3 ** math.exp(z * se_loglog))
    assert result.ci_high[1] == pytest.approx(s3 ** math.exp(-z * se_loglog))
    assert result.ci_low[2] is None
    assert result.median.value == 3.0
    assert result.n == 6
    assert result.n_events == 4


def test_kaplan_meier_aml_medians():
    """R: survfit(Surv(time, status) ~ x, data = aml) prints medians 31 and 23."""
    maintained = stats.kaplan_meier(*AML_MAINTAINED)
    nonmaintained = stats.kaplan_meier(*AML_NONMAINTAINED)

    assert maintained.median.value == 31
    assert nonmaintained.median.value == 23


def test_kaplan_meier_no_events():
    result = stats.kaplan_meier([100, 100, 100, 100], [0, 0, 0, 0])

    assert result.times == ()
    assert result.median.value is None
    assert result.median.not_testable == "no seed reached the threshold"


def test_kaplan_meier_median_not_reached():
    result = stats.kaplan_meier([10, 100, 100, 100], [1, 0, 0, 0])

    assert result.median.value is None
    assert "never falls below 0.5" in result.median.not_testable


def test_kaplan_meier_rejects_bad_flag():
    with pytest.raises(ValueError, match="reached flags must be 0.0 .* got 2.0"):
        stats.kaplan_meier([1, 2, 3], [1, 2, 0])


def test_logrank_aml():
    """R: survdiff(Surv(time, status) ~ x, data = aml) prints Chisq = 3.4 on 1 df; the exact
    value is recomputed here as (O - E)² / V summed over the distinct event times."""
    result = stats.logrank(*AML_MAINTAINED, *AML_NONMAINTAINED)

    times = np.array(AML_MAINTAINED[0] + AML_NONMAINTAINED[0], dtype=float)
    events = np.array(AML_MAINTAINED[1] + AML_NONMAINTAINED[1])
    group = np.array([0] * 11 + [1] * 12)
    observed_minus_expected = variance = 0.0
    for t in np.unique(times[events == 1]):
        at_risk = times >= t
        n, n_a = at_risk.sum(), (at_risk & (group == 0)).sum()
        d = ((times == t) & (events == 1)).sum()
        d_a = ((times == t) & (events == 1) & (group == 0)).sum()
        observed_minus_expected += d_a - d * n_a / n
        variance += d * (n_a / n) * (1 - n_a / n) * (n - d) / max(n - 1, 1)
    expected = observed_minus_expected**2 / variance

    assert result.statistic == pytest.approx(3.4, abs=0.05)
    assert result.statistic == pytest.approx(expected)
    assert result.p_value == pytest.approx(scipy.stats.chi2.sf(expected, 1))


def test_logrank_no_events():
    result = stats.logrank([50] * 4, [0] * 4, [50] * 4, [0] * 4)

    assert result.p_value is None
    assert result.not_testable == "no seed reached the threshold in either arm"


# Ranking across scenarios


def test_demsar_q_alpha_table():
    """Demšar (2006), Table 5(a): q_0.05 for k = 2..10."""
    expected = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]

    for k, q_expected in zip(range(2, 11), expected):
        q_alpha, _ = critical_difference(k, 10)
        assert q_alpha == pytest.approx(q_expected, abs=1e-3), k


def test_demsar_cd_example():
    """Demšar (2006), section 3.2.2: k = 4, N = 14 gives CD = 2.569 sqrt(4*5/(6*14)) = 1.25."""
    _, cd = critical_difference(4, 14)

    assert cd == pytest.approx(1.25, abs=5e-3)


def test_friedman_r_rounding_times():
    """R ?friedman.test, RoundingTimes (Hollander & Wolfe): Friedman chi-squared = 11.143,
    df = 2, p-value = 0.003805."""
    times = np.array(
        [
            5.40,
            5.50,
            5.55,
            5.85,
            5.70,
            5.75,
            5.20,
            5.60,
            5.50,
            5.55,
            5.50,
            5.40,
            5.90,
            5.85,
            5.70,
            5.45,
            5.55,
            5.60,
            5.40,
            5.40,
            5.35,
            5.45,
            5.50,
            5.35,
            5.25,
            5.15,
            5.00,
            5.85,
            5.80,
            5.70,
            5.25,
            5.20,
            5.10,
            5.65,
            5.55,
            5.45,
            5.60,
            5.35,
            5.45,
            5.05,
            5.00,
            4.95,
            5.50,
            5.50,
            5.40,
            5.45,
            5.55,
            5.50,
            5.55,
            5.55,
            5.35,
            5.45,
            5.50,
            5.55,
            5.50,
            5.45,
            5.25,
            5.65,
            5.60,
            5.40,
            5.70,
            5.65,
            5.55,
            6.30,
            6.30,
            6.25,
        ]
    ).reshape(22, 3)
    table = pd.DataFrame(times, columns=["round-out", "narrow-angle", "wide-angle"])

    result = stats.friedman_nemenyi(table, higher_is_better=False)

    assert result.statistic == pytest.approx(11.143, abs=5e-4)
    assert result.p_value == pytest.approx(0.003805, abs=5e-7)
    assert result.average_ranks["wide-angle"] == min(result.average_ranks.values())


def test_friedman_cliques_hand():
    """Ranks 1, 2, 3, 4 in all 10 blocks; CD = 2.569 sqrt(20/60) = 1.483, so only
    neighbours (rank gap 1) are not significantly different."""
    table = pd.DataFrame([[0.9, 0.8, 0.7, 0.6]] * 10, columns=list("abcd"))

    result = stats.friedman_nemenyi(table, higher_is_better=True)

    assert result.average_ranks == {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    assert result.cd == pytest.approx(2.569 * math.sqrt(20 / 60), abs=1e-3)
    assert result.cliques == (("a", "b"), ("b", "c"), ("c", "d"))
    assert result.pairwise_p["a vs d"] < 0.05


def test_cliques_drop_nested_runs():
    cliques = cliques_within({"a": 1.0, "b": 1.2, "c": 1.4, "d": 3.0}, cd=1.0)

    assert cliques == (("a", "b", "c"),)


def test_friedman_needs_two_scenarios():
    table = pd.DataFrame([[0.9, 0.8, 0.7]], columns=list("abc"))

    result = stats.friedman_nemenyi(table, higher_is_better=True)

    assert result.p_value is None
    assert "at least 2" in result.not_testable


def test_friedman_drops_incomplete_initializer():
    table = pd.DataFrame({"a": [0.9, 0.8], "b": [0.7, np.nan], "c": [0.1, 0.2]})

    result = stats.friedman_nemenyi(table, higher_is_better=True)

    assert result.dropped == ("b",)
    assert "only 2 initializer(s)" in result.not_testable


def test_friedman_all_ties():
    table = pd.DataFrame([[0.5, 0.5, 0.5]] * 4, columns=list("abc"))

    result = stats.friedman_nemenyi(table, higher_is_better=True)

    assert result.statistic is None
    assert result.not_testable == "every scenario ranks all initializers equal (all ties)"


# Power and equivalence


def _noncentral_power(effect, n, paired):
    """Two-sided t-test power from the noncentral t distribution, written out."""
    if paired:
        df, noncentrality = n - 1, effect * math.sqrt(n)
    else:
        df, noncentrality = 2 * n - 2, effect * math.sqrt(n / 2)
    critical = scipy.stats.t.ppf(0.975, df)
    return scipy.stats.nct.sf(critical, df, noncentrality) + scipy.stats.nct.cdf(
        -critical, df, noncentrality
    )


def test_power_unpaired_r_pwr():
    """R pwr::pwr.t.test(d = 0.5, power = 0.8) gives n = 63.77 per group, so 64 seeds."""
    z = np.random.default_rng(2).normal(size=30)
    z = (z - z.mean()) / z.std(ddof=1)
    report = stats.power_analysis(z + 0.5, z, paired=False)

    assert report["observed_effect"] == pytest.approx(0.5)
    assert report["seeds_needed"] == 64
    assert _noncentral_power(report["min_detectable_effect"], 30, paired=False) == pytest.approx(
        0.8, abs=1e-4
    )


def test_power_paired_r_pwr():
    """R pwr::pwr.t.test(d = 0.5, power = 0.8, type = "paired") gives n = 33.37, so 34."""
    z = np.random.default_rng(4).normal(size=12)
    differences = 0.5 + (z - z.mean()) / z.std(ddof=1)  # mean 0.5, SD 1: d_z = 0.5
    report = stats.power_analysis(differences, np.zeros(12), paired=True)

    assert report["observed_effect"] == pytest.approx(0.5)
    assert report["seeds_needed"] == 34
    assert _noncentral_power(report["min_detectable_effect"], 12, paired=True) == pytest.approx(
        0.8, abs=1e-4
    )


def test_power_zero_effect():
    report = stats.power_analysis([1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 4.0, 3.0], paired=False)

    assert report["seeds_needed"] is None
    assert "observed effect is 0" in report["seeds_needed_reason"]
    assert report["min_detectable_effect"] is not None


def test_tost_paired_hand():
    """TOST by hand: t_low = (mean(d) + m) / se, t_high = (mean(d) - m) / se, df = n - 1;
    p = max(P(T > t_low), P(T < t_high))."""
    x, y, margin = np.array(SLEEP_2), np.array(SLEEP_1), 2.0
    d = x - y
    se = d.std(ddof=1) / math.sqrt(d.size)
    t_low, t_high = (d.mean() + margin) / se, (d.mean() - margin) / se
    p_low, p_high = scipy.stats.t.sf(t_low, 9), scipy.stats.t.cdf(t_high, 9)

    result = stats.tost(x, y, margin=margin, paired=True)

    assert result.p_value == pytest.approx(max(p_low, p_high))
    assert result.statistic == pytest.approx(t_low if p_low >= p_high else t_high)


def test_tost_welch_hand():
    """Welch TOST by hand, Welch-Satterthwaite df."""
    x, y, margin = np.array(SLEEP_2), np.array(SLEEP_1), 3.0
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    diff = x.mean() - y.mean()
    p_low = scipy.stats.t.sf((diff + margin) / se, df)
    p_high = scipy.stats.t.cdf((diff - margin) / se, df)

    result = stats.tost(x, y, margin=margin, paired=False)

    assert result.p_value == pytest.approx(max(p_low, p_high))


def test_tost_rejects_bad_margin():
    with pytest.raises(ValueError, match="`margin` must be a positive finite number .* got -1"):
        stats.tost([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], margin=-1, paired=True)


def test_tost_zero_variance():
    result = stats.tost([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], margin=0.1, paired=True)

    assert result.p_value is None
    assert "zero variance" in result.not_testable


# Honesty checks


def test_failure_rate_wilson_hand():
    """Wilson (1927): (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), 2 of 10."""
    p, n, z = 0.2, 10, scipy.stats.norm.ppf(0.975)
    center = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)

    estimate = stats.failure_rate(2, 10)

    assert estimate.value == 0.2
    assert estimate.low == pytest.approx(center - half)
    assert estimate.high == pytest.approx(center + half)


def test_failure_rate_no_seeds():
    estimate = stats.failure_rate(0, 0)

    assert estimate.value is None
    assert estimate.not_testable == "no seeds were run (n_total = 0)"


def test_failure_rate_rejects_more_failed_than_total():
    with pytest.raises(ValueError, match="0 <= n_failed <= n_total, got n_failed=5, n_total=3"):
        stats.failure_rate(5, 3)


def test_aa_check_reproduces_split_rule():
    """Re-run the documented split rule with plain SciPy calls and count p < alpha."""
    values = np.random.default_rng(9).normal(size=24)
    rng = np.random.default_rng(1)
    welch = mann_whitney = 0
    for _ in range(50):
        order = rng.permutation(24)
        a, b = values[order[:12]], values[order[12:]]
        welch += scipy.stats.ttest_ind(a, b, equal_var=False).pvalue < 0.1
        mann_whitney += scipy.stats.mannwhitneyu(a, b).pvalue < 0.1

    report = stats.aa_check(values, n_splits=50, alpha=0.1, random_state=1)

    assert report["false_positive_rate"]["welch"] == welch / 50
    assert report["false_positive_rate"]["mann-whitney"] == mann_whitney / 50
    assert report["n_testable_splits"] == {"welch": 50, "mann-whitney": 50}


def test_aa_check_too_few_values():
    report = stats.aa_check([1.0, 2.0, 3.0, 4.0, np.nan])

    assert report["false_positive_rate"]["welch"] is None
    assert report["not_testable"] == "only 4 finite values (at least 6 are needed)"
    assert report["n_dropped"] == 1


def test_aa_check_constant_values():
    report = stats.aa_check([0.5] * 10)

    assert "all 10 values are equal" in report["not_testable"]


def test_methods_text_states_conventions():
    text = stats.methods_text(stats.AnalysisOptions(correction="fdr_bh"))

    assert "zero_method='wilcox'" in text
    assert "trim_mean" in text
    assert "Benjamini-Hochberg" in text
    assert "\n" not in text
