"""US equities: per-ticker Alpha Vantage daily CSVs -> cleaned :class:`Panel`.

Raw layout (``raw_dir``)::

    sp500_daily/daily_adjusted/DA-<TICKER>-T-<YYYY-MM-DD>.csv   one file per ticker
    sp500_daily/data/constituents.csv                           Symbol, Name, Sector

Each CSV has the columns :data:`AV_COLUMNS`; ``open, high, low, close`` and
``volume`` are raw (not split adjusted), ``adjusted_close`` is split- and
dividend-adjusted, ``split_coefficient`` is the split ratio on its ex-date (1
otherwise). The :mod:`riskstudy.data.yfinance_source` downloader writes the
same layout.

Adjustment (after cleaning, per instrument, ``c`` raw close, ``A`` adjusted close):

* prices: ``x_adj[t] = x[t] * A[t] / c[t]`` for ``x`` in open, high, low, close;
* volume: ``v_adj[t] = v[t] * prod_{u > t} split_coefficient[u]`` -- splits
  only. ``v * c / A`` would also scale volume by the dividend factor, which
  does not change the number of shares traded;
* ``dollar_volume[t] = c[t] * v[t]`` (raw, invariant to splits).

The offline file list is the S&P 500 of April 2021, so the data carry
survivorship bias; the point-in-time universe limits but cannot remove it.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import csv as pa_csv

from riskstudy.data.cleaning import (
    MalformedFileError,
    clean_daily,
    concat_logs,
    fill_gaps,
    future_product,
    make_log,
)
from riskstudy.data.panel import Panel, returns_from_close
from riskstudy.data.universe import select_universe

logger = logging.getLogger(__name__)

AV_COLUMNS: tuple[str, ...] = (
    "timestamp", "open", "high", "low", "close", "adjusted_close", "volume", "dividend_amount", "split_coefficient",
)
NUMERIC_COLUMNS: tuple[str, ...] = AV_COLUMNS[1:]
FILE_GLOB = "DA-*-T-*.csv"
DAILY_DIR = Path("sp500_daily") / "daily_adjusted"
CONSTITUENTS = Path("sp500_daily") / "data" / "constituents.csv"
_CONVERT = pa_csv.ConvertOptions(
    column_types={"timestamp": pa.date32(), **{c: pa.float64() for c in NUMERIC_COLUMNS}},
    include_columns=list(AV_COLUMNS),
)


def ticker_from_path(path: str | Path) -> str:
    """The ticker between ``DA-`` and ``-T-`` in ``DA-<TICKER>-T-<date>.csv``."""
    name = Path(path).name
    if not (name.startswith("DA-") and "-T-" in name):
        raise ValueError(f"{path}: not a DA-<TICKER>-T-<date>.csv file name")
    return name[3 : name.rindex("-T-")]


def export_date_from_path(path: str | Path) -> pd.Timestamp:
    """The export date after ``-T-`` in ``DA-<TICKER>-T-<YYYY-MM-DD>.csv`` (``NaT`` if it is not a date)."""
    name = Path(path).name
    return pd.to_datetime(name[name.rindex("-T-") + 3 :].removesuffix(".csv"), format="%Y-%m-%d", errors="coerce")


def us_csv_files(raw_dir: str | Path, tickers: list[str] | None = None) -> dict[str, Path]:
    """Ticker -> CSV path under ``raw_dir/sp500_daily/daily_adjusted``, sorted by ticker."""
    folder = Path(raw_dir) / DAILY_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"US daily data folder not found: {folder}")
    files: dict[str, Path] = {}
    for path in sorted(folder.glob(FILE_GLOB)):
        ticker = ticker_from_path(path)
        if ticker in files:
            raise ValueError(f"Two files for ticker {ticker}: {files[ticker].name} and {path.name} in {folder}")
        files[ticker] = path
    if tickers is not None:
        missing = sorted(set(tickers) - set(files))
        if missing:
            raise FileNotFoundError(f"No {FILE_GLOB} file in {folder} for tickers {missing}")
        files = {t: files[t] for t in tickers}
    return dict(sorted(files.items()))


def _locate_error(path: Path) -> str:
    """Scan a CSV line by line and describe its first malformed line (slow; used on failure only)."""
    seen: set[str] = set()
    with open(path, newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if lineno == 1 or not row:
                continue
            if len(row) != len(AV_COLUMNS):
                return f"line {lineno}: expected {len(AV_COLUMNS)} fields, found {len(row)}"
            try:
                pd.to_datetime(row[0], format="%Y-%m-%d")
            except (ValueError, TypeError):
                return f"line {lineno}: bad timestamp {row[0]!r}"
            if row[0] in seen:
                return f"line {lineno}: duplicate timestamp {row[0]!r}"
            seen.add(row[0])
            for name, value in zip(NUMERIC_COLUMNS, row[1:]):
                try:
                    number = float(value)
                except ValueError:
                    return f"line {lineno}: non-numeric {name} {value!r}"
                if not np.isfinite(number) or (name == "split_coefficient" and number <= 0):
                    return f"line {lineno}: invalid {name} {value!r}"
    return "unparseable content"


def _read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Dates ``(R,)`` datetime64[ns] and values ``(R, 8)`` float64 (:data:`NUMERIC_COLUMNS`), sorted by date."""
    with open(path, newline="") as fh:
        first = fh.readline().strip()
    if first.startswith("{") or not first:
        return None
    if tuple(first.split(",")) != AV_COLUMNS:
        raise MalformedFileError(f"{path}: line 1: header {first!r}, expected {','.join(AV_COLUMNS)}")
    try:
        table = pa_csv.read_csv(path, convert_options=_CONVERT)
    except pa.ArrowInvalid as exc:
        raise MalformedFileError(f"{path}: {_locate_error(path)}") from exc
    if table.num_rows == 0:
        return None
    dates = table.column("timestamp").to_numpy().astype("datetime64[ns]")
    values = np.column_stack([table.column(c).to_numpy() for c in NUMERIC_COLUMNS])
    if not (dates[1:] > dates[:-1]).all():  # Alpha Vantage may also write newest first
        order = np.argsort(dates, kind="stable")
        dates, values = dates[order], values[order]
    if not (np.isfinite(values).all() and (values[:, -1] > 0).all() and (dates[1:] > dates[:-1]).all()):
        raise MalformedFileError(f"{path}: {_locate_error(path)}")
    return dates, values


