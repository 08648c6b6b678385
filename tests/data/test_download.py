"""The download CLI, offline (yfinance and qlib monkeypatched)."""

from __future__ import annotations

import pandas as pd
import yfinance

from riskstudy.data import download

from ._us_fixture import write_constituents


def test_us_offline_reports_error_and_writes_nothing(tmp_path, monkeypatch, capsys):
    asked = []
    monkeypatch.setattr(yfinance, "download", lambda tickers, **kw: asked.append(list(tickers)) or pd.DataFrame())
    write_constituents(tmp_path, {"AAPL": "Information Technology", "BF.B": "Consumer Staples"})
    assert download.main(["us", "--raw-dir", str(tmp_path)]) == 1
    assert asked == [["AAPL", "BF-B"]]  # the constituents list, in Yahoo spelling
    assert "no data" in capsys.readouterr().err
    assert not (tmp_path / "sp500_daily" / "daily_adjusted").exists()


def test_us_default_tickers_without_constituents(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(yfinance, "download", lambda tickers, **kw: asked.append(list(tickers)) or pd.DataFrame())
    assert download.main(["us", "--raw-dir", str(tmp_path)]) == 1
    assert asked == [list(download.DEFAULT_TICKERS)]


def test_cn_offline_reports_error(tmp_path, monkeypatch, capsys):
    from qlib.tests import data as qlib_data

    def offline(self, **kwargs):
        raise ConnectionError("Failed to resolve 'github.com'")

    monkeypatch.setattr(qlib_data.GetData, "qlib_data", offline)
    assert download.main(["cn", "--raw-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "qlib CN data download" in err and "github.com" in err
