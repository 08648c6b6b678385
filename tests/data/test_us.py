"""US reader: Alpha Vantage CSVs -> cleaned, adjusted Panel; the benchmark proxy."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from riskstudy.data.panel import Panel, returns_from_close
from riskstudy.data.us import (
    MalformedFileError,
    adjust_prices,
    load_us_panel,
    read_alpha_vantage_csv,
    read_us_daily,
    ticker_from_path,
    us_benchmark_returns,
)
from tests.realdata import real_raw_dir

from ._us_fixture import av_frame, random_market, write_av, write_text

PANEL_KW = dict(top_n=2, universe_window=10, min_coverage=0.9, rebalance_every=5, max_ffill=3, jump_threshold=0.5)
STUB = '{\n    "Error Message": "Invalid API call."\n}\n'


def test_ticker_from_path():
    assert ticker_from_path("/x/DA-BF.B-T-2021-04-21.csv") == "BF.B"
    assert ticker_from_path("DA-A-T-2021-04-21.csv") == "A"
    with pytest.raises(ValueError, match="not a DA-"):
        ticker_from_path("AAPL.csv")


def test_split_and_dividend_adjustment_is_exact(tmp_path):
    dates = pd.bdate_range("2020-01-06", periods=6)
    close = np.array([100.0, 102.0, 51.0, 52.0, 50.0, 51.0])
    k = 1.0 - 1.0 / 52.0  # dividend 1.0 ex on day 4, close before it 52
    adjusted = np.array([100 / 2 * k, 102 / 2 * k, 51 * k, 52 * k, 50.0, 51.0])  # 2:1 split ex on day 2
    volume = np.array([1000.0, 1100.0, 2400.0, 2300.0, 2000.0, 2100.0])
    split = np.array([1.0, 1.0, 2.0, 1.0, 1.0, 1.0])
    dividend = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    write_av(tmp_path, "X", av_frame(dates, close, adjusted=adjusted, volume=volume, dividend=dividend, split=split))

    frame, log = read_us_daily(tmp_path)
    assert log.empty
    adj = adjust_prices(frame)
    np.testing.assert_allclose(adj["close"], adjusted, rtol=1e-14)
    np.testing.assert_allclose(adj["open"], 0.99 * adjusted, rtol=1e-14)
    np.testing.assert_allclose(adj["high"], 1.01 * adjusted, rtol=1e-14)
    np.testing.assert_allclose(adj["low"], 0.98 * adjusted, rtol=1e-14)
    np.testing.assert_array_equal(adj["volume"], [2000.0, 2200.0, 2400.0, 2300.0, 2000.0, 2100.0])  # splits only
    np.testing.assert_array_equal(adj["dollar_volume"], close * volume)

    kw = {**PANEL_KW, "top_n": 1, "universe_window": 2}
    panel = load_us_panel(tmp_path, start="2020-01-01", end="2020-12-31", **kw)
    assert panel.market == "us" and panel.instruments.tolist() == ["X"] and panel.sector is None
    np.testing.assert_allclose(panel["close"][:, 0], adjusted, rtol=1e-14)
    np.testing.assert_array_equal(panel["ret"], returns_from_close(panel["close"]))
    assert panel.member[1:].all() and not panel.member[0].any()
    assert panel.cleaning_log.empty


def test_read_sorts_newest_first_files(tmp_path):
    dates = pd.bdate_range("2020-01-06", periods=4)
    frame = av_frame(dates, [10.0, 11.0, 12.0, 13.0]).iloc[::-1]
    out = read_alpha_vantage_csv(write_av(tmp_path, "X", frame))
    assert out["date"].is_monotonic_increasing and out["close"].tolist() == [10.0, 11.0, 12.0, 13.0]


def test_stub_file_is_skipped_with_a_warning(tmp_path, caplog):
    random_market(tmp_path)
    write_text(tmp_path, "BF.B", STUB)
    with caplog.at_level(logging.WARNING):
        panel = load_us_panel(tmp_path, start="2020-01-01", end="2020-12-31", **PANEL_KW)
    assert any(r.levelno == logging.WARNING and "BF.B" in r.getMessage() for r in caplog.records)
    log = panel.cleaning_log
    assert log[log["instrument"] == "BF.B"][["rule", "action"]].values.tolist() == [["empty_file", "skipped"]]
    assert "BF.B" not in panel.instruments


GOOD = "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n" + "".join(
    f"2020-01-0{d},10.0,10.5,9.5,10.0,10.0,100,0.0,1.0\n" for d in range(2, 10)
)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GOOD.replace("2020-01-04,10.0,10.5", "2020-01-04,10.0,1,10.5"), "line 4"),  # a field too many
        (GOOD.replace("2020-01-03,10.0,10.5,9.5,10.0", "2020-01-03,10.0,10.5,9.5,abc"), "line 3: non-numeric close"),
        (GOOD.rsplit("\n", 2)[0] + "\n2020-01-09,10.0,10.5\n", "line 9"),  # truncated last line
        (GOOD.replace("2020-01-05,10.0,10.5,9.5,10.0,10.0,100,0.0,1.0", "2020-01-05,10.0,10.5,9.5,10.0,,100,0.0,1.0"),
         "line 5"),  # empty field
        (GOOD.replace("2020-01-06", "2020-13-06"), "line 6: bad timestamp"),
        (GOOD.replace("2020-01-07", "2020-01-06"), "line 7: duplicate"),
        (GOOD.replace("adjusted_close", "adj_close"), "line 1"),
    ],
)
def test_malformed_file_error_names_file_and_line(tmp_path, text, where):
    random_market(tmp_path)
    path = write_text(tmp_path, "BAD", text)
    with pytest.raises(MalformedFileError) as err:
        load_us_panel(tmp_path, start="2020-01-01", end="2020-12-31", **PANEL_KW)
    assert path.name in str(err.value) and where in str(err.value)


def test_malformed_file_is_skipped_on_request(tmp_path, caplog):
    random_market(tmp_path)
    write_text(tmp_path, "BAD", GOOD.replace("2020-01-03,10.0,10.5,9.5,10.0", "2020-01-03,10.0,10.5,9.5,abc"))
    with caplog.at_level(logging.ERROR):
        panel = load_us_panel(tmp_path, start="2020-01-01", end="2020-12-31", on_error="skip", **PANEL_KW)
    log = panel.cleaning_log
    assert log[log["instrument"] == "BAD"]["rule"].tolist() == ["malformed_file"]
    assert "line 3" in log[log["instrument"] == "BAD"]["detail"].iloc[0] and "BAD" in caplog.text
    assert panel.shape[1] == 2


def test_panel_universe_gaps_and_sectors(tmp_path):
    dates = random_market(tmp_path, n_tickers=4, n_days=60)
    # T1: a 2-day hole (forward-filled, no trade) and delisted 10 days before the end
    t1 = pd.read_csv(tmp_path / "sp500_daily/daily_adjusted/DA-T1-T-2021-04-21.csv")
    t1.drop(index=[30, 31] + list(range(50, 60))).to_csv(
        tmp_path / "sp500_daily/daily_adjusted/DA-T1-T-2021-04-21.csv", index=False
    )
    # T1 is in constituents.csv, so ending 10 days early reads as truncated unless the tolerance allows it
    panel = load_us_panel(tmp_path, start=str(dates[5].date()), end=str(dates[-1].date()), max_tail_gap=10,
                          **PANEL_KW)
    assert panel.dates.equals(dates[5:])
    assert panel.instruments.tolist() == ["T0", "T1", "T2"]  # T3 never ranks in the top 2
    assert panel.sector.tolist() == ["Energy", "Financials", "Energy"]
    assert np.isnan(panel["ret"][0]).all()
    c1 = panel.frame("close")["T1"]
    assert (c1.iloc[25:27] == c1.iloc[24]).all() and (panel.frame("volume")["T1"].iloc[25:27] == 0).all()
    assert c1.iloc[45:].isna().all()  # no fill past the last listed day
    m = panel.frame("member")
    assert not m["T1"].iloc[25:27].any() and not m["T1"].iloc[45:].any()
    # first rebalance on row 9 of the full history (row 4 here); every 5 rows; T1 held but not
    # traded in its hole and from its delisting (row 45) to the next rebalance (row 49, when T2 replaces it)
    count = m.sum(axis=1).to_numpy()
    assert (count[:4] == 0).all() and count[[25, 26, 45, 46, 47, 48]].tolist() == [1] * 6
    assert (np.delete(count, [25, 26, 45, 46, 47, 48])[4:] == 2).all() and m["T2"].iloc[49:].all()
    assert (panel.cleaning_log["rule"] == "ffill").sum() == 1


def test_missing_ticker_and_duplicate_files(tmp_path):
    random_market(tmp_path, n_tickers=2)
    with pytest.raises(FileNotFoundError, match="ZZZ"):
        read_us_daily(tmp_path, tickers=["T0", "ZZZ"])
    frame, _ = read_us_daily(tmp_path, tickers=["T1"])
    assert set(frame["instrument"]) == {"T1"}
    (tmp_path / "sp500_daily/daily_adjusted/DA-T0-T-2021-04-21.csv").rename(
        tmp_path / "sp500_daily/daily_adjusted/DA-T0-T-2020-01-01.csv"
    )
    write_av(tmp_path, "T0", av_frame(pd.bdate_range("2020-01-01", periods=3), [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="Two files for ticker T0"):
        read_us_daily(tmp_path)


def _toy_panel(seed: int = 0, T: int = 60, N: int = 5) -> Panel:
    rng = np.random.default_rng(seed)
    close = 10.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    dv = rng.lognormal(10, 1, (T, N))
    fields = {"open": close, "high": close, "low": close, "close": close, "volume": dv / close,
              "dollar_volume": dv, "ret": returns_from_close(close)}
    member = rng.random((T, N)) < 0.7
    return Panel("us", pd.bdate_range("2020-01-01", periods=T), [f"S{i}" for i in range(N)], fields, member)


def test_benchmark_uses_only_past_weights():
    panel = _toy_panel()
    bench = us_benchmark_returns(panel, window=21)
    t = 40
    dv, ret, m = panel["dollar_volume"], panel["ret"], panel.member
    w = dv[t - 21 : t].mean(axis=0) * m[t]
    assert bench.iloc[t] == pytest.approx((w * ret[t]).sum() / w.sum(), rel=1e-12)
    assert np.isnan(bench.iloc[0]) and bench.index.equals(panel.dates)

    panel.fields["dollar_volume"] = dv.copy()
    panel.fields["dollar_volume"][t:] *= np.random.default_rng(1).lognormal(0, 2, dv[t:].shape)  # change day t on
    bench2 = us_benchmark_returns(panel, window=21)
    np.testing.assert_array_equal(bench2.iloc[: t + 1], bench.iloc[: t + 1])
    assert bench2.iloc[t + 1] != bench.iloc[t + 1]


@pytest.mark.realdata
def test_real_data_handful_of_tickers():
    raw = real_raw_dir("sp500_daily")
    panel = load_us_panel(
        raw, start="2001-01-01", end="2020-12-31", tickers=["AAPL", "TRMB", "ANTM", "MSFT", "BF.B"],
        **{**PANEL_KW, "top_n": 4, "universe_window": 252, "rebalance_every": 21},
    )
    assert panel.instruments.tolist() == ["AAPL", "ANTM", "MSFT", "TRMB"]
    assert panel.sector["AAPL"] == "Information Technology"
    ret, close, log = panel.frame("ret"), panel.frame("close"), panel.cleaning_log

    # AAPL 4:1 split on 2020-08-31 (raw 499 -> 129): smooth in the adjusted close
    assert abs(ret.loc["2020-08-31", "AAPL"]) < 0.05
    assert close.loc["2020-08-28", "AAPL"] == pytest.approx(124.4, rel=0.01)
    # TRMB 2007-02-23: adjusted x2 for a day (split applied early) -> dropped as a spike and filled
    assert log.query("instrument == 'TRMB' and rule == 'spike'")["date"].tolist() == [pd.Timestamp("2007-02-23")]
    assert ret.loc["2007-02-20":"2007-03-02", "TRMB"].abs().max() < 0.1
    # ANTM 2002-03-18: a split recorded and adjusted although the raw price did not split -> repaired
    assert log.query("instrument == 'ANTM' and rule == 'bad_split'")["action"].tolist() == ["repaired"]
    assert abs(ret.loc["2002-03-18", "ANTM"]) < 0.05
    assert log.query("instrument == 'BF.B'")["rule"].tolist() == ["empty_file"]
    assert np.nanmax(np.abs(ret.loc["2003":].to_numpy())) < 0.5
