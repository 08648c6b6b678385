"""Each cleaning rule on crafted series, positive and negative cases."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from riskstudy.data.cleaning import (
    LOG_COLUMNS,
    clean_daily,
    drop_non_positive,
    fill_gaps,
    future_product,
    remove_spikes,
    repair_split_adjustments,
)


def long_frame(series: dict[str, tuple[list[float], list[float]]], splits: dict[str, list[float]] | None = None):
    """Long frame from ``{ticker: (raw close, adjusted close)}`` on business days."""
    parts = []
    for ticker, (close, adjusted) in series.items():
        n = len(close)
        close = np.asarray(close, dtype=float)
        parts.append(
            pd.DataFrame(
                {
                    "instrument": ticker,
                    "date": pd.bdate_range("2020-01-01", periods=n),
                    "open": close, "high": close, "low": close, "close": close,
                    "adjusted_close": np.asarray(adjusted, dtype=float),
                    "volume": 100.0, "dividend_amount": 0.0,
                    "split_coefficient": (splits or {}).get(ticker, [1.0] * n),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


FLAT = [10.0, 10.1, 10.0, 10.2, 10.1, 10.0, 10.1, 10.2]


def test_drop_non_positive_drops_and_logs(caplog):
    frame = long_frame({"A": (FLAT, FLAT), "B": (FLAT, FLAT)})
    frame.loc[3, "close"] = 0.0
    frame.loc[10, "adjusted_close"] = -1.0
    with caplog.at_level(logging.INFO, logger="riskstudy.data.cleaning"):
        out, log = drop_non_positive(frame)
    assert len(out) == len(frame) - 2
    assert list(log.columns) == LOG_COLUMNS
    assert log["instrument"].tolist() == ["A", "B"] and (log["rule"] == "non_positive_price").all()
    assert "non_positive_price" in caplog.text
    clean, log = drop_non_positive(long_frame({"A": (FLAT, FLAT)}))
    assert len(clean) == len(FLAT) and log.empty


def test_one_day_spike_is_dropped():
    adj = FLAT.copy()
    adj[4] = 20.2  # x2 then back (TRMB 2007-02-23)
    out, log = remove_spikes(long_frame({"A": (FLAT, adj)}), threshold=0.5)
    assert len(out) == len(FLAT) - 1 and 20.2 not in out["adjusted_close"].to_numpy()
    assert log["date"].tolist() == [pd.bdate_range("2020-01-01", periods=8)[4]]
    assert (log["rule"] == "spike").all() and (log["action"] == "dropped").all()


def test_two_day_downward_spike_is_dropped():
    adj = FLAT.copy()
    adj[3], adj[4] = 5.0, 5.05  # -51% for two days, then back
    out, log = remove_spikes(long_frame({"A": (FLAT, adj)}), threshold=0.5)
    assert len(out) == len(FLAT) - 2 and len(log) == 2


@pytest.mark.parametrize(
    "adj",
    [
        [10.0, 10.1, 10.0, 10.2, 20.4, 20.2, 20.4, 20.2],  # persistent jump: a real move, not a spike
        [10.0, 10.1, 10.0, 10.2, 20.4, 11.0, 11.1, 11.0],  # comes back only to within 8%
        [10.0, 10.1, 10.0, 7.0, 14.0, 7.05, 7.1, 7.0],  # x2 and back, but not isolated: -30% just before
        [10.0, 10.1, 10.0, 10.2, 13.0, 10.1, 10.2, 10.1],  # +27%: below the 50% threshold
    ],
)
def test_non_spikes_are_kept(adj):
    out, log = remove_spikes(long_frame({"A": (adj, adj)}), threshold=0.5)
    assert len(out) == len(adj) and log.empty


def test_spike_rule_does_not_cross_instruments():
    # A ends high, B starts low: consecutive rows of different instruments are not a spike.
    a = [10.0, 10.1, 10.0, 10.2, 10.1, 10.0, 10.1, 30.0]
    out, log = remove_spikes(long_frame({"A": (a, a), "B": (FLAT, FLAT)}), threshold=0.5)
    assert len(out) == 16 and log.empty


def test_bad_split_adjustment_is_repaired():
    # ANTM 2002-03-18: split_coefficient 2 and adjusted x2 although the raw close barely moves.
    close = [56.6, 56.5, 56.5, 56.9, 58.3, 56.4, 56.4, 57.3]
    adj = [24.15, 24.10, 24.10, 24.27, 49.73, 48.11, 48.11, 48.88]
    split = [1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0]
    frame = long_frame({"A": (close, adj), "B": (FLAT, FLAT)}, splits={"A": split})
    out, log = repair_split_adjustments(frame, threshold=0.5)
    a = out[out["instrument"] == "A"]
    np.testing.assert_allclose(a["adjusted_close"].to_numpy()[:4], np.array(adj[:4]) * 2.0)
    np.testing.assert_array_equal(a["adjusted_close"].to_numpy()[4:], adj[4:])
    assert (a["split_coefficient"] == 1.0).all()
    assert len(log) == 1 and log.loc[0, "action"] == "repaired" and log.loc[0, "instrument"] == "A"
    pd.testing.assert_frame_equal(out[out["instrument"] == "B"], frame[frame["instrument"] == "B"])
    ret = np.diff(np.log(a["adjusted_close"].to_numpy()))
    assert np.abs(ret).max() < 0.05


def test_three_halves_adjustment_one_day_early_is_repaired():
    # ZBRA 2004-08-25: the 3:2 split's factor applied a day before the raw split.
    close = [83.0, 82.6, 83.2, 84.82, 56.45, 57.43]
    adj = [36.89, 36.72, 36.98, 56.55, 56.45, 57.43]
    out, log = repair_split_adjustments(long_frame({"A": (close, adj)}), threshold=0.5)
    np.testing.assert_allclose(out["adjusted_close"].to_numpy()[:3], np.array(adj[:3]) * 1.5)
    assert log["action"].tolist() == ["repaired"]


def test_genuine_moves_and_proper_splits_are_untouched():
    hig_close = [7.5, 7.3, 7.21, 14.59, 15.0, 15.5]  # +102% in the raw close as well (HIG 2008-12-05)
    split_close = [100.0, 101.0, 50.6, 51.0, 50.0, 49.0]  # a real 2:1 split, adjusted smooth
    split_adj = [50.0, 50.5, 50.6, 51.0, 50.0, 49.0]
    frame = long_frame({"HIG": (hig_close, hig_close), "S": (split_close, split_adj)},
                       splits={"S": [1.0, 1.0, 2.0, 1.0, 1.0, 1.0]})
    out, log = repair_split_adjustments(frame, threshold=0.5)
    pd.testing.assert_frame_equal(out, frame)
    assert log.empty


def test_unrepairable_adjustment_jump_is_kept_and_logged():
    # MSI 2011-01-04: 1:7 reverse split plus an unadjusted spin-off: adjusted -38%, no split ratio.
    close = [9.0, 9.1, 9.11, 39.77, 39.83, 40.0]
    adj = [52.1, 52.7, 52.75, 32.90, 32.95, 33.1]
    frame = long_frame({"A": (close, adj)})
    out, log = repair_split_adjustments(frame, threshold=0.5)
    pd.testing.assert_frame_equal(out, frame)
    assert log["action"].tolist() == ["kept"]


def test_clean_daily_applies_spike_before_split_rule():
    adj = FLAT.copy()
    adj[4] = 20.2  # an x2 jump that reverses is a spike, not a split to repair
    out, log = clean_daily(long_frame({"A": (FLAT, adj)}), jump_threshold=0.5)
    assert log["rule"].tolist() == ["spike"]
    np.testing.assert_array_equal(out["adjusted_close"].to_numpy(), np.delete(adj, 4))


def test_future_product_matches_naive_loop():
    rng = np.random.default_rng(0)
    values = rng.choice([1.0, 1.0, 1.0, 2.0, 3.0, 0.5], size=40)
    group = np.repeat([0, 1, 2, 3], 10)
    expected = np.array([np.prod(values[i + 1 : (group[i] + 1) * 10]) for i in range(40)])
    np.testing.assert_array_equal(future_product(values, group), expected)


def _fields(close: np.ndarray) -> dict[str, np.ndarray]:
    traded = np.isfinite(close)
    return {
        "open": close * 0.99, "high": close * 1.01, "low": close * 0.98, "close": close,
        "volume": np.where(traded, 10.0, np.nan), "dollar_volume": np.where(traded, close * 10.0, np.nan),
    }


def test_fill_gaps_limit_and_listing_bounds():
    n = np.nan
    close = np.array(
        [
            [n, 1.0, 1.0],
            [n, n, 2.0],
            [5.0, n, n],
            [6.0, n, n],  # col 1: gap of 3 (filled); col 2: last valid at row 1 (never filled)
            [n, 3.0, n],
            [n, 4.0, n],
            [n, n, n],
            [n, n, n],
            [9.0, n, n],  # col 0: gap of 4 > max_ffill (not filled); starts at row 2 (nothing before)
            [10.0, 5.0, n],
        ]
    )
    fields = _fields(close)
    dates = pd.bdate_range("2020-01-01", periods=10)
    out, log = fill_gaps(fields, dates=dates, instruments=pd.Index(["A", "B", "C"]), max_ffill=3)
    filled = np.isfinite(out["close"]) & ~np.isfinite(close)
    assert filled.nonzero()[0].tolist() == [1, 2, 3, 6, 7, 8] and filled.nonzero()[1].tolist() == [1, 1, 1, 1, 1, 1]
    np.testing.assert_array_equal(out["close"][1:4, 1], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out["open"][1:4, 1], [1.0, 1.0, 1.0])
    assert (out["volume"][filled] == 0).all() and (out["dollar_volume"][filled] == 0).all()
    assert np.isnan(out["close"][:2, 0]).all() and np.isnan(out["close"][4:8, 0]).all()
    assert np.isnan(out["close"][2:, 2]).all()
    assert log["instrument"].tolist() == ["B", "B"] and log["date"].tolist() == [dates[1], dates[6]]
    assert np.isnan(fields["close"][1, 1])  # input untouched
    out0, log0 = fill_gaps(fields, dates=dates, instruments=pd.Index(["A", "B", "C"]), max_ffill=0)
    np.testing.assert_array_equal(out0["close"], close)
    assert log0.empty
