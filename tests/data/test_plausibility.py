"""Implausible raw data never passes silently (issue 9, point 3).

US: lasting 100x jumps (raw and adjusted, or adjusted only), absurd prices and
CSVs cut at a line end. CN: empty, odd-sized, corrupt-header, garbage and
non-positive ``.day.bin`` files. Each is an error under ``on_error`` naming the
instrument and the file; the data stage prints one console line per market.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskstudy.config import ConfigError, render_profile, validate_params
from riskstudy.data import cleaning
from riskstudy.data.cn import cn_benchmark_returns, load_cn_panel
from riskstudy.data.us import load_us_panel, read_us_daily

from ._qlib_fixture import DATES as CN_DATES
from ._qlib_fixture import write_tiny_qlib
from ._us_fixture import av_frame, random_market, write_av, write_constituents

PANEL_KW = dict(top_n=2, universe_window=10, min_coverage=0.9, rebalance_every=5, max_ffill=3, jump_threshold=0.5)
WINDOW = dict(start="2020-01-01", end="2020-12-31")
JUMP_DAY = pd.bdate_range("2020-01-01", periods=60)[30]  # the fixture's day 30


def _market_with(tmp_path: Path, ticker: str, close: np.ndarray, adjusted: np.ndarray | None = None) -> Path:
    """The 4-ticker random market plus ``ticker`` (also listed in constituents.csv)."""
    dates = random_market(tmp_path, n_tickers=4, n_days=60)
    path = write_av(tmp_path, ticker, av_frame(dates, close, adjusted=adjusted))
    write_constituents(tmp_path, {**{f"T{i}": "Energy" for i in range(4)}, ticker: "Energy"})
    return path


# ------------------------------------------------------------------------ US: lasting jumps
def test_lasting_100x_jump_in_raw_and_adjusted_close_raises_naming_ticker_and_file(tmp_path):
    close = np.r_[np.full(30, 50.0), np.full(30, 5000.0)]  # +9,900 % on day 30, never reverts
    path = _market_with(tmp_path, "JMP", close)
    with pytest.raises(ValueError) as err:  # before the fix: loads, with a +9,900 % return
        load_us_panel(tmp_path, **WINDOW, **PANEL_KW)
    assert isinstance(err.value, cleaning.ImplausibleDataError)
    assert "JMP" in str(err.value) and path.name in str(err.value) and f"{JUMP_DAY:%Y-%m-%d}" in str(err.value)


def test_lasting_jump_is_skipped_and_logged_on_request(tmp_path, caplog):
    close = np.r_[np.full(30, 50.0), np.full(30, 5000.0)]
    path = _market_with(tmp_path, "JMP", close)
    with caplog.at_level(logging.ERROR):
        panel = load_us_panel(tmp_path, **WINDOW, on_error="skip", **PANEL_KW)
    assert "JMP" not in panel.instruments and panel.shape[1] == 2
    log = panel.cleaning_log[panel.cleaning_log["instrument"] == "JMP"]
    assert log[["rule", "action"]].values.tolist() == [["implausible_move", "skipped"]]
    assert log["date"].iloc[0] == JUMP_DAY and "x100" in log["detail"].iloc[0]
    assert any(r.levelno == logging.ERROR and "JMP" in r.getMessage() and path.name in r.getMessage()
               for r in caplog.records)
    assert np.nanmax(np.abs(panel["ret"])) < 0.1


def test_lasting_jump_of_the_adjusted_close_only_is_an_error_not_a_warning(tmp_path):
    close = np.full(60, 50.0)
    adjusted = np.r_[np.full(30, 50.0), np.full(30, 0.5)]  # adjustment factor off by 100x; raw flat
    _market_with(tmp_path, "ADJ", close, adjusted)
    with pytest.raises(ValueError, match="ADJ.*implausible_move"):  # before: a "bad_split kept" warning
        load_us_panel(tmp_path, **WINDOW, **PANEL_KW)


def test_a_real_crash_below_the_bound_is_kept(tmp_path):
    close = np.r_[np.full(30, 9.15), np.full(30, 2.92)]  # PWR 2002-07-02: -68 %, the largest real move
    _market_with(tmp_path, "PWR", close)
    frame, _ = read_us_daily(tmp_path)
    out, log = cleaning.clean_daily(frame)
    assert log.empty and len(out) == len(frame)
    # a tighter bound flags it, so the default is what keeps it
    with pytest.raises(cleaning.ImplausibleDataError, match="PWR"):
        cleaning.clean_daily(frame, max_daily_move=1.0)


def test_a_reverting_spike_is_still_repaired_not_an_error(tmp_path):
    close = np.full(60, 50.0)
    close[30] = 5000.0  # one-day 100x spike: rule 2 drops the row
    _market_with(tmp_path, "SPK", close)
    panel = load_us_panel(tmp_path, **WINDOW, **PANEL_KW)
    log = panel.cleaning_log
    assert log[log["instrument"] == "SPK"]["rule"].tolist() == ["spike", "ffill"]  # the dropped day is filled


def test_absurd_price_is_an_error(tmp_path):
    path = _market_with(tmp_path, "BIG", np.full(60, 2.8e38))  # garbage: flat, so no jump
    with pytest.raises(ValueError) as err:
        load_us_panel(tmp_path, **WINDOW, **PANEL_KW)
    assert "BIG" in str(err.value) and path.name in str(err.value) and "absurd_price" in str(err.value)


# ------------------------------------------------------------------------ US: truncated CSVs
def _cut(path: Path, keep_rows: int) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: 1 + keep_rows]))  # cut at a line end: parses cleanly


def test_csv_cut_at_a_line_end_is_an_error_naming_the_file(tmp_path):
    random_market(tmp_path, n_tickers=4, n_days=60)
    path = tmp_path / "sp500_daily/daily_adjusted/DA-T2-T-2021-04-21.csv"
    _cut(path, 40)  # T2 is in constituents.csv: it cannot have been delisted 20 days before the export
    with pytest.raises(ValueError) as err:  # before the fix: read as a delisting
        load_us_panel(tmp_path, **WINDOW, **PANEL_KW)
    assert isinstance(err.value, cleaning.MalformedFileError)
    assert path.name in str(err.value) and "truncated" in str(err.value) and "20 trading days" in str(err.value)


def test_truncated_csv_is_skipped_on_request(tmp_path):
    random_market(tmp_path, n_tickers=4, n_days=60)
    _cut(tmp_path / "sp500_daily/daily_adjusted/DA-T0-T-2021-04-21.csv", 40)
    panel = load_us_panel(tmp_path, **WINDOW, on_error="skip", **PANEL_KW)
    assert "T0" not in panel.instruments
    log = panel.cleaning_log
    assert log[log["instrument"] == "T0"][["rule", "action"]].values.tolist() == [["truncated_file", "skipped"]]


def test_short_tail_gap_and_unlisted_tickers_are_not_truncated(tmp_path):
    random_market(tmp_path, n_tickers=4, n_days=60)
    _cut(tmp_path / "sp500_daily/daily_adjusted/DA-T1-T-2021-04-21.csv", 57)  # VAR: acquired 3 days before
    write_constituents(tmp_path, {"T0": "Energy", "T1": "Energy", "T2": "Energy"})  # T3 not listed
    _cut(tmp_path / "sp500_daily/daily_adjusted/DA-T3-T-2021-04-21.csv", 30)  # a delisted ticker may stop early
    frame, log = read_us_daily(tmp_path)
    assert log.empty and frame["instrument"].nunique() == 4
    with pytest.raises(cleaning.MalformedFileError, match="DA-T1-"):
        read_us_daily(tmp_path, max_tail_gap=2)


# ------------------------------------------------------------------------ CN: .day.bin files
@pytest.fixture
def qdir(tmp_path: Path) -> Path:
    return write_tiny_qlib(tmp_path)


def _bin(qdir: Path, code: str, field: str = "close") -> Path:
    return qdir / "features" / code.lower() / f"{field}.day.bin"


def _garbage(path: Path) -> None:
    """Keep the header, overwrite the values with bytes decoding to huge, tiny and negative floats."""
    values = np.array([0x7F52F3A1, 0x01020304, 0xC2C80000, 0x7E967699, 0x3F800000, 0x7F000000,
                       0x00000001, 0x7F7FFFFF, 0x40000000, 0x3C23D70A], dtype="<u4").view("<f4")
    np.r_[np.fromfile(path, dtype="<f4")[:1], values].astype("<f4").tofile(path)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(p.read_bytes()[:-1]), "not a multiple of 4"),
        (lambda p: np.r_[500.0, np.ones(10)].astype("<f4").tofile(p), "not an integer in [0, 10)"),
        (lambda p: np.r_[1.5, np.ones(9)].astype("<f4").tofile(p), "not an integer"),
        (lambda p: np.r_[3.0, np.ones(10)].astype("<f4").tofile(p), "runs past the calendar"),
        (lambda p: p.unlink(), "file missing"),
    ],
)
def test_malformed_day_bin_is_an_error_naming_instrument_and_file(qdir, corrupt, message):
    path = _bin(qdir, "SZ000003")
    corrupt(path)
    with pytest.raises(ValueError) as err:  # before: qlib's IndexError / buffer error, or silently dropped
        load_cn_panel(qdir.parent, **WINDOW)
    assert isinstance(err.value, cleaning.MalformedFileError)
    assert "SZ000003" in str(err.value) and str(path) in str(err.value) and message in str(err.value)


def test_garbage_bytes_in_close_are_an_error(qdir):
    path = _bin(qdir, "SZ000003")
    _garbage(path)
    with pytest.raises(ValueError) as err:  # before: closes up to 3.4e38 loaded silently
        load_cn_panel(qdir.parent, **WINDOW)
    assert isinstance(err.value, cleaning.ImplausibleDataError)
    assert "SZ000003" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    ("value", "rule"), [(0.0, "non_positive_price"), (-5.0, "non_positive_price"), (np.inf, "non_finite_price"),
                        (2.0e6, "absurd_price"), (50.0, "implausible_move")],
)
def test_implausible_close_value_names_the_rule(qdir, value, rule):
    path = _bin(qdir, "SZ000003")
    raw = np.fromfile(path, dtype="<f4")
    raw[1 + 7] = value  # day 7 (volume 1000: tradable)
    raw.tofile(path)
    with pytest.raises(cleaning.ImplausibleDataError, match=rule) as err:
        load_cn_panel(qdir.parent, **WINDOW)
    assert "SZ000003" in str(err.value) and str(path) in str(err.value) and f"{CN_DATES[7]:%Y-%m-%d}" in str(err.value)


def test_corrupt_instruments_are_skipped_and_logged_on_request(qdir, caplog):
    _garbage(_bin(qdir, "SZ000003"))
    _bin(qdir, "SH600002", "volume").write_bytes(b"\x00\x00\x80")
    with caplog.at_level(logging.ERROR):
        panel = load_cn_panel(qdir.parent, **WINDOW, on_error="skip")
    assert list(panel.instruments) == ["SH600001"]
    log = panel.cleaning_log
    skipped = log[log["action"] == "skipped"].set_index("instrument")["rule"].to_dict()
    assert skipped == {"SH600002": "malformed_file", "SZ000003": "non_positive_price"}  # -100 on day 2
    assert str(_bin(qdir, "SH600002", "volume")) in log.set_index("instrument").loc["SH600002", "detail"]
    assert "SZ000003" in caplog.text and "SH600002" in caplog.text
    assert (log["rule"] == "suspended").sum() == 1  # the other rules still apply


def test_a_clean_folder_is_unchanged(qdir):
    panel = load_cn_panel(qdir.parent, **WINDOW)
    assert list(panel.instruments) == ["SH600001", "SH600002", "SZ000003"]
    assert panel.cleaning_log["rule"].tolist() == ["suspended"]


def test_corrupt_benchmark_bin_raises_naming_the_file(qdir):
    path = _bin(qdir, "SH000300")
    path.write_bytes(b"")
    with pytest.raises(cleaning.MalformedFileError, match="SH000300"):
        cn_benchmark_returns(qdir.parent, **WINDOW)
    np.r_[0.0, np.full(5, 4000.0), np.full(5, 400000.0)].astype("<f4").tofile(path)  # lasting 100x jump
    with pytest.raises(cleaning.ImplausibleDataError, match=str(path)):
        cn_benchmark_returns(qdir.parent, **WINDOW)


# ------------------------------------------------------------------------ config and console line
@pytest.mark.parametrize(
    ("market", "key", "value"),
    [("us", "max_daily_move", 0.0), ("us", "max_daily_move", 0.4), ("us", "max_price", -1.0),
     ("us", "max_tail_gap", -1), ("cn", "on_error", "ignore"), ("cn", "max_daily_move", -1.0),
     ("cn", "max_price", 0.0)],
)
def test_bad_bounds_raise_config_error_naming_the_key(market, key, value):
    raw = render_profile("default")
    raw["data"][market][key] = value
    with pytest.raises(ConfigError) as err:
        validate_params(raw)
    assert f"'data.{market}" in str(err.value) and key in str(err.value)


def test_default_profile_has_the_new_keys():
    params = validate_params(render_profile("default"))
    assert params.data.us.max_daily_move == 3.0 and params.data.us.max_tail_gap == 5
    assert params.data.cn.max_daily_move == 1.0 and params.data.cn.on_error == "raise"


def test_stage_line_counts_skipped_and_repaired_instruments():
    from riskstudy.data.prepare import stage_line

    log = pd.concat([
        cleaning.make_log(["BF.B"], pd.NaT, "empty_file", "skipped", ["no rows"]),
        cleaning.make_log(["JMP", "JMP"], ["2020-01-02", "2020-01-03"], "implausible_move", "skipped", ["a", "b"]),
        cleaning.make_log(["TRMB", "ANTM"], ["2007-02-23", "2002-03-18"], "spike", "dropped", ["a", "b"]),
        cleaning.make_log(["ANTM"], ["2003-01-02"], "bad_split", "repaired", ["c"]),
        cleaning.make_log(["MSI"], ["2011-01-04"], "bad_split", "kept", ["d"]),
        cleaning.make_log(["X"], ["2011-01-04"], "ffill", "filled", ["e"]),
    ], ignore_index=True)
    line = stage_line("us", log, n_read=505, unit="files", log_path="data/prepared/us/cleaning_log.parquet")
    assert line == (
        "data us: 505 files read, 2 skipped [empty_file 1, implausible_move 2], 2 repaired [bad_split 1, spike 2], "
        "1 kept with a warning [bad_split 1] (log: data/prepared/us/cleaning_log.parquet)"
    )


def test_build_market_prints_one_console_line(tmp_path, monkeypatch, capfd):
    from riskstudy.data.prepare import build_market

    random_market(tmp_path, n_tickers=4, n_days=300)
    write_av(tmp_path, "JMP", av_frame(pd.bdate_range("2020-01-01", periods=300), np.r_[np.full(150, 5.0),
                                                                                          np.full(150, 500.0)]))
    raw = render_profile("default")
    raw["paths"]["raw_dir"] = str(tmp_path)
    raw["data"]["us"].update(start="2020-06-01", end="2021-01-01", top_n=2, on_error="skip")
    monkeypatch.delenv("RISKSTUDY_RAW_DIR", raising=False)
    build_market(validate_params(raw), "us")
    lines = [ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("data us:")]
    assert len(lines) == 1 and lines[0].startswith("data us: 5 files read, 1 skipped [implausible_move 1], 0 repaired")


# ------------------------------------------------------------------------ real data: nothing genuine is flagged
@pytest.mark.realdata
def test_real_us_files_pass_every_rule_with_margin():
    from tests.realdata import real_raw_dir

    raw = real_raw_dir("sp500_daily")
    frame, read_log = read_us_daily(raw)  # no truncated file (VAR ends 3 trading days early: acquired)
    assert read_log["instrument"].tolist() == ["BF.B"]
    _, log = cleaning.clean_daily(frame)
    assert not (log["action"] == "skipped").any()
    # the default bound's margin: at +200 % / -66.7 % two real moves would be flagged
    _, errors = cleaning.flag_implausible(cleaning.clean_daily(frame)[0], max_daily_move=2.0, max_price=1e6)
    assert sorted(map(tuple, errors[["instrument", "date"]].astype(str).values)) == [
        ("GNRC", "2010-02-12"), ("PWR", "2002-07-02")]


@pytest.mark.realdata
def test_real_cn_files_pass_every_rule_in_the_study_window():
    from riskstudy.data.cn import CN_DIRNAME, validate_bins
    from tests.realdata import real_raw_dir

    qdir = real_raw_dir(CN_DIRNAME) / CN_DIRNAME
    codes = sorted(p.name.upper() for p in (qdir / "features").iterdir())
    assert validate_bins(qdir, codes, start="2010-01-04", end="2020-03-31").empty
    # after the window: one x5.6 close move between two traded days (sz302132, 2025-02-18)
    late = validate_bins(qdir, codes, start="2020-04-01", end="2026-12-31")
    assert late[["instrument", "rule"]].values.tolist() == [["SZ302132", "implausible_move"]]


def test_a_garbage_file_gives_one_log_row_per_rule(tmp_path):
    _market_with(tmp_path, "BIG", np.full(60, 2.8e38))
    panel = load_us_panel(tmp_path, **WINDOW, on_error="skip", **PANEL_KW)
    log = panel.cleaning_log[panel.cleaning_log["instrument"] == "BIG"]
    assert log["rule"].tolist() == ["absurd_price"] and "first of 60 days" in log["detail"].iloc[0]


def test_stage_line_counts_rows_of_skipped_instruments_once():
    from riskstudy.data.prepare import stage_line

    log = pd.concat([
        cleaning.make_log(["ADJ"], ["2020-01-02"], "bad_split", "kept", ["adjusted x0.01"]),
        cleaning.make_log(["ADJ"], ["2020-01-02"], "implausible_move", "skipped", ["x0.01"]),
    ], ignore_index=True)
    line = stage_line("us", log, n_read=3, unit="files", log_path="x")
    assert line == "data us: 3 files read, 1 skipped [implausible_move 1], 0 repaired, 0 kept with a warning (log: x)"
