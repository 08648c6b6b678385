"""Characteristics at period ends: point in time, ranks in [-1, 1], labels are next-period returns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskstudy.cae.characteristics import (NAMES, build_characteristics, managed_portfolios, market_return,
                                           period_ends, rank_to_unit)
from riskstudy.data.market import MarketData
from riskstudy.data.panel import Panel, returns_from_close
from riskstudy.data.synthetic import make_synthetic_market


@pytest.fixture(scope="module")
def md() -> MarketData:
    return make_synthetic_market(n_days=900, n_stocks=30, n_factors=1, n_sectors=2, seed=0).market_data()


def _with_future_changed(md: MarketData, row: int) -> MarketData:
    """The same market with every price and volume after panel row ``row`` changed."""
    p = md.panel
    rng = np.random.default_rng(1)
    fields = {k: v.copy() for k, v in p.fields.items()}
    shock = np.exp(rng.normal(0, 0.2, fields["close"][row + 1:].shape))
    for k in ("open", "high", "low", "close"):
        fields[k][row + 1:] *= np.cumprod(shock, axis=0)
    fields["volume"][row + 1:] *= 7.0
    fields["dollar_volume"][row + 1:] = fields["volume"][row + 1:] * fields["close"][row + 1:]
    fields["ret"] = returns_from_close(fields["close"])
    panel = Panel(p.market, p.dates, p.instruments, fields, p.member, p.sector)
    return MarketData(panel=panel, benchmark=md.benchmark, benchmark_name=md.benchmark_name)


def test_no_look_ahead(md):
    ch = build_characteristics(md)
    j = 30
    changed = build_characteristics(_with_future_changed(md, ch.rows[j]))
    np.testing.assert_array_equal(changed.Z[:j + 1], ch.Z[:j + 1])  # characteristics at t use data up to t
    np.testing.assert_array_equal(changed.R[:j], ch.R[:j])  # labels before end j end by row e_j
    assert not np.allclose(changed.R[j], ch.R[j], equal_nan=True)  # the label of end j is the next period's
    assert not np.array_equal(changed.Z[j + 1], ch.Z[j + 1])


def test_ranks_in_unit_interval_missing_zero_and_counted(md):
    ch = build_characteristics(md)
    T, N, P = ch.shape
    assert ch.names == list(NAMES) and P == 16
    assert ch.Z.min() >= -1.0 and ch.Z.max() <= 1.0 and np.isfinite(ch.Z).all()
    assert (ch.Z[~ch.member] == 0).all()
    j = T - 2  # late: every characteristic has its history
    i = ch.names.index("mom1m")
    z = ch.Z[j, ch.member[j], i]
    assert z.min() == -1.0 and z.max() == 1.0
    np.testing.assert_allclose(np.sort(z), np.linspace(-1, 1, len(z)))  # distinct values: evenly spaced ranks
    k = ch.names.index("mom36m")  # needs 36 months of history: missing (0) early on, and counted
    assert ch.missing[5, k] == ch.member[5].sum() and (ch.Z[5, :, k] == 0).all()
    assert ch.missing[j].sum() < ch.missing[5].sum()
    assert 0 < ch.missing_share()["mom36m"] < 1


def test_rank_ties_and_single_member():
    x = np.array([[[1.0], [1.0], [3.0], [np.nan]], [[5.0], [2.0], [2.0], [2.0]]])  # (T=2, N=4, P=1)
    member = np.array([[True, True, True, True], [True, False, False, False]])
    z, missing = rank_to_unit(x, member)
    np.testing.assert_allclose(z[0, :, 0], [-0.5, -0.5, 1.0, 0.0])  # ties share the average rank
    np.testing.assert_allclose(z[1, :, 0], 0.0)  # one member: no spread
    assert missing.tolist() == [[1], [0]]


def test_definitions_on_one_stock(md):
    ch = build_characteristics(md)
    p = md.panel
    j, i = len(ch.rows) - 2, 3
    e = ch.rows[j]
    r = p["ret"][:, i]
    raw_mom = np.prod(1 + np.nan_to_num(r[e - 20:e + 1])) - 1
    raw_all = np.array([np.prod(1 + np.nan_to_num(p["ret"][e - 20:e + 1, s])) - 1 for s in range(p.shape[1])])
    mem = ch.member[j]
    expected = 2 * (pd.Series(raw_all[mem]).rank().to_numpy() - 1) / (mem.sum() - 1) - 1
    np.testing.assert_allclose(ch.Z[j, mem, ch.names.index("mom1m")], expected)
    assert np.isclose(raw_all[i], raw_mom)
    # label: compounded return over the next period
    nxt = ch.rows[j + 1]
    assert np.isclose(ch.R[j, i], np.prod(1 + r[e + 1:nxt + 1]) - 1)
    assert np.isnan(ch.R[-1]).all() and not ch.mask[-1].any()


def test_beta_is_the_market_regression_slope(md):
    from riskstudy.cae.characteristics import raw_characteristics

    p = md.panel
    e = period_ends(p.dates)[-2:-1]
    x, names = raw_characteristics(md, e)
    mkt = market_return(md)
    s = slice(e[0] - 251, e[0] + 1)
    r = p["ret"][s, 0]
    ok = np.isfinite(r)
    slope = np.polyfit(mkt[s][ok], r[ok], 1)[0]
    assert np.isclose(x[0, 0, names.index("beta")], slope)
    med = np.median(x[0, p.member[e[0]], names.index("beta")])  # the period's median beta among members
    assert np.isclose(x[0, 0, names.index("betasq")], (slope - med) ** 2)
    resid = r[ok] - np.polyval(np.polyfit(mkt[s][ok], r[ok], 1), mkt[s][ok])
    assert np.isclose(x[0, 0, names.index("idiovol")], np.sqrt((resid**2).sum() / (ok.sum() - 2)))


def test_no_sectors_omits_indmom_and_weekly_factors_option(md):
    p = md.panel
    panel = Panel("cn", p.dates, p.instruments, p.fields, p.member, None)
    cn = MarketData(panel=panel, benchmark=md.benchmark, benchmark_name="x")
    ch = build_characteristics(cn)
    assert "indmom" not in ch.names and len(ch.names) == 15
    ff = pd.DataFrame(np.random.default_rng(0).normal(0, 0.01, (len(p.dates), 3)), index=p.dates,
                      columns=["Mkt-RF", "SMB", "HML"])
    wk = build_characteristics(md, frequency="weekly", factors=ff, market="value")
    assert wk.shape[0] > 4 * ch.shape[0] and (wk.dates.dayofweek <= 4).all()
    assert not np.array_equal(wk.Z[-2, :, wk.names.index("idiovol")], 0)


def test_managed_portfolios_are_cross_sectional_regressions(md):
    ch = build_characteristics(md)
    x = managed_portfolios(ch.Z, ch.R, ch.mask)
    j = len(ch.rows) - 2
    m = ch.mask[j]
    zt = np.column_stack([ch.Z[j, m], np.ones(m.sum())])
    np.testing.assert_allclose(x[j], np.linalg.lstsq(zt, ch.R[j, m], rcond=None)[0], atol=1e-10)
