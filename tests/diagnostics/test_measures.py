"""Identities of the factor-quality measures: IC of a perfect predictor is 1, EVR of orthogonal regressors sums
to R^2, labels are strictly future, the Newey-West t reduces to the plain one without lags."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.diagnostics.measures import (explained_variance_ratio, forward_returns, ic_series, ic_summary, ic_table,
                                            mean_t, newey_west_t, pooled_r2)
from riskstudy.diagnostics.transforms import gram_schmidt


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


def test_forward_returns_are_strictly_future_and_compounded(rng):
    r = rng.normal(0, 0.01, (30, 4))
    f1, f5 = forward_returns(r, 1), forward_returns(r, 5)
    np.testing.assert_allclose(f1[:-1], r[1:])
    np.testing.assert_allclose(f5[3], np.prod(1 + r[4:9], axis=0) - 1)
    assert np.isnan(f5[-5:]).all() and np.isfinite(f5[:-5]).all()
    r2 = r.copy()
    r2[10, 0] = np.nan
    g = forward_returns(r2, 5)
    assert np.isnan(g[5:10, 0]).all() and np.isfinite(g[10, 0]) and np.isfinite(g[4, 0])
    r3 = r.copy()
    r3[3] += 1.0  # changing day 3 moves only the rows whose window holds it
    changed = ~np.isclose(forward_returns(r3, 5), f5, equal_nan=True).all(axis=1)
    assert set(np.flatnonzero(changed)) == {0, 1, 2}


def test_ic_of_a_factor_equal_to_next_day_returns_is_one(rng):
    r = rng.normal(0, 0.01, (40, 25))
    fut = forward_returns(r, 1)
    x = np.stack([fut, -fut, rng.normal(size=fut.shape)], axis=2)
    for rank in (True, False):
        ic = ic_series(x, fut, rank=rank)
        np.testing.assert_allclose(ic[:-1, 0], 1.0)
        np.testing.assert_allclose(ic[:-1, 1], -1.0)
        assert np.isnan(ic[-1]).all() and np.abs(np.nanmean(ic[:, 2])) < 0.1
    table = ic_table(x, r, names=["good", "bad", "noise"], horizons=(1, 5))
    assert table["good"]["ic"] == pytest.approx(1.0) and table["good"]["ic_pearson"] == pytest.approx(1.0)
    assert {"ic_5d", "ic_t_5d", "icir_5d", "ic_pearson_5d"} <= set(table["noise"])


def test_ic_respects_the_mask_and_nan(rng):
    r = rng.normal(0, 0.01, (10, 8))
    fut = forward_returns(r, 1)
    x = fut[..., None].copy()
    x[:, :4] = -x[:, :4]  # perfect on stocks 4.., reversed on 0..3
    mask = np.zeros((10, 8), dtype=bool)
    mask[:, 4:] = True
    np.testing.assert_allclose(ic_series(x, fut, mask=mask)[:-1, 0], 1.0)
    assert np.isnan(ic_series(x, fut, mask=mask, min_stocks=5)[:, 0]).all()


def test_newey_west_without_lags_is_the_plain_t_and_lags_widen_autocorrelated_errors(rng):
    x = rng.normal(0.1, 1.0, (500, 1))
    plain = x.mean() / (x.std() / np.sqrt(len(x)))
    assert newey_west_t(x, lags=0)[0] == pytest.approx(plain)
    assert mean_t(x)[0] == pytest.approx(x.mean() / (x.std(ddof=1) / np.sqrt(len(x))))
    ar = np.zeros(2000)
    e = rng.normal(size=2000)
    for t in range(1, 2000):
        ar[t] = 0.8 * ar[t - 1] + e[t]
    ar += 0.2
    assert abs(newey_west_t(ar, lags=20)[0]) < abs(newey_west_t(ar, lags=0)[0]) / 2
    s = ic_summary(np.c_[ar, ar], horizon=20)
    assert s["ic_t"][0] == pytest.approx(newey_west_t(ar, lags=20)[0])


def _wls(design, r, w):
    """Each day's weighted least squares coefficients ``(T, P)``."""
    sw = np.sqrt(w)[..., None]
    return np.stack([np.linalg.lstsq(sw[t] * design[t], np.sqrt(w[t]) * r[t], rcond=None)[0] for t in range(len(r))])


def test_evr_of_orthogonal_factors_sums_to_r2_and_not_for_correlated_ones(rng):
    T, N, K = 15, 60, 3
    w = rng.uniform(0.5, 2.0, (T, N))
    x = rng.normal(size=(T, N, K))
    x[..., 1] += 0.8 * x[..., 0]
    r = np.einsum("tnk,tk->tn", x, rng.normal(0, 0.01, (T, K))) + rng.normal(0, 0.01, (T, N))
    q, _ = gram_schmidt(x, weights=w)
    design = np.concatenate([np.ones((T, N, 1)), q], axis=2)
    coefs = _wls(design, r, w)
    evr = explained_variance_ratio(design, coefs, r, w)
    assert evr.sum() == pytest.approx(pooled_r2(design, coefs, r, w), rel=1e-10)
    design_c = np.concatenate([np.ones((T, N, 1)), x], axis=2)
    coefs_c = _wls(design_c, r, w)
    assert pooled_r2(design_c, coefs_c, r, w) == pytest.approx(pooled_r2(design, coefs, r, w), rel=1e-10)  # same span
    assert abs(explained_variance_ratio(design_c, coefs_c, r, w).sum() - pooled_r2(design_c, coefs_c, r, w)) > 1e-3
