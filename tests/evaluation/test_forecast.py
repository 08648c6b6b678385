import numpy as np
import pytest

from riskstudy.evaluation.forecast import (
    bias_band,
    bias_statistic,
    forecast_panel,
    portfolio_outcomes,
    qlike,
    random_portfolios,
    restrict_portfolios,
)
from riskstudy.risk.covariance import FactorRiskModel


def test_bias_statistic_calibrated_and_scaled():
    rng = np.random.default_rng(0)
    var = rng.uniform(1e-4, 4e-4, (2000, 3))
    r = rng.standard_normal((2000, 3)) * np.sqrt(var)
    lo, hi = bias_band(2000)
    b = bias_statistic(r, var)
    assert b.shape == (3,) and ((b > lo - 0.02) & (b < hi + 0.02)).all()
    np.testing.assert_allclose(bias_statistic(r, 4 * var), b / 2)
    roll = bias_statistic(r[:, 0], var[:, 0], window=100)
    assert np.isnan(roll[:99]).all()
    assert roll[99] == pytest.approx(np.std(r[:100, 0] / np.sqrt(var[:100, 0]), ddof=1))
    assert bias_band(50) == pytest.approx((1 - 0.2, 1 + 0.2))


def test_qlike_minimised_at_true_variance():
    rng = np.random.default_rng(1)
    r = rng.standard_normal(5000) * 0.02
    grid = np.array([0.5, 0.8, 1.0, 1.25, 2.0]) * 4e-4
    losses = [qlike(r, np.full(5000, v)) for v in grid]
    assert np.argmin(losses) == 2
    norm = [qlike(r, np.full(5000, v), normalised=True) for v in grid]
    assert np.argmin(norm) == 2 and min(norm) >= 0
    assert np.isfinite(qlike(np.zeros(3), np.ones(3)))


def test_random_portfolios():
    w = random_portfolios(10, 4, seed=3)
    assert (w >= 0).all() and np.allclose(w.sum(axis=0), 1)
    np.testing.assert_array_equal(w, random_portfolios(10, 4, seed=3))
    ls = random_portfolios(10, 4, long_only=False)
    assert np.allclose(np.abs(ls).sum(axis=0), 1)


def test_forecast_panel_matches_direct_computation():
    rng = np.random.default_rng(2)
    T, N = 6, 12
    returns = rng.standard_normal((T, N)) * 0.01
    returns[3, 0] = np.nan
    X = rng.standard_normal((N, 2))
    models = {
        t: FactorRiskModel(X[1:], np.eye(2) * 1e-4 * (t + 1), np.full(N - 1, 1e-4), np.arange(1, N)) for t in range(T)
    }
    panel = forecast_panel(lambda t: models.get(t) if t != 1 else None, returns, range(4), n_random=5, seed=0)
    assert panel.names[:2] == ["gmv", "random_0"] and panel.realised.shape == (4, 6)
    assert np.isnan(panel.realised[1]).all()
    m = models[2]
    w = m.gmv_weights()
    assert panel.realised[2, 0] == pytest.approx(w @ returns[3, 1:])
    assert panel.variance[2, 0] == pytest.approx(w @ m.covariance() @ w)
    rand = random_portfolios(N, 5, seed=0)[1:]
    rand /= rand.sum(axis=0)
    np.testing.assert_allclose(panel.variance[2, 1:], np.einsum("nm,nk,km->m", rand, m.covariance(), rand))
    with pytest.raises(ValueError, match="no next-day return"):
        forecast_panel(models.get, returns, [T - 1])


def test_portfolio_outcomes_restrict_random_portfolios_to_the_days_stocks():
    rng = np.random.default_rng(4)
    N = 9
    rand = random_portfolios(N, 3, seed=1)
    assets = np.array([0, 2, 3, 7])
    W = restrict_portfolios(rand, assets)
    np.testing.assert_allclose(W.sum(axis=0), 1.0)
    np.testing.assert_array_equal(W, rand[assets] / rand[assets].sum(axis=0))
    X = rng.standard_normal((4, 2))
    m = FactorRiskModel(X, np.eye(2) * 1e-4, np.full(4, 2e-4), assets)
    r_next = rng.standard_normal(N) * 0.01
    r_next[2] = np.nan  # counts as 0
    named = [m.gmv_weights()]
    realised, variance = portfolio_outcomes(m, r_next, named=named, random=rand)
    full = np.column_stack([named[0], W])
    np.testing.assert_allclose(realised, np.nan_to_num(r_next[assets]) @ full)
    np.testing.assert_allclose(variance, np.einsum("nm,nk,km->m", full, m.covariance(), full))
