"""Fama-French daily factor files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskstudy.data.famafrench import read_fama_french
from tests.realdata import real_raw_dir

FF3 = (
    "This file was created by CMPT_ME_BEME_RETS_DAILY using the 202112 CRSP database.\r\n"
    "The Tbill return is the simple daily rate.\r\n"
    "\r\n"
    ",Mkt-RF,SMB,HML,RF\r\n"
    "19260701,    0.10,   -0.23,   -0.28,   0.009\r\n"
    "19260702,    0.45,   -0.34,   -0.03,   0.009\r\n"
    "19260706,    0.17,    0.29,  -99.99,   0.009\r\n"
    "\r\n"
    "Copyright 2021 Kenneth R. French\r\n"
)
FF5 = (
    "This file was created by CMPT_ME_BEME_OP_INV_RETS_DAILY.\n\n"
    ",Mkt-RF,SMB,HML,RMW,CMA,RF\n"
    "19630701,   -0.67,    0.01,   -0.35,    0.03,    0.11,   0.012\n"
    "19630702,    0.79,   -0.31,    0.24,   -0.08,   -0.25,   0.012\n"
)


def write(tmp_path, name: str, text: str) -> None:
    folder = tmp_path / "fama_french_daily"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(text.encode())


def test_three_factor_file(tmp_path):
    write(tmp_path, "F-F_Research_Data_Factors_daily.CSV", FF3)
    ff = read_fama_french(tmp_path)
    assert ff.columns.tolist() == ["Mkt-RF", "SMB", "HML", "RF"]
    assert ff.index.equals(pd.DatetimeIndex(["1926-07-01", "1926-07-02", "1926-07-06"], name="date"))
    np.testing.assert_allclose(ff.iloc[0], [0.0010, -0.0023, -0.0028, 0.00009])
    assert np.isnan(ff.loc["1926-07-06", "HML"])  # -99.99 is French's missing code


def test_five_factor_file(tmp_path):
    write(tmp_path, "F-F_Research_Data_5_Factors_2x3_daily.CSV", FF5)
    ff = read_fama_french(tmp_path, five_factor=True)
    assert ff.columns.tolist() == ["Mkt-RF", "SMB", "HML", "RMW", "CMA", "RF"]
    assert ff.loc["1963-07-02", "CMA"] == pytest.approx(-0.0025)


def test_missing_header_names_the_file(tmp_path):
    write(tmp_path, "F-F_Research_Data_Factors_daily.CSV", "no table here\n19260701, 0.1\n")
    with pytest.raises(ValueError, match="F-F_Research_Data_Factors_daily.CSV"):
        read_fama_french(tmp_path)


@pytest.mark.realdata
def test_real_files():
    raw = real_raw_dir("fama_french_daily")
    ff3, ff5 = read_fama_french(raw), read_fama_french(raw, five_factor=True)
    assert ff3.index[0] == pd.Timestamp("1926-07-01") and ff5.index[0] == pd.Timestamp("1963-07-01")
    assert ff3.notna().all().all() and ff3["Mkt-RF"].abs().max() < 0.25
    common = ff3.index.intersection(ff5.index)
    np.testing.assert_allclose(ff3.loc[common, "RF"], ff5.loc[common, "RF"])


def test_benchmark_check_against_the_ff_market():
    from riskstudy.data.famafrench import benchmark_check

    d = pd.bdate_range("2020-01-01", periods=300)
    rng = np.random.default_rng(0)
    mkt = pd.Series(rng.normal(0, 0.01, len(d)), index=d)
    ff = pd.DataFrame({"Mkt-RF": mkt - 0.0001, "RF": 0.0001}, index=d)
    out = benchmark_check(mkt, ff)
    assert out["corr"] == pytest.approx(1.0) and out["n_days"] == 300
    assert out["ann_vol_benchmark"] == pytest.approx(out["ann_vol_ff_market"])
    noisy = benchmark_check(mkt + rng.normal(0, 0.01, len(d)), ff.iloc[:200])
    assert noisy["n_days"] == 200 and 0.5 < noisy["corr"] < 0.9
