"""yfinance downloader, with ``yfinance.download`` monkeypatched (no network)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yfinance

from riskstudy.data.us import load_us_panel, read_us_daily
from riskstudy.data.yfinance_source import DownloadError, download_us, to_alpha_vantage

DATES = pd.bdate_range("2020-01-06", periods=6)
RAW_CLOSE = np.array([100.0, 102.0, 51.0, 52.0, 50.0, 51.0])  # 2:1 split ex on day 2
RAW_VOLUME = np.array([1000.0, 1100.0, 2400.0, 2300.0, 2000.0, 2100.0])
K = 1.0 - 1.0 / 52.0  # dividend 1.0 ex on day 4, close before it 52
ADJ_CLOSE = np.array([100 / 2 * K, 102 / 2 * K, 51 * K, 52 * K, 50.0, 51.0])


def yahoo_frame(scale: float = 1.0) -> pd.DataFrame:
    """What Yahoo returns with auto_adjust=False: OHLC and volume split-adjusted, Adj Close also for dividends."""
    later = np.array([2.0, 2.0, 1.0, 1.0, 1.0, 1.0])
    close = scale * RAW_CLOSE / later
    return pd.DataFrame(
        {
            "Open": close * 0.99, "High": close * 1.01, "Low": close * 0.98, "Close": close,
            "Adj Close": scale * ADJ_CLOSE, "Volume": RAW_VOLUME * later,
            "Dividends": [0.0, 0.0, 0.0, 0.0, 1.0, 0.0], "Stock Splits": [0.0, 0.0, 2.0, 0.0, 0.0, 0.0],
        },
        index=pd.DatetimeIndex(DATES, name="Date"),
    )


def fake_download(returned: list[str] | None = None):
    """A stand-in for ``yfinance.download(group_by="ticker")``: (Ticker, Price) column levels."""
    calls = []

    def download(tickers, **kwargs):
        calls.append((list(tickers), kwargs))
        symbols = [t for t in tickers if returned is None or t in returned]
        if not symbols:
            return pd.DataFrame()
        return pd.concat({s: yahoo_frame(1.0 + i) for i, s in enumerate(symbols)}, axis=1, names=["Ticker", "Price"])

    download.calls = calls
    return download


def test_offline_empty_frame_raises_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(yfinance, "download", fake_download(returned=[]))
    with pytest.raises(DownloadError, match="no data"):
        download_us(["AAPL", "MSFT"], start="2020-01-01", end="2020-01-31", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_one_missing_ticker_fails_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(yfinance, "download", fake_download(returned=["AAPL"]))
    with pytest.raises(DownloadError, match="MSFT"):
        download_us(["AAPL", "MSFT"], start="2020-01-01", end="2020-01-31", out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_round_trip_through_the_us_reader(tmp_path, monkeypatch):
    fake = fake_download()
    monkeypatch.setattr(yfinance, "download", fake)
    out = tmp_path / "sp500_daily" / "daily_adjusted"
    out.mkdir(parents=True)
    (out / "DA-AAPL-T-2019-01-01.csv").write_text("stale")
    files = download_us(["AAPL", "BF.B"], start="2020-01-06", end="2020-01-13", out_dir=out)

    assert [f.name for f in files] == ["DA-AAPL-T-2020-01-13.csv", "DA-BF.B-T-2020-01-13.csv"]
    assert sorted(p.name for p in out.iterdir()) == [f.name for f in files]  # stale file and temp dir gone
    symbols, kwargs = fake.calls[0]
    assert symbols == ["AAPL", "BF-B"] and kwargs["end"] == "2020-01-14"
    assert kwargs["auto_adjust"] is False and kwargs["actions"] is True

    frame, log = read_us_daily(tmp_path)
    assert log.empty
    aapl = frame[frame["instrument"] == "AAPL"]
    np.testing.assert_allclose(aapl["close"], RAW_CLOSE, rtol=1e-14)  # back to raw prices
    np.testing.assert_allclose(aapl["volume"], RAW_VOLUME, rtol=1e-14)
    np.testing.assert_array_equal(aapl["split_coefficient"], [1.0, 1.0, 2.0, 1.0, 1.0, 1.0])

    panel = load_us_panel(tmp_path, start="2020-01-01", end="2020-12-31", top_n=2, universe_window=2,
                          min_coverage=0.5, rebalance_every=1)
    assert panel.instruments.tolist() == ["AAPL", "BF.B"]
    np.testing.assert_allclose(panel.frame("close")["AAPL"], ADJ_CLOSE, rtol=1e-12)
    np.testing.assert_allclose(panel.frame("close")["BF.B"], 2.0 * ADJ_CLOSE, rtol=1e-12)
    np.testing.assert_allclose(panel.frame("volume")["AAPL"], yahoo_frame()["Volume"], rtol=1e-12)


def test_to_alpha_vantage_drops_empty_rows_and_maps_zero_splits():
    frame = yahoo_frame()
    frame.iloc[1] = np.nan
    out = to_alpha_vantage(frame)
    assert len(out) == 5 and (out["split_coefficient"] > 0).all()
    with pytest.raises(DownloadError, match="Adj Close"):
        to_alpha_vantage(frame.drop(columns="Adj Close"))
