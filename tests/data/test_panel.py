"""Tests of the :class:`Panel` contract: validation, slicing, subsetting and the parquet round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskstudy.data.panel import NUMERIC_FIELDS, Panel, returns_from_close


def _panel(*, sector: bool = True) -> Panel:
    """5 days x 3 stocks; stock C has no data on the first two days (all fields NaN, not a member)."""
    rng = np.random.default_rng(0)
    T, N = 5, 3
    close = 10.0 * np.cumprod(1.0 + 0.01 * rng.standard_normal((T, N)), axis=0)
    close[:2, 2] = np.nan
    fields = {k: close * f for k, f in zip(("open", "high", "low", "close"), (0.99, 1.02, 0.97, 1.0))}
    fields["volume"] = np.where(np.isfinite(close), 1e5, np.nan)
    fields["dollar_volume"] = close * fields["volume"]
    fields["ret"] = returns_from_close(close)
    member = np.isfinite(close)
    member[4, 0] = False  # leaves the universe but still trades
    log = pd.DataFrame(
        {"instrument": ["A", "C"], "date": pd.to_datetime(["2021-01-05", "2021-01-04"]),
         "rule": ["spike", "suspended"], "action": ["set_nan", "masked"], "detail": ["+80%", "1 day(s)"]}
    )
    return Panel(
        market="test",
        dates=pd.bdate_range("2021-01-04", periods=T),
        instruments=["A", "B", "C"],
        fields=fields,
        member=member,
        sector=pd.Series({"C": "Tech", "A": "Energy", "B": None}) if sector else None,
        cleaning_log=log,
    )


def _assert_panels_equal(a: Panel, b: Panel) -> None:
    assert a.market == b.market
    assert a.dates.equals(b.dates) and a.instruments.equals(b.instruments)
    for k in NUMERIC_FIELDS:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(a.member, b.member)
    if a.sector is None:
        assert b.sector is None
    else:
        pd.testing.assert_series_equal(a.sector, b.sector, check_names=False)
    pd.testing.assert_frame_equal(a.cleaning_log.reset_index(drop=True), b.cleaning_log.reset_index(drop=True))


def test_sector_is_aligned_to_instruments() -> None:
    p = _panel()
    assert list(p.sector.index) == ["A", "B", "C"] and p.sector["C"] == "Tech"
    codes, labels = p.sector_codes()
    assert labels == ["Energy", "Tech", "Unknown"] and codes.tolist() == [0, 2, 1]
    assert _panel(sector=False).sector_codes()[0].tolist() == [-1, -1, -1]


@pytest.mark.parametrize("sector", [True, False])
def test_parquet_round_trip(tmp_path: Path, sector: bool) -> None:
    p = _panel(sector=sector)
    p.to_parquet(tmp_path / "cn")
    assert sorted(f.name for f in (tmp_path / "cn").iterdir()) == [
        "cleaning_log.parquet", "instruments.parquet", "market.txt", "panel.parquet"
    ]  # no temp files left behind
    _assert_panels_equal(p, Panel.from_parquet(tmp_path / "cn"))


def test_parquet_round_trip_of_an_empty_cleaning_log(tmp_path: Path) -> None:
    p = _panel()
    p.cleaning_log = p.cleaning_log.iloc[:0]
    p.to_parquet(tmp_path)
    back = Panel.from_parquet(tmp_path)
    assert len(back.cleaning_log) == 0 and list(back.cleaning_log.columns) == list(p.cleaning_log.columns)


def test_from_parquet_without_data_explains(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dvc repro data"):
        Panel.from_parquet(tmp_path / "nothing")


def test_date_slice_is_inclusive() -> None:
    p = _panel()
    assert p.date_slice("2021-01-05", "2021-01-07") == slice(1, 4)
    assert p.date_slice("2021-01-03", "2021-01-06") == slice(0, 3)  # start on a Sunday
    assert p.date_slice("2021-01-06", "2021-01-09") == slice(2, 5)  # end on a Saturday
    assert p.date_slice() == slice(0, 5)
    assert p.date_slice(end="2021-01-01") == slice(0, 0)


def test_subset_rows_and_columns() -> None:
    p = _panel()
    s = p.subset(p.date_slice("2021-01-05", None), np.array([False, True, True]))
    assert s.shape == (4, 2) and list(s.instruments) == ["B", "C"]
    np.testing.assert_array_equal(s["close"], p["close"][1:, 1:])
    np.testing.assert_array_equal(s.member, p.member[1:, 1:])
    assert s.sector.tolist() == [None, "Tech"]
    assert s.cleaning_log["instrument"].tolist() == ["C"]
    s["close"][0, 0] = -1.0  # a copy, not a view into the parent
    assert p["close"][1, 1] > 0
    t = p.subset(cols=[2, 0])
    assert list(t.instruments) == ["C", "A"] and t.sector.tolist() == ["Tech", "Energy"]


def test_validation_errors() -> None:
    p = _panel()
    kw = dict(market="x", instruments=p.instruments, member=p.member)
    with pytest.raises(ValueError, match="strictly increasing"):
        Panel(dates=p.dates[::-1], fields=p.fields, **kw)
    with pytest.raises(ValueError, match="strictly increasing"):
        Panel(dates=p.dates[[0, 0, 1, 2, 3]], fields=p.fields, **kw)
    with pytest.raises(ValueError, match="missing \\['ret'\\]"):
        Panel(dates=p.dates, fields={k: v for k, v in p.fields.items() if k != "ret"}, **kw)
    with pytest.raises(ValueError, match="'volume' has shape \\(5, 2\\)"):
        Panel(dates=p.dates, fields={**p.fields, "volume": p["volume"][:, :2]}, **kw)
    with pytest.raises(ValueError, match="member has shape"):
        Panel(market="x", dates=p.dates, instruments=p.instruments, fields=p.fields, member=p.member[:4])


def test_returns_from_close() -> None:
    close = np.array([[10.0, np.nan], [11.0, 5.0], [9.9, 5.5]])
    ret = returns_from_close(close)
    assert np.isnan(ret[0]).all() and np.isnan(ret[1, 1])
    np.testing.assert_allclose(ret[1:, 0], [0.1, -0.1])
    np.testing.assert_allclose(ret[2, 1], 0.1)
    np.testing.assert_allclose(np.nancumprod(1.0 + ret[:, 0]) * close[0, 0], close[:, 0])
