"""Download US daily prices with yfinance into the Alpha Vantage raw layout.

:func:`download_us` writes ``out_dir/DA-<TICKER>-T-<end>.csv`` with the columns
of :data:`riskstudy.data.us.AV_COLUMNS`, so :func:`riskstudy.data.us.load_us_panel`
reads downloaded and offline data alike. Yahoo's ``Open/High/Low/Close`` and
``Volume`` are already split-adjusted, while the Alpha Vantage layout holds raw
values, so they are un-adjusted with the cumulative factor of later splits
``F_t = prod_{u > t} s_u`` (``s`` = ``Stock Splits``, 0 meaning none):

* ``open, high, low, close = Yahoo value * F_t``; ``dividend_amount = Dividends * F_t``;
* ``volume = Volume / F_t``; ``adjusted_close = Adj Close``;
* ``split_coefficient = s`` with 0 replaced by 1.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from riskstudy.data.cleaning import future_product
from riskstudy.data.us import AV_COLUMNS

logger = logging.getLogger(__name__)

YAHOO_COLUMNS: tuple[str, ...] = ("Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends", "Stock Splits")


class DownloadError(RuntimeError):
    """A download returned no usable data (typically: no internet access)."""


def yahoo_symbol(ticker: str) -> str:
    """Yahoo's spelling of a ticker (``BF.B`` -> ``BF-B``)."""
    return ticker.replace(".", "-")


def to_alpha_vantage(frame: pd.DataFrame) -> pd.DataFrame:
    """One ticker's yfinance frame (:data:`YAHOO_COLUMNS`, DatetimeIndex) -> Alpha Vantage columns.

    Rows without a close (no trading) are dropped; see the module docstring for the arithmetic.
    """
    missing = [c for c in YAHOO_COLUMNS if c not in frame.columns]
    if missing:
        raise DownloadError(f"yfinance frame lacks columns {missing}")
    frame = frame.dropna(subset=["Close", "Adj Close"]).sort_index()
    splits = frame["Stock Splits"].fillna(0.0).to_numpy(dtype=float)
    splits = np.where(splits > 0, splits, 1.0)
    later = future_product(splits, np.zeros(len(frame), dtype=int))
    out = pd.DataFrame({"timestamp": pd.DatetimeIndex(frame.index).strftime("%Y-%m-%d")})
    for av, yahoo in (("open", "Open"), ("high", "High"), ("low", "Low"), ("close", "Close")):
        out[av] = frame[yahoo].to_numpy(dtype=float) * later
    out["adjusted_close"] = frame["Adj Close"].to_numpy(dtype=float)
    out["volume"] = frame["Volume"].fillna(0.0).to_numpy(dtype=float) / later
    out["dividend_amount"] = frame["Dividends"].fillna(0.0).to_numpy(dtype=float) * later
    out["split_coefficient"] = splits
    return out[list(AV_COLUMNS)]


def _ticker_frame(data: pd.DataFrame, symbol: str, n_symbols: int) -> pd.DataFrame:
    """Select one symbol's columns from a (possibly multi-level) ``yfinance.download`` result."""
    if isinstance(data.columns, pd.MultiIndex):
        for level in range(data.columns.nlevels):
            if symbol in data.columns.get_level_values(level):
                return data.xs(symbol, axis=1, level=level)
        return pd.DataFrame()
    return data if n_symbols == 1 else pd.DataFrame()


def download_us(tickers: list[str], *, start: str, end: str, out_dir: str | Path) -> list[Path]:
    """Download daily bars for ``tickers`` over ``start..end`` (inclusive) into ``out_dir``.

    All tickers are fetched first; if yfinance returns nothing for any of them
    (it returns an empty frame rather than raising when offline) a
    :class:`DownloadError` is raised and nothing is written. Files are written
    to a temporary folder inside ``out_dir`` and moved into place at the end;
    an older ``DA-<TICKER>-T-*.csv`` of a downloaded ticker is replaced.

    Returns
    -------
    list of Path
        The written files, in ticker order.
    """
    import yfinance

    symbols = {t: yahoo_symbol(t) for t in tickers}
    end_exclusive = (pd.Timestamp(end) + pd.Timedelta(days=1)).strftime("%Y-%m-%d")  # yfinance's end is exclusive
    data = yfinance.download(
        list(symbols.values()), start=start, end=end_exclusive, auto_adjust=False, actions=True,
        group_by="ticker", progress=False, threads=True,
    )
    if data is None or data.empty:
        raise DownloadError(
            f"yfinance returned no data for {len(tickers)} ticker(s) {start}..{end} "
            "(no internet access, or Yahoo refused the request); nothing written"
        )
    frames, failed = {}, []
    for ticker, symbol in symbols.items():
        frame = _ticker_frame(data, symbol, len(symbols))
        frame = frame.dropna(how="all") if not frame.empty else frame
        if frame.empty:
            failed.append(ticker)
        else:
            frames[ticker] = to_alpha_vantage(frame)
    if failed:
        raise DownloadError(f"yfinance returned no rows for {failed} ({start}..{end}); nothing written")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = pd.Timestamp(end).strftime("%Y-%m-%d")
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=out_dir))
    written = []
    try:
        for ticker, frame in frames.items():
            frame.to_csv(tmp / f"DA-{ticker}-T-{stamp}.csv", index=False)
        for ticker in frames:
            final = out_dir / f"DA-{ticker}-T-{stamp}.csv"
            os.replace(tmp / final.name, final)
            for old in out_dir.glob(f"DA-{ticker}-T-*.csv"):
                if old != final:
                    old.unlink()
            written.append(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("downloaded %d ticker(s) %s..%s into %s", len(written), start, end, out_dir)
    return written
