"""Point-in-time universe selection."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.data.universe import rebalance_days, select_universe


def market(T: int = 120, N: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 20.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    dv = rng.lognormal(10, 1, (T, N)) * np.linspace(1, 3, N)
    close[rng.random((T, N)) < 0.03] = np.nan
    dv[np.isnan(close)] = np.nan
    return close, dv


KW = dict(top_n=4, window=20, min_coverage=0.9, rebalance_every=5)


def test_future_data_does_not_change_past_membership():
    close, dv = market()
    member = select_universe(close, dv, **KW)
    rng = np.random.default_rng(1)
    for t in (19, 37, 64, 100):
        close2, dv2 = close.copy(), dv.copy()
        dv2[t + 1 :] = rng.lognormal(12, 2, dv2[t + 1 :].shape)
        close2[t + 1 :][rng.random(close2[t + 1 :].shape) < 0.5] = np.nan
        member2 = select_universe(close2, dv2, **KW)
        np.testing.assert_array_equal(member2[: t + 1], member[: t + 1])
        assert not np.array_equal(member2, member)


def test_top_n_and_tradable_on_the_day():
    close, dv = market()
    member = select_universe(close, dv, **KW)
    assert member.dtype == bool and member.shape == close.shape
    assert not member[: KW["window"] - 1].any()
    assert (member.sum(axis=1) <= KW["top_n"]).all()
    assert member[KW["window"] - 1 :].sum(axis=1).max() == KW["top_n"]
    assert not (member & np.isnan(close)).any()


def test_selection_matches_hand_computation_and_is_held():
    close, dv = market()
    W, every = KW["window"], KW["rebalance_every"]
    member = select_universe(close, dv, **KW)
    traded = np.isfinite(close) & (np.nan_to_num(dv) > 0)
    for r in rebalance_days(len(close), window=W, rebalance_every=every):
        win = slice(r - W + 1, r + 1)
        cov = traded[win].mean(axis=0)
        mean_dv = np.where(traded[win], np.nan_to_num(dv[win]), 0).sum(axis=0) / traded[win].sum(axis=0)
        eligible = np.flatnonzero(cov >= KW["min_coverage"])
        chosen = eligible[np.argsort(-mean_dv[eligible], kind="stable")[: KW["top_n"]]]
        expected = np.zeros(close.shape[1], bool)
        expected[chosen] = True
        for t in range(r, min(r + every, len(close))):  # held until the next rebalance
            np.testing.assert_array_equal(member[t], expected & traded[t])


def test_low_coverage_excludes_the_most_liquid_stock():
    close, dv = market()
    dv[:, 0] = 1e12  # by far the most liquid ...
    close[::5, 0] = np.nan  # ... but only 80% coverage
    dv[::5, 0] = np.nan
    assert not select_universe(close, dv, **KW)[:, 0].any()
    assert select_universe(close, dv, **{**KW, "min_coverage": 0.8})[KW["window"] - 1 :, 0].sum() > 0


def test_zero_dollar_volume_day_is_not_a_member():
    close, dv = market()
    close[:, 11], dv[:, 11] = 20.0, 1e12
    dv[50, 11] = 0.0  # e.g. a forward-filled day
    member = select_universe(close, dv, **KW)
    assert member[49, 11] and not member[50, 11] and member[51, 11]


def test_invalid_settings_raise():
    close, dv = market()
    with pytest.raises(ValueError, match="min_coverage"):
        select_universe(close, dv, top_n=3, window=20, min_coverage=1.5, rebalance_every=5)
    with pytest.raises(ValueError, match="shape"):
        select_universe(close, dv[:, :3], **KW)
