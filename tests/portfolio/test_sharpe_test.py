"""Sharpe-difference tests: the delta-method standard error against a simulation, size under the null, the
bootstrap interval covers the difference, and the weight-change cap is an exact projection."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.portfolio.constraints import cap_weight_change
from riskstudy.portfolio.sharpe_test import sharpe, sharpe_diff_bootstrap, sharpe_diff_hac


def test_identical_series_have_zero_difference():
    r = np.random.default_rng(0).normal(0.001, 0.01, 500)
    out = sharpe_diff_hac(r, r)
    assert out["diff"] == 0 and out["sharpe_a"] == pytest.approx(sharpe(r))


def test_hac_standard_error_matches_the_spread_of_simulated_differences():
    rng = np.random.default_rng(1)
    diffs, ses = [], []
    for _ in range(300):
        common = rng.normal(0, 0.01, 750)
        a = 0.0005 + common + rng.normal(0, 0.006, 750)
        b = 0.0003 + common + rng.normal(0, 0.006, 750)
        out = sharpe_diff_hac(a, b, lags=0)
        diffs.append(out["diff"])
        ses.append(out["se"])
    assert np.mean(ses) == pytest.approx(np.std(diffs), rel=0.15)


def test_null_rejections_near_the_nominal_level_with_autocorrelation():
    rng = np.random.default_rng(2)
    rejections = 0
    for _ in range(200):
        e = rng.normal(0, 0.01, (1000, 2))
        x = np.zeros_like(e)
        for t in range(1, 1000):
            x[t] = 0.5 * x[t - 1] + e[t]
        rejections += sharpe_diff_hac(x[:, 0] + 0.0005, x[:, 1] + 0.0005)["p_value"] < 0.05
    assert rejections / 200 < 0.12


def test_bootstrap_interval_and_a_clear_difference():
    rng = np.random.default_rng(3)
    a = rng.normal(0.002, 0.01, 1000)
    b = rng.normal(-0.001, 0.01, 1000)
    boot = sharpe_diff_bootstrap(a, b, n_boot=500)
    assert boot["lo"] < boot["diff"] < boot["hi"] and boot["p_value"] < 0.05
    assert sharpe_diff_hac(a, b)["p_value"] < 0.05
    with pytest.raises(ValueError, match="two blocks"):
        sharpe_diff_bootstrap(a[:30], b[:30])


def test_cap_is_the_closest_feasible_portfolio():
    held = np.array([0.5, 0.3, 0.2, 0.0])
    target = np.array([0.0, 0.0, 0.5, 0.5])
    w, ok = cap_weight_change(target, held, max_change=0.1)
    assert ok and w.sum() == pytest.approx(1.0) and np.all(np.abs(w - held) <= 0.1 + 1e-12) and np.all(w >= 0)
    np.testing.assert_allclose(w, [0.4, 0.2, 0.3, 0.1])
    w2, ok2 = cap_weight_change(np.array([0.45, 0.3, 0.2, 0.05]), held, max_change=0.1)
    np.testing.assert_allclose(w2, [0.45, 0.3, 0.2, 0.05])  # a feasible target is kept
    import cvxpy as cp

    x = cp.Variable(4)
    cp.Problem(cp.Minimize(cp.sum_squares(x - target)), [cp.sum(x) == 1, x >= np.maximum(0, held - 0.1),
                                                          x <= np.minimum(1, held + 0.1)]).solve()
    np.testing.assert_allclose(w, x.value, atol=1e-6)
    w3, ok3 = cap_weight_change(target, np.zeros(4), max_change=0.1)  # from cash: at most 4 x 10% invested
    assert not ok3 and w3.sum() == pytest.approx(0.4)
