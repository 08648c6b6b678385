"""Fama-French time-series baselines: exact betas and R^2 = 1 on a planted panel r = beta'f, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskstudy.cae import scores
from riskstudy.cae.characteristics import build_characteristics
from riskstudy.cae.famafrench_model import (daily_factors, ff_prediction_table, ff_predictions, past_mean,
                                            period_factor_returns, trailing_betas)
from riskstudy.data.market import MarketData
from riskstudy.data.panel import Panel

WINDOW = 42


def planted_market(ret: np.ndarray, dates: pd.DatetimeIndex) -> MarketData:
    T, N = ret.shape
    close = 50.0 * np.cumprod(1.0 + np.nan_to_num(ret), axis=0)
    vol = np.full((T, N), 1e5)
    fields = {"open": close, "high": close, "low": close, "close": close, "volume": vol, "ret": ret,
              "dollar_volume": vol * close}
    panel = Panel(market="planted", dates=dates, instruments=[f"S{i}" for i in range(N)], fields=fields,
                  member=np.isfinite(ret))
    return MarketData(panel, pd.Series(np.nan_to_num(ret).mean(1), index=dates), "planted")


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2001-01-01", periods=260)
    T, N, F = len(dates), 25, 3
    f = 0.01 * rng.standard_normal((T, F))
    beta = rng.uniform(-1, 2, (N, F))
    ret = f @ beta.T
    ret[0] = np.nan
    ret[:, 3][:100] = np.nan  # a late listing: no betas until 2/3 of a window is seen
    ff = pd.DataFrame(f, index=dates, columns=["Mkt-RF", "SMB", "HML"])
    md = planted_market(ret, dates)
    return md, build_characteristics(md, beta_window=30, idio_window=30), ff, beta


def test_betas_are_exact_and_trailing(planted):
    md, ch, ff, beta = planted
    f = daily_factors(ff, md.panel.dates)
    b = trailing_betas(md.panel["ret"], f, ch.rows, window=WINDOW)
    assert b.shape == (len(ch.rows), 25, 3)
    full = ch.rows >= WINDOW  # rows 1.. of the window finite (row 0 NaN): 41 >= 2/3 of 42
    assert np.isnan(b[~full]).all()
    np.testing.assert_allclose(b[full][:, np.r_[0:3, 4:25]], np.broadcast_to(beta[np.r_[0:3, 4:25]],
                               (full.sum(), 24, 3)), atol=1e-10)
    late = np.isfinite(b[:, 3, 0])
    assert late.any() and (ch.rows[late] - 99 >= 2 / 3 * WINDOW).all()  # stock 3 only with enough days


def test_total_r2_is_one_when_returns_are_beta_f(planted):
    md, ch, ff, _ = planted
    s = ff_predictions(md, ch, ff, window=WINDOW, aggregate="sum")
    ok = ch.mask & np.isfinite(s.betas).all(-1)
    summed = period_factor_returns(md.panel["ret"], ch.rows, aggregate="sum")  # labels summed the same way
    assert scores.r2(summed, s.total, ok) == pytest.approx(1.0, abs=1e-12)
    c = ff_predictions(md, ch, ff, window=WINDOW)  # compounded, as the labels: second-order gap only
    assert 0.99 < scores.r2(ch.R, c.total, ok) < 1.0
    assert 0.0 < c.coverage < 1.0
    # predictive: the running mean of earlier periods' factors
    np.testing.assert_allclose(c.lam[3], np.nanmean(c.factors[:3], 0))
    assert np.isnan(past_mean(c.factors)[0]).all()
    tot, pred, cov = ff_prediction_table(md, ch, {"FF3": ff}, window=WINDOW)
    assert set(tot) == {"FF3"} and set(tot["FF3"]) == {3} and cov["FF3"] == c.coverage
    np.testing.assert_allclose(pred["FF3"][3], c.predictive)


def test_no_look_ahead(planted):
    md, ch, ff, _ = planted
    j = 6
    cut = ch.rows[j]  # corrupt every row after the close of period end j
    ret = md.panel["ret"].copy()
    ret[cut + 1:] = 0.05 * np.random.default_rng(1).standard_normal(ret[cut + 1:].shape)
    bad_ff = ff.copy()
    bad_ff.iloc[cut + 1:] = 0.05 * np.random.default_rng(2).standard_normal(bad_ff.iloc[cut + 1:].shape)
    a = ff_predictions(md, ch, ff, window=WINDOW)
    b = ff_predictions(planted_market(ret, md.panel.dates), ch, bad_ff, window=WINDOW)
    np.testing.assert_array_equal(a.betas[:j + 1], b.betas[:j + 1])
    np.testing.assert_array_equal(a.predictive[:j + 1], b.predictive[:j + 1])  # lambda_j uses periods < j
    np.testing.assert_array_equal(a.total[:j], b.total[:j])  # total_j uses period j's realised factors
    assert not np.allclose(a.total[j], b.total[j])
