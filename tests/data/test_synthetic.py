"""Tests of the planted-factor synthetic market: shapes, determinism and that the
stored ground truth really is the conditional covariance of the simulated returns."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.data.panel import NUMERIC_FIELDS
from riskstudy.data.synthetic import SyntheticMarket, make_synthetic_market

T, N, K_STYLE, N_SECTORS = 1500, 120, 3, 4


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return make_synthetic_market(n_days=T, n_stocks=N, n_factors=K_STYLE, n_sectors=N_SECTORS, seed=7)


def test_shapes_and_panel(market: SyntheticMarket) -> None:
    K = K_STYLE + N_SECTORS
    p = market.panel
    assert p.market == "synthetic" and p.shape == (T, N)
    assert set(NUMERIC_FIELDS) <= set(p.fields)
    assert market.characteristics.shape[:2] == (T, N)
    assert market.exposures.shape == (T, N, K) and market.factor_returns.shape == (T, K)
    assert market.factor_cov.shape == (T, K, K) and market.specific_var.shape == (T, N)
    assert len(market.factor_names) == K and market.regime.shape == (T,)
    # sector labels match the one-hot sector exposures
    codes, labels = p.sector_codes()
    assert len(labels) == N_SECTORS
    np.testing.assert_array_equal(market.exposures[0, :, K_STYLE:].argmax(1), codes)
    # stocks enter and leave; prices exist exactly on listed (member) days
    assert (~p.member[0]).any() and (~p.member[-1]).any() and p.member.all(axis=0).any()
    np.testing.assert_array_equal(np.isfinite(p["close"]), p.member)
    ok = p.member
    assert np.all(p["low"][ok] <= np.minimum(p["open"], p["close"])[ok])
    assert np.all(p["high"][ok] >= np.maximum(p["open"], p["close"])[ok])
    np.testing.assert_allclose(p["dollar_volume"][ok], (p["close"] * p["volume"])[ok])
    dv = np.nanmedian(p["dollar_volume"], axis=0)
    assert np.nanquantile(dv, 0.95) / np.nanquantile(dv, 0.05) > 20  # heavy-tailed size distribution


def test_deterministic_under_seed(market: SyntheticMarket) -> None:
    again = make_synthetic_market(n_days=T, n_stocks=N, n_factors=K_STYLE, n_sectors=N_SECTORS, seed=7)
    other = make_synthetic_market(n_days=T, n_stocks=N, n_factors=K_STYLE, n_sectors=N_SECTORS, seed=8)
    np.testing.assert_array_equal(again.panel["close"], market.panel["close"])
    np.testing.assert_array_equal(again.exposures, market.exposures)
    assert not np.allclose(other.factor_returns, market.factor_returns)


def test_returns_are_the_factor_model(market: SyntheticMarket) -> None:
    """``ret_t = B_t f_t + eps_t`` with ``eps_t / sqrt(d_t)`` standard normal."""
    p = market.panel
    resid = p["ret"] - np.einsum("tnk,tk->tn", market.exposures, market.factor_returns)
    z = (resid / np.sqrt(market.specific_var))[np.isfinite(resid)]
    assert abs(z.mean()) < 0.02 and abs(z.var() - 1.0) < 0.03


def test_truth_is_psd_and_factor_form_equals_dense(market: SyntheticMarket) -> None:
    assert np.linalg.eigvalsh(market.factor_cov).min() > 0
    assert market.specific_var.min() > 0
    rng = np.random.default_rng(0)
    for t in (0, T // 2, T - 1):
        B, F, D = market.true_covariance(t)
        S = market.dense_covariance(t)
        np.testing.assert_allclose(S, S.T)
        assert np.linalg.eigvalsh(S).min() > 0
        w = rng.standard_normal((N, 5))
        bw = B.T @ w  # (K, 5): w' B F B' w + w' D w without forming N x N
        via_factors = (bw * (F @ bw)).sum(0) + (D[:, None] * w**2).sum(0)
        np.testing.assert_allclose(via_factors, np.einsum("np,nm,mp->p", w, S, w), rtol=1e-10)


def test_realised_variance_matches_predicted(market: SyntheticMarket) -> None:
    """Bias statistic: random portfolios' standardised returns ``w'(r_t - B_t mu) / sqrt(w' S_t w)``
    have unit variance over many days (the truth is the conditional covariance)."""
    p = market.panel
    keep = p.member.all(axis=0)  # stocks listed throughout
    r = p["ret"][1:, keep]
    B, F, D = market.exposures[1:, keep], market.factor_cov[1:], market.specific_var[1:, keep]
    w = np.random.default_rng(1).standard_normal((r.shape[1], 30))
    wb = np.einsum("tnk,np->tpk", B, w)
    pred = np.einsum("tpk,tkl,tpl->tp", wb, F, wb) + np.einsum("tn,np->tp", D, w**2)
    z = (r @ w - wb @ market.factor_mean) / np.sqrt(pred)
    bias = z.var(axis=0)
    assert abs(bias.mean() - 1.0) < 0.08 and np.all(np.abs(bias - 1.0) < 0.25)
    # the stress regime is visited and roughly doubles volatility
    stress = market.regime[1:] == 1
    assert 0.05 < stress.mean() < 0.5
    trace = np.trace(market.factor_cov[1:], axis1=1, axis2=2)
    assert np.median(trace[stress]) > 3.0 * np.median(trace[~stress])


def _linear_r2(X: np.ndarray, y: np.ndarray) -> float:
    X = np.column_stack([np.ones(len(X)), X])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return 1.0 - np.var(y - X @ coef) / np.var(y)


def test_exposures_are_lagged_nonlinear_and_time_varying(market: SyntheticMarket) -> None:
    C = market.characteristics
    M = C.shape[2]
    for k in range(K_STYLE):
        y = market.exposures[1:, :, k].reshape(-1)
        lagged = _linear_r2(C[:-1].reshape(-1, M), y)
        same_day = _linear_r2(C[1:].reshape(-1, M), y)
        assert lagged < 0.95  # not linear in the characteristics
        assert lagged > same_day  # B_t is a function of day t-1's characteristics
    # exposures change within a stock over time, slowly
    style = market.exposures[:, :, :K_STYLE]
    assert np.std(style, axis=0).mean() > 0.1
    assert np.mean(np.abs(np.diff(style, axis=0))) < 0.2 * np.mean(np.abs(style))
