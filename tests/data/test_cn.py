"""Tests of the China A-share reader on a tiny qlib folder and (if present) the real data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from riskstudy.data import cn
from riskstudy.data.cn import cn_benchmark_returns, init_qlib, load_cn_panel
from riskstudy.paths import DataLocationError
from tests.realdata import real_raw_dir

from ._qlib_fixture import DATES, RAW_CLOSE, write_tiny_qlib


@pytest.fixture(scope="module")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    write_tiny_qlib(root)
    return root


@pytest.fixture(scope="module")
def tiny(tiny_raw: Path):
    return load_cn_panel(tiny_raw, start="2020-01-01", end="2020-01-31")


def test_universe_is_every_instrument_ever_in_the_index(tiny) -> None:
    assert tiny.market == "cn" and tiny.sector is None
    assert list(tiny.instruments) == ["SH600001", "SH600002", "SZ000003"]  # not SZ000004, not the index
    assert tiny.dates.equals(DATES)


def test_membership_is_point_in_time_and_tradable(tiny) -> None:
    expected = np.zeros((10, 3), dtype=bool)
    expected[:, 0] = True
    expected[3:5, 0] = False  # suspended
    expected[2:5, 1] = True  # span days 2-4
    expected[[0, 1, 5, 6, 7, 8, 9], 2] = True  # two spans
    np.testing.assert_array_equal(tiny.member, expected)
    # SH600002 keeps trading after it leaves the index: prices, but not a member
    assert np.isfinite(tiny["close"][5:, 1]).all() and not tiny.member[5:, 1].any()
    assert np.isnan(tiny["close"][:2, 1]).all()  # before its first data day


def test_window_keeps_only_members_of_the_window(tiny_raw: Path) -> None:
    late = load_cn_panel(tiny_raw, start=str(DATES[6].date()), end=str(DATES[9].date()))
    assert list(late.instruments) == ["SH600001", "SZ000003"]
    assert np.isnan(late["ret"][0]).all()
    np.testing.assert_allclose(late["close"][:, 0], [12.0, 12.6, 12.0, 13.2], rtol=1e-6)


def test_suspended_days_are_masked_not_zero_returns(tiny) -> None:
    for name, arr in tiny.fields.items():
        assert np.isnan(arr[3:5, 0]).all(), name
    assert np.isnan(tiny["ret"][5, 0])  # first day after the suspension
    r = tiny["ret"][:, 0]
    assert np.all(np.abs(r[np.isfinite(r)]) > 1e-3)
    log = tiny.cleaning_log
    assert len(log) == 1
    row = log.iloc[0]
    assert (row["instrument"], row["date"], row["rule"]) == ("SH600001", DATES[3], "suspended")
    assert row["detail"].startswith("2 day(s)")


def test_adjusted_and_raw_price_arithmetic(tiny) -> None:
    close, ret = tiny["close"][:, 0], tiny["ret"][:, 0]
    # back-adjusted close is continuous across the 1-for-1 bonus issue although the raw price halves
    assert close[6] == pytest.approx(6.0 * 2.0, rel=1e-6)
    assert ret[6] == pytest.approx(12.0 / 11.55 - 1.0, rel=1e-5)
    # adjusted volume = raw / factor; dollar volume = raw close * raw volume
    assert tiny["volume"][6, 0] == pytest.approx(600.0 / 2.0)
    assert tiny["dollar_volume"][6, 0] == pytest.approx(6.0 * 600.0, rel=1e-6)
    ok = np.isfinite(tiny["close"])
    np.testing.assert_allclose(tiny["dollar_volume"][ok], (tiny["close"] * tiny["volume"])[ok], rtol=1e-6)
    np.testing.assert_allclose(tiny["high"][ok] / tiny["close"][ok], 1.01, rtol=1e-6)


def test_benchmark_returns(tiny_raw: Path) -> None:
    b = cn_benchmark_returns(tiny_raw, start="2020-01-01", end="2020-01-31")
    px = RAW_CLOSE["SH000300"]
    assert b.index.equals(DATES) and np.isnan(b.iloc[0])
    np.testing.assert_allclose(b.to_numpy()[1:], px[1:] / px[:-1] - 1.0, rtol=1e-6)


def test_init_qlib_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import qlib

    calls: list[str] = []
    monkeypatch.setattr(qlib, "init", lambda **kw: calls.append(kw["provider_uri"]))
    monkeypatch.setattr(cn, "_QLIB_URI", None)
    init_qlib(tmp_path / "a")
    init_qlib(tmp_path / "a")
    init_qlib(tmp_path / "b")
    assert calls == [str((tmp_path / "a").resolve()), str((tmp_path / "b").resolve())]


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataLocationError, match="cn_qlib_csi300"):
        load_cn_panel(tmp_path, start="2020-01-01", end="2020-12-31")


# ----------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real_raw() -> Path:
    return real_raw_dir(cn.CN_DIRNAME)


@pytest.mark.realdata
def test_real_csi300_2016_2017(real_raw: Path) -> None:
    t0 = time.perf_counter()
    p = load_cn_panel(real_raw, start="2016-01-01", end="2017-12-31")
    assert time.perf_counter() - t0 < 30.0
    assert len(p.dates) == 488 and p.dates[0].strftime("%Y-%m-%d") == "2016-01-04"
    # the shipped csi300.txt lists ~255-265 members a day in 2016-17 (not 300); suspensions remove a few more
    count = p.member.sum(axis=1)
    assert 200 <= count.min() and count.max() <= 300 and count.mean() > 235
    r = p["ret"][p.member]
    assert np.isfinite(r).mean() > 0.99
    assert np.nanmax(np.abs(r)) < 0.11  # +-10% daily price limits (back-adjusted)
    # unchanged closes are real (0.01 CNY tick on low-priced stocks: ~4 % of member days),
    # but no return touches a suspended day: both its days traded
    assert np.mean(r == 0.0) < 0.06
    finite = np.isfinite(p["ret"][1:])
    assert np.all(p["volume"][1:][finite] > 0) and np.all(p["volume"][:-1][finite] > 0)
    assert (p.cleaning_log["rule"] == "suspended").sum() > 100
    bench = cn_benchmark_returns(real_raw, start="2016-01-01", end="2017-12-31")
    ew = np.nanmean(np.where(p.member, p["ret"], np.nan)[1:], axis=1)
    assert np.corrcoef(ew, bench.to_numpy()[1:])[0, 1] > 0.9
    # the fixture's binary layout matches the real files: [start index, values...] float32 LE
    qdir = real_raw / cn.CN_DIRNAME
    cal = (qdir / "calendars" / "day.txt").read_text().split()
    raw = np.fromfile(qdir / "features" / "sh600000" / "close.day.bin", dtype="<f4")
    j = p.instruments.get_loc("SH600000")
    t = np.flatnonzero(np.isfinite(p["close"][:, j]))[0]
    assert raw[1 + cal.index(f"{p.dates[t]:%Y-%m-%d}") - int(raw[0])] == pytest.approx(p["close"][t, j], rel=1e-6)


@pytest.mark.realdata
def test_real_volume_is_raw_share_volume(real_raw: Path) -> None:
    """Across bonus issues / splits (factor up > 30 %), median volume jumps with the factor:
    ``$volume`` is raw, so the reader divides it by ``$factor`` for the adjusted volume."""
    features = real_raw / cn.CN_DIRNAME / "features"
    jumps, ratios = [], []
    for code_dir in sorted(features.iterdir())[::3]:
        f = np.fromfile(code_dir / "factor.day.bin", dtype="<f4")[1:].astype(float)
        v = np.fromfile(code_dir / "volume.day.bin", dtype="<f4")[1:].astype(float)
        for i in np.flatnonzero(f[1:] > 1.3 * f[:-1]) + 1:
            before, after = v[max(i - 20, 0):i], v[i:i + 20]
            if (before > 0).sum() >= 10 and (after > 0).sum() >= 10:
                jumps.append(np.log(f[i] / f[i - 1]))
                ratios.append(np.log(np.median(after[after > 0]) / np.median(before[before > 0])))
    assert len(jumps) > 100
    slope = np.polyfit(jumps, ratios, 1)[0]
    assert 0.8 < slope < 1.2  # an adjusted (raw / factor) volume would give a slope near 0
