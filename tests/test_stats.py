import math

import numpy as np
import pytest

from protege.evaluate.stats import mcnemar_exact, summarize, wilson_interval


def test_wilson_known_values():
    # 81 of 263 (Wilson 1927 style check), 95%: reference (0.2553, 0.3662) from standard tables.
    lo, hi = wilson_interval(81, 263)
    assert lo == pytest.approx(0.2553, abs=1e-3) and hi == pytest.approx(0.3662, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-3)
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-3)


def test_wilson_contains_the_estimate():
    for k in range(0, 51, 5):
        lo, hi = wilson_interval(k, 50)
        assert lo <= k / 50 <= hi


def test_mcnemar_exact_values():
    a = np.array([1, 1, 1, 1, 1, 0, 0, 1], dtype=bool)
    b = np.array([0, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    result = mcnemar_exact(a, b)  # 5 discordant, all one way: p = 2 * 0.5**5
    assert (result["a_only"], result["b_only"]) == (5, 0)
    assert result["p_value"] == pytest.approx(2 / 32)
    # 7 vs 2 discordant: p = 2 * P(X <= 2), X ~ Bin(9, 1/2)
    a = np.array([1] * 7 + [0] * 2 + [1] * 10, dtype=bool)
    b = np.array([0] * 7 + [1] * 2 + [1] * 10, dtype=bool)
    expected = 2 * sum(math.comb(9, k) for k in range(3)) / 2**9
    assert mcnemar_exact(a, b)["p_value"] == pytest.approx(expected)
    assert mcnemar_exact(a, a)["p_value"] == 1.0


def test_mcnemar_rejects_unpaired():
    with pytest.raises(ValueError, match="same shape"):
        mcnemar_exact(np.ones(3), np.ones(4))


def test_summary_is_computed_from_rows():
    s = summarize(np.array([1, 0, 1, 1], dtype=bool), np.array([1.0, 0.0, 1.0, 1.0]), np.array([10, 20, 30, 40]))
    assert s["episodes"] == 4 and s["successes"] == 3 and s["success_rate"] == 0.75
    assert s["success_ci95"] == list(wilson_interval(3, 4))
    assert s["mean_length"] == 25.0


def test_t_quantiles_and_interval_over_seeds():
    from protege.evaluate.stats import interval_over_seeds, t_quantile_975

    # scipy.stats.t.ppf(0.975, df) for df = 1, 2, 10, 31, 100
    for df, expected in ((1, 12.7062), (2, 4.3027), (10, 2.2281), (31, 2.0395), (100, 1.9840)):
        assert abs(t_quantile_975(df) - expected) < 1e-3
    lo, hi = interval_over_seeds([0.82, 0.76, 0.74])
    mean, half = 2.32 / 3, 4.303 * 0.0416333 / 3**0.5  # sample std 0.0416333
    assert abs(lo - (mean - half)) < 1e-6 and abs(hi - (mean + half)) < 1e-6
    assert interval_over_seeds([1.0, 1.0, 1.0]) == (1.0, 1.0) and interval_over_seeds([0.5]) == (0.5, 0.5)
    assert interval_over_seeds([0.0, 1.0]) == (0.0, 1.0)  # clipped
