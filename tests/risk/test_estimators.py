import numpy as np
import pytest

from riskstudy.risk.estimators import (
    DenseRiskModel,
    ledoit_wolf_covariance,
    poet_covariance,
    sample_covariance,
    trailing_covariance,
)


def test_sample_and_ledoit_wolf(one_factor):
    r, _ = one_factor
    x = r[:100]
    np.testing.assert_allclose(sample_covariance(x), np.cov(x, rowvar=False, bias=True))
    lw = ledoit_wolf_covariance(x)
    s = sample_covariance(x)
    assert np.trace(lw) == pytest.approx(np.trace(s))  # shrinks toward mu*I with the same trace
    assert np.linalg.eigvalsh(lw).min() > np.linalg.eigvalsh(s).min()


def test_poet_structure(one_factor):
    r, _ = one_factor
    x = r[:100] - r[:100].mean(axis=0)
    sigma = poet_covariance(x, n_factors=1, thresh=1e6)  # huge threshold: diagonal residual
    np.testing.assert_allclose(sigma, sigma.T)
    np.testing.assert_allclose(np.diag(sigma), np.diag(sample_covariance(x)), rtol=1e-8)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    low = np.outer(vt[0], vt[0]) * s[0] ** 2 / len(x)
    off = ~np.eye(40, dtype=bool)
    np.testing.assert_allclose(sigma[off], low[off], rtol=1e-6, atol=1e-12)


def test_trailing_covariance_window_and_no_lookahead(one_factor):
    r, _ = one_factor
    assert trailing_covariance(r, 50, window=100) is None
    m = trailing_covariance(r, 150, method="sample", window=100)
    x = r[51:151]
    np.testing.assert_allclose(m.cov, np.cov(x, rowvar=False, bias=True))
    future = r.copy()
    future[151:] = 0.0
    np.testing.assert_array_equal(trailing_covariance(future, 150, method="sample", window=100).cov, m.cov)
    mask = np.ones_like(r, bool)
    mask[150, :5] = False
    assert trailing_covariance(r, 150, window=100, mask=mask).assets[0] == 5
    with pytest.raises(ValueError, match="unknown method"):
        trailing_covariance(r, 150, method="magic")


def test_dense_model_solve_and_gmv(one_factor):
    r, _ = one_factor
    cov = sample_covariance(r[:200])
    m = DenseRiskModel(cov)
    b = np.arange(40.0)
    np.testing.assert_allclose(m.solve(b), np.linalg.solve(cov, b), rtol=1e-8)
    s = np.linalg.solve(cov, np.ones(40))
    np.testing.assert_allclose(m.gmv_weights(), s / s.sum(), rtol=1e-8)
    w = np.full(40, 1 / 40)
    assert m.portfolio_variance(w) == pytest.approx(w @ cov @ w)


def test_sample_covariance_refused_when_window_not_longer_than_universe(one_factor):
    """Issue 9.7: 40 stocks from a 40-day (or shorter) window is singular; refused, not ridged."""
    r, _ = one_factor
    for window in (40, 30):
        with pytest.raises(ValueError, match="singular"):
            trailing_covariance(r, 150, method="sample", window=window)
    m = trailing_covariance(r, 150, method="sample", window=41)  # 41 rows, rank 40: defined
    assert np.linalg.eigvalsh(m.cov).min() > 0
    # Ledoit-Wolf stays defined (positive definite) on the short window
    lw = trailing_covariance(r, 150, method="ledoit_wolf", window=30)
    assert np.linalg.eigvalsh(lw.cov).min() > 0
    assert np.isfinite(lw.gmv_weights()).all()


def test_dense_model_singular_covariance_raises_instead_of_ridge(one_factor):
    """No silent ridge: a singular dense covariance has no GMV portfolio."""
    r, _ = one_factor
    x = r[:20] - r[:20].mean(axis=0)  # 20 observations of 40 stocks: rank 19
    m = DenseRiskModel(sample_covariance(x))
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        m.gmv_weights()
