"""Tiny Alpha Vantage style US raw folders for the US reader tests.

Layout written under ``raw``: ``sp500_daily/daily_adjusted/DA-<T>-T-2021-04-21.csv``
(columns ``timestamp, open, high, low, close, adjusted_close, volume,
dividend_amount, split_coefficient``) and ``sp500_daily/data/constituents.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

STAMP = "2021-04-21"


def av_frame(
    dates: pd.DatetimeIndex,
    close: np.ndarray,
    *,
    adjusted: np.ndarray | None = None,
    volume: np.ndarray | None = None,
    dividend: np.ndarray | None = None,
    split: np.ndarray | None = None,
) -> pd.DataFrame:
    """An Alpha Vantage frame: open = 0.99 close, high = 1.01 close, low = 0.98 close by default."""
    close = np.asarray(close, dtype=float)
    n = len(close)
    return pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex(dates).strftime("%Y-%m-%d"),
            "open": close * 0.99,
            "high": close * 1.01,
            "low": close * 0.98,
            "close": close,
            "adjusted_close": close if adjusted is None else np.asarray(adjusted, dtype=float),
            "volume": np.full(n, 1000.0) if volume is None else np.asarray(volume, dtype=float),
            "dividend_amount": np.zeros(n) if dividend is None else np.asarray(dividend, dtype=float),
            "split_coefficient": np.ones(n) if split is None else np.asarray(split, dtype=float),
        }
    )


def daily_dir(raw: Path) -> Path:
    folder = Path(raw) / "sp500_daily" / "daily_adjusted"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_av(raw: Path, ticker: str, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as ``DA-<ticker>-T-2021-04-21.csv``; returns the path."""
    path = daily_dir(raw) / f"DA-{ticker}-T-{STAMP}.csv"
    frame.to_csv(path, index=False)
    return path


def write_text(raw: Path, ticker: str, text: str) -> Path:
    """Write raw text as a ticker file (stubs, malformed files)."""
    path = daily_dir(raw) / f"DA-{ticker}-T-{STAMP}.csv"
    path.write_text(text)
    return path


def write_constituents(raw: Path, sectors: dict[str, str]) -> None:
    folder = Path(raw) / "sp500_daily" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"Symbol": list(sectors), "Name": list(sectors), "Sector": list(sectors.values())}).to_csv(
        folder / "constituents.csv", index=False
    )


def random_market(raw: Path, *, n_tickers: int = 4, n_days: int = 60, seed: int = 0) -> pd.DatetimeIndex:
    """``n_tickers`` clean random-walk tickers ``T0..`` on business days from 2020-01-01,
    volumes scaled so that ``T0`` trades the most dollar volume."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_days)
    for i in range(n_tickers):
        close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n_days)))
        write_av(raw, f"T{i}", av_frame(dates, close, volume=np.full(n_days, 1e6 / (i + 1))))
    write_constituents(raw, {f"T{i}": ["Energy", "Financials"][i % 2] for i in range(n_tickers)})
    return dates
