import numpy as np
import pytest

from riskstudy.config import RiskConfig
from riskstudy.risk.covariance import (
    FactorRiskModel,
    build_risk_models,
    eigenfactor_adjustment,
    ewma,
    ewma_covariance,
    ewma_weights,
    factor_covariance,
    specific_variance,
)
from riskstudy.features.weights import regression_weights
from riskstudy.risk.regression import cross_sectional_regression, design_matrix, lagged


def _random_model(n=40, p=6, seed=0, rank=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    A = rng.standard_normal((p, rank or p)) * 0.01
    return FactorRiskModel(X, A @ A.T, rng.uniform(1e-4, 4e-4, n))


# -------------------------------------------------------------------- EWMA
def test_ewma_weights_sum_to_one_and_halve_every_half_life():
    w = ewma_weights(10, 50)
    assert w.sum() == pytest.approx(1.0)
    assert w[-11] / w[-1] == pytest.approx(0.5)


def test_ewma_recursion_equals_explicit_weights():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(120)
    out = ewma(x, np.ones(120, bool), 15)
    for n in (1, 37, 120):
        assert out[n - 1] == pytest.approx(ewma_weights(15, n) @ x[:n])


def test_ewma_ignores_invalid_entries():
    x = np.array([1.0, np.nan, 3.0])
    out = ewma(x, np.isfinite(x), 1.0)
    assert out[1] == pytest.approx(1.0)
    assert out[2] == pytest.approx((0.25 * 1 + 3) / 1.25)


def test_ewma_covariance_newey_west_bartlett():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((200, 3))
    c0 = ewma_covariance(f, 30)
    c1 = ewma_covariance(f, 30, newey_west_lags=1)
    lagged_prod = np.zeros((200, 3, 3))
    lagged_prod[1:] = f[1:, :, None] * f[:-1, None, :]
    ok = np.zeros((200, 3, 3), bool)
    ok[1:] = True
    g = ewma(lagged_prod, ok, 30)
    np.testing.assert_allclose(c1[1:], c0[1:] + 0.5 * (g[1:] + g[1:].transpose(0, 2, 1)))


# ------------------------------------------------------- factor covariance
def test_factor_covariance_psd_no_lookahead_min_history():
    rng = np.random.default_rng(2)
    f = rng.standard_normal((400, 5)) * 0.01
    f[:, 1] += 0.5 * f[:, 0]
    f[50:60, 2] = np.nan  # a factor unobserved for a while
    kw = dict(corr_half_life=240, vol_half_life=60, vra_half_life=20, newey_west_lags=2, min_history=30, eigen_adjust_sims=20, eigen_horizon=60)
    fc = factor_covariance(f, **kw)
    assert np.isnan(fc.cov[:29]).all() and np.isfinite(fc.cov[29:]).all()
    eig = np.linalg.eigvalsh(fc.cov[29:])
    assert eig.min() > -1e-12 * eig.max()
    g = f.copy()
    g[300:] = rng.standard_normal((100, 5))  # change the future
    np.testing.assert_array_equal(factor_covariance(g, **kw).cov[:300], fc.cov[:300])


def test_separate_vol_and_corr_half_lives():
    rng = np.random.default_rng(3)
    f = rng.standard_normal((300, 4)) @ np.linalg.cholesky(np.full((4, 4), 0.3) + 0.7 * np.eye(4)).T
    fc = factor_covariance(f, corr_half_life=100, vol_half_life=20, vra_half_life=None, min_history=1)
    vol = np.sqrt(np.einsum("tpp->tp", ewma_covariance(f, 20)))
    cc = ewma_covariance(f, 100)
    sd = np.sqrt(np.einsum("tpp->tp", cc))
    expect = cc / (sd[:, :, None] * sd[:, None, :]) * vol[:, :, None] * vol[:, None, :]
    np.testing.assert_allclose(fc.cov, expect)
    assert (fc.vra_scale == 1).all()


def test_vra_leaves_calibrated_model_unchanged_and_reacts_to_regime():
    rng = np.random.default_rng(4)
    f = rng.standard_normal((2000, 10)) * 0.01
    fc = factor_covariance(f, corr_half_life=240, vol_half_life=60, vra_half_life=20, min_history=100)
    assert np.median(fc.vra_scale[300:]) == pytest.approx(1.0, abs=0.06)
    shocked = f.copy()
    shocked[1500:] *= 3.0  # volatility regime shift: VRA inflates the forecast at once
    fs = factor_covariance(shocked, corr_half_life=240, vol_half_life=60, vra_half_life=20, min_history=100)
    assert fs.vra_scale[1510:1530].mean() > 2.0
    np.testing.assert_array_equal(fs.vra_scale[:1500], fc.vra_scale[:1500])


def test_eigen_adjust_is_seeded_psd_and_inflates_small_eigenvalues():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((8, 8))
    cov = (A @ A.T)[None] * 1e-4
    out = eigenfactor_adjustment(cov, n_sims=200, horizon=40, seed=1)
    np.testing.assert_array_equal(out, eigenfactor_adjustment(cov, n_sims=200, horizon=40, seed=1))
    e0, e1 = np.linalg.eigvalsh(cov[0]), np.linalg.eigvalsh(out[0])
    assert e1.min() > e0.min() and e1.min() > 0
    np.testing.assert_allclose(out[0], out[0].T)


# ----------------------------------------------------------- specific risk
def test_specific_variance_estimates_and_fills():
    rng = np.random.default_rng(6)
    T, N = 600, 50
    sig2 = rng.uniform(1e-4, 9e-4, N)
    e = rng.standard_normal((T, N)) * np.sqrt(sig2)
    e[:590, -1] = np.nan  # a newcomer with 10 observations
    mask = np.ones((T, N), bool)
    d = specific_variance(e, half_life=120, shrinkage=0.0, mask=mask)
    np.testing.assert_allclose(d[-1, :-1], sig2[:-1], rtol=0.35)
    assert d[-1, -1] == pytest.approx(np.median(d[-1, :-1]))
    d1 = specific_variance(e, shrinkage=1.0, buckets=np.r_[np.zeros(25, int), np.ones(25, int)], mask=mask)
    assert np.unique(d1[-1, :25]).size == 1 and np.unique(d1[-1, 25:-1]).size == 1
    tiny = specific_variance(e * 1e-6, mask=mask, floor=1e-6)
    assert np.isnan(tiny[:19]).all() and (tiny[19:] == 1e-6).all()  # NaN until anyone has 20 residuals


# ---------------------------------------------------------- the risk model
@pytest.mark.parametrize("rank", [None, 3])
def test_woodbury_solve_equals_dense(rank):
    m = _random_model(rank=rank)
    S = m.covariance()
    b = np.random.default_rng(7).standard_normal((40, 3))
    np.testing.assert_allclose(m.solve(b), np.linalg.solve(S, b), rtol=1e-8)
    np.testing.assert_allclose(m.solve(b[:, 0]), np.linalg.solve(S, b[:, 0]), rtol=1e-8)
    np.testing.assert_allclose(m.portfolio_variance(b), np.einsum("nm,nk,km->m", b, S, b))
    L = m.factor_loadings()
    np.testing.assert_allclose(L @ L.T, m.exposures @ m.factor_cov @ m.exposures.T, atol=1e-15)
    s = np.linalg.solve(S, np.ones(40))
    np.testing.assert_allclose(m.gmv_weights(), s / s.sum(), rtol=1e-8)


def test_build_risk_models_end_to_end(market):
    m = market
    Xl = lagged(m.exposures)
    w = regression_weights(m.size, m.mask)
    cs = cross_sectional_regression(m.returns, Xl, weights=w, mask=m.mask, sectors=m.sectors)
    full = design_matrix(m.exposures, m.sectors)
    series = build_risk_models(cs, full, mask=m.mask, risk=RiskConfig(min_history=60, corr_half_life=120, vol_half_life=40))
    assert series.valid_days[0] == 60  # day 0 had no regression
    assert series.model(10) is None
    model = series.model(200)
    np.testing.assert_array_equal(model.assets, np.flatnonzero(m.mask[200]))
    np.testing.assert_array_equal(model.exposures, full[200, model.assets])
    # specific variances recover the truth on average
    ratio = model.specific_var / m.spec_var[model.assets]
    assert 0.7 < np.median(ratio) < 1.3
    with pytest.raises(ValueError, match="does not match"):
        build_risk_models(cs, full[:, :, :-1], risk=RiskConfig())