def read_alpha_vantage_csv(path: str | Path) -> pd.DataFrame | None:
    """Read one Alpha Vantage daily CSV.

    Returns
    -------
    pandas.DataFrame or None
        Columns ``date`` (datetime64) and :data:`NUMERIC_COLUMNS` (float64),
        sorted by date; ``None`` for an empty file (no data rows, e.g. the
        error-JSON stub Alpha Vantage writes for unknown symbols).

    Raises
    ------
    MalformedFileError
        Wrong header, wrong number of fields, non-numeric, missing or
        non-finite values, bad or duplicate dates, non-positive split
        coefficients; the message names the file and line.
    """
    arrays = _read_arrays(Path(path))
    if arrays is None:
        return None
    frame = pd.DataFrame(arrays[1], columns=list(NUMERIC_COLUMNS))
    frame.insert(0, "date", arrays[0])
    return frame


def find_truncated(
    last: np.ndarray, export: np.ndarray, calendar: np.ndarray, *, max_tail_gap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Files that stop early: the truncation rule of :func:`read_us_daily`.

    Parameters
    ----------
    last : numpy.ndarray of datetime64, shape (F,)
        Last row date of each file.
    export : numpy.ndarray of datetime64, shape (F,)
        Export date from each file name (``NaT`` when unknown).
    calendar : numpy.ndarray of datetime64, shape (D,)
        Sorted union of the trading days of all files.
    max_tail_gap : int
        Trading days a file may end before its expected end.

    Returns
    -------
    truncated : bool (F,)
    expected_end : datetime64 (F,)
        ``min(export date, latest last date of all files)``.
    missing : int (F,)
        Trading days of ``calendar`` after ``last`` up to ``expected_end``.
    """
    latest = last.max()
    expected = np.where(np.isnat(export) | (export > latest), latest, export)
    missing = np.searchsorted(calendar, expected, side="right") - np.searchsorted(calendar, last, side="right")
    return missing > max_tail_gap, expected, missing


def read_us_daily(
    raw_dir: str | Path,
    *,
    tickers: list[str] | None = None,
    on_error: str = "raise",
    max_tail_gap: int = 5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every ticker's CSV into one long frame.

    Truncated files. A CSV cut at a line end parses cleanly and would look like
    a delisting. But every file of the folder is one export of the *current*
    constituents (the file name carries the export date, ``DA-<TICKER>-T-2021-04-21.csv``;
    the tickers of ``constituents.csv`` are all members at that date), so a
    listed ticker trades up to the end of the data. A file of a ticker listed in
    ``constituents.csv`` (every file when that list is absent) whose last row lies
    more than ``max_tail_gap`` trading days (of the union of all files' dates)
    before ``min(export date, latest last row of all files)`` is truncated: a
    :class:`MalformedFileError` under ``on_error``. The tolerance covers a
    member acquired just before the export (VAR ends 2021-04-16, 3 trading
    days before the export of 2021-04-21). The files are oldest first, so a cut
    removes the most recent rows.

    Parameters
    ----------
    raw_dir : path
        Folder holding ``sp500_daily/``.
    tickers : list of str, optional
        Restrict to these tickers (all files when None).
    on_error : {"raise", "skip"}
        On a malformed or truncated file, raise :class:`MalformedFileError` or log it and skip the file.
    max_tail_gap : int
        See "Truncated files".

    Returns
    -------
    frame : pandas.DataFrame
        ``instrument, date`` and :data:`NUMERIC_COLUMNS`, sorted by instrument then date.
    log : pandas.DataFrame
        Skipped files (rules ``empty_file``, ``malformed_file``, ``truncated_file``).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    names, dates, values, logs, paths = [], [], [], [], []
    for ticker, path in us_csv_files(raw_dir, tickers).items():
        try:
            arrays = _read_arrays(path)
        except MalformedFileError as exc:
            if on_error == "raise":
                raise
            logs.append(make_log(ticker, pd.NaT, "malformed_file", "skipped", str(exc), level=logging.ERROR))
            continue
        if arrays is None:
            logs.append(make_log(ticker, pd.NaT, "empty_file", "skipped", f"{path.name} has no data rows",
                                 level=logging.WARNING))
            continue
        names.append(ticker)
        dates.append(arrays[0])
        values.append(arrays[1])
        paths.append(path)
    if not names:
        raise FileNotFoundError(f"No readable {FILE_GLOB} files under {Path(raw_dir) / DAILY_DIR}")

    constituents = read_constituents(raw_dir)
    listed = np.ones(len(names), dtype=bool)
    if constituents is not None:
        listed = np.isin(names, constituents["Symbol"].astype(str).to_numpy())
    last = np.array([d[-1] for d in dates], dtype="datetime64[ns]")
    export = pd.DatetimeIndex([export_date_from_path(p) for p in paths]).to_numpy()
    calendar = np.unique(np.concatenate(dates))
    truncated, expected, missing = find_truncated(last, export, calendar, max_tail_gap=max_tail_gap)
    truncated &= listed
    if truncated.any():
        messages = [
            f"{paths[i]}: truncated: last row {pd.Timestamp(last[i]):%Y-%m-%d} is {missing[i]} trading days "
            f"before {pd.Timestamp(expected[i]):%Y-%m-%d} (the end of the data; export date "
            f"{pd.Timestamp(export[i]):%Y-%m-%d}), more than max_tail_gap={max_tail_gap}, for a ticker "
            "listed in constituents.csv"
            for i in np.flatnonzero(truncated)
        ]
        if on_error == "raise":
            raise MalformedFileError("\n".join(messages))
        idx = np.flatnonzero(truncated)
        logs.append(make_log(np.asarray(names, dtype=object)[idx], pd.NaT, "truncated_file", "skipped",
                             messages, level=logging.ERROR))
        keep = np.flatnonzero(~truncated)
        names, dates, values = [names[i] for i in keep], [dates[i] for i in keep], [values[i] for i in keep]
    long = pd.DataFrame(np.concatenate(values), columns=list(NUMERIC_COLUMNS))
    long.insert(0, "date", np.concatenate(dates))
    codes = np.repeat(np.arange(len(names)), [len(d) for d in dates])
    long.insert(0, "instrument", pd.Categorical.from_codes(codes, categories=names))
    return long, concat_logs(logs)


def adjust_prices(frame: pd.DataFrame) -> pd.DataFrame:
    """Adjusted ``open, high, low, close``, split-adjusted ``volume`` and raw ``dollar_volume``.

    ``frame`` is a cleaned long frame sorted by instrument then date; returns a
    frame with ``instrument, date`` and those six columns (see the module docstring).
    """
    group = pd.factorize(frame["instrument"], sort=False)[0]
    raw_close = frame["close"].to_numpy()
    factor = frame["adjusted_close"].to_numpy() / raw_close
    out = frame[["instrument", "date"]].copy()
    for name in ("open", "high", "low", "close"):
        out[name] = frame[name].to_numpy() * factor
    volume = frame["volume"].to_numpy()
    out["volume"] = volume * future_product(frame["split_coefficient"].to_numpy(), group)
    out["dollar_volume"] = raw_close * volume
    return out


def read_constituents(raw_dir: str | Path) -> pd.DataFrame | None:
    """``constituents.csv`` (Symbol, Name, Sector, ...) or None when absent."""
    path = Path(raw_dir) / CONSTITUENTS
    return pd.read_csv(path, dtype=str) if path.exists() else None


def load_us_panel(
    raw_dir: str | Path,
    *,
    start: str,
    end: str,
    top_n: int,
    universe_window: int = 252,
    min_coverage: float = 0.9,
    rebalance_every: int = 21,
    max_ffill: int = 3,
    jump_threshold: float = 0.5,
    max_daily_move: float = 3.0,
    max_price: float = 1e6,
    max_tail_gap: int = 5,
    on_error: str = "raise",
    tickers: list[str] | None = None,
) -> Panel:
    """Read, clean, adjust and assemble the US market into a :class:`Panel`.

    Pipeline: :func:`read_us_daily` -> :func:`~riskstudy.data.cleaning.clean_daily`
    (on each ticker's whole history) -> :func:`adjust_prices` -> ``(T, N)`` arrays on
    the union of trading days up to ``end`` ->
    :func:`~riskstudy.data.cleaning.fill_gaps` ->
    :func:`~riskstudy.data.universe.select_universe` -> rows ``start..end``.
    History before ``start`` only warms up the universe window; returns are
    recomputed from the cleaned close (first row NaN). Columns keep every
    instrument that is a member on some day of ``start..end``; the cleaning log
    covers every file read (all its tickers and dates).

    Parameters
    ----------
    raw_dir : path
        Folder holding ``sp500_daily/``.
    start, end : str
        Inclusive date range of the panel.
    top_n, universe_window, min_coverage, rebalance_every
        See :func:`~riskstudy.data.universe.select_universe`.
    max_ffill : int
        Longest gap to forward-fill, see :func:`~riskstudy.data.cleaning.fill_gaps`.
    jump_threshold : float
        Jump size for the spike and split rules, see :mod:`riskstudy.data.cleaning`.
    max_daily_move, max_price : float
        Plausibility bounds (rule 4 of :mod:`riskstudy.data.cleaning`).
    max_tail_gap : int
        Truncated-file tolerance, see :func:`read_us_daily`.
    on_error : {"raise", "skip"}
        Malformed or truncated files and instruments failing the plausibility
        rules: raise (the message names instrument and file), or log and skip.
    tickers : list of str, optional
        Only these tickers.
    """
    frame, read_log = read_us_daily(raw_dir, tickers=tickers, on_error=on_error, max_tail_gap=max_tail_gap)
    files = {t: str(p) for t, p in us_csv_files(raw_dir, tickers).items()}
    frame, clean_log = clean_daily(
        frame, jump_threshold=jump_threshold, max_daily_move=max_daily_move, max_price=max_price,
        on_error=on_error, files=files,
    )
    adj = adjust_prices(frame)
    adj = adj[adj["date"] <= pd.Timestamp(end)]

    dates = pd.DatetimeIndex(np.sort(adj["date"].unique()))
    codes, instruments = pd.factorize(adj["instrument"], sort=True)
    instruments = pd.Index(instruments)
    rows = dates.searchsorted(adj["date"].to_numpy())
    shape = (len(dates), len(instruments))
    fields = {}
    for name in ("open", "high", "low", "close", "volume", "dollar_volume"):
        arr = np.full(shape, np.nan)
        arr[rows, codes] = adj[name].to_numpy()
        fields[name] = arr
    del adj, frame
    fields, fill_log = fill_gaps(fields, dates=dates, instruments=instruments, max_ffill=max_ffill)
    member = select_universe(
        fields["close"], fields["dollar_volume"],
        top_n=top_n, window=universe_window, min_coverage=min_coverage, rebalance_every=rebalance_every,
    )

    sl = slice(int(dates.searchsorted(pd.Timestamp(start))), len(dates))
    keep = member[sl].any(axis=0)
    fields = {k: v[sl][:, keep] for k, v in fields.items()}
    fields["ret"] = returns_from_close(fields["close"])
    instruments = instruments[keep]
    constituents = read_constituents(raw_dir)
    sector = None
    if constituents is None:
        logger.warning("No %s under %s: sectors unknown", CONSTITUENTS, raw_dir)
    else:
        sector = constituents.set_index("Symbol")["Sector"].reindex(instruments).rename("sector")
    log = concat_logs([read_log, clean_log, fill_log])
    logger.info(
        "US panel %s..%s: %d days x %d instruments (ever members of top %d); %d cleaning actions",
        start, end, sl.stop - sl.start, len(instruments), top_n, len(log),
    )
    return Panel("us", dates[sl], instruments, fields, member[sl][:, keep], sector, log)


def us_benchmark_returns(panel: Panel, *, window: int = 21) -> pd.Series:
    """Dollar-volume-weighted return of the day's universe members -- a proxy, not the S&P 500 index.

    No index series is available offline, so the US market return is proxied by

    .. math::

        R_t = \\frac{\\sum_i w_{t,i} r_{t,i}}{\\sum_i w_{t,i}}, \\qquad
        w_{t,i} = \\mathbb{1}[\\mathrm{member}_{t,i}] \\cdot \\frac{1}{W}\\sum_{u=t-W}^{t-1} DV_{u,i}

    i.e. weights from the trailing ``W = window``-day mean dollar volume known at
    the close of ``t - 1`` (missing days skipped), applied to day-``t`` returns.
    NaN where no member has a weight and a return.

    Returns
    -------
    pandas.Series indexed by ``panel.dates``, name ``"us_benchmark"``.
    """
    dv = panel["dollar_volume"]
    ret = panel["ret"]
    finite = np.isfinite(dv)
    csum = np.vstack([np.zeros((1, dv.shape[1])), np.cumsum(np.where(finite, dv, 0.0), axis=0)])
    ccnt = np.vstack([np.zeros((1, dv.shape[1])), np.cumsum(finite, axis=0)])
    t = np.arange(dv.shape[0])
    lo = np.maximum(t - window, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_dv = (csum[t] - csum[lo]) / (ccnt[t] - ccnt[lo])  # days t-window .. t-1
        w = np.where(panel.member & np.isfinite(ret) & (mean_dv > 0), mean_dv, 0.0)
        total = w.sum(axis=1)
        bench = np.where(total > 0, (w * np.nan_to_num(ret)).sum(axis=1) / total, np.nan)
    return pd.Series(bench, index=panel.dates, name="us_benchmark")
