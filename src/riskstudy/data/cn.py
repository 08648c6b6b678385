"""China A-shares (CSI300 universe) read through pyqlib from a qlib binary folder.

Layout of ``<raw>/cn_qlib_csi300`` (qlib's ``day`` format): ``calendars/day.txt``,
``instruments/{csi300,all}.txt`` (``code<TAB>start<TAB>end`` spans, inclusive)
and ``features/<code>/<field>.day.bin`` (float32 little-endian; the first value
is the start index into the calendar, the rest one value per trading day).

Conventions of this data set, checked on the files
-------------------------------------------------
* ``$open, $high, $low, $close`` are back-adjusted; ``$close / $factor`` is the
  raw (traded) price.
* ``$volume`` is the RAW share volume, *not* qlib's usual ``raw / factor``:
  across the 1,018 corporate actions that raise ``$factor`` by more than 30 %
  (2010-2026, bonus shares and splits), the log ratio of median volume in the
  20 days after vs before moves one for one with the log factor jump (slope
  1.01; e.g. sz000001 on 2013-06-20, a 10-for-6 bonus issue). Hence the panel's
  adjusted volume is ``$volume / $factor`` and
  ``dollar_volume = ($close / $factor) * $volume = close * volume`` (there is no
  amount field, so this is the traded-value proxy).
* Suspended days are forward-filled with ``$volume == 0`` (57,799 stock-days of
  the 664 stocks of 2010-2021; another 41 have a price but no ``$volume`` and are
  treated alike). They are masked:
  every numeric field is NaN and ``member`` is False there, logged as rule
  ``"suspended"`` (one log row per suspension spell). ``ret`` is
  :func:`~riskstudy.data.panel.returns_from_close` of the masked close, so the
  day after a suspension has ``ret = NaN``: the move accumulated over a
  suspension is never booked as one day's return, and no suspended day is a
  zero return.

Validation before qlib (:func:`validate_bins`). qlib reads a broken
``.day.bin`` badly: an empty file or a corrupt header fails deep inside it
(``IndexError``), an odd-sized one fails on the buffer size, and garbage bytes
load as prices up to 3e38. So every ``<field>.day.bin`` of :data:`QLIB_FIELDS`
of every instrument is checked first; an instrument that fails is an error
under ``on_error`` (``"raise"``: :class:`~riskstudy.data.cleaning.MalformedFileError`
or :class:`~riskstudy.data.cleaning.ImplausibleDataError` naming instrument and
file; ``"skip"``: the instrument is left out and logged, action ``"skipped"``):

* ``malformed_file`` (whole file) -- missing, empty, size not a multiple of 4,
  header only, start index not an integer in ``[0, len(calendar))``, or values
  running past the calendar's end;
* ``non_finite_price`` / ``non_positive_price`` -- an infinite value, a price or
  ``factor <= 0`` or a negative volume on a day of ``[start, end]`` (NaN is
  missing, as qlib reads it);
* ``absurd_price`` -- a price above ``max_price`` in ``[start, end]``;
* ``implausible_move`` -- ``|log(close_t / close_{t-1})| > log(1 + max_daily_move)``
  between two consecutive *tradable* days of ``[start, end]`` (the returns the
  panel books; the move over a suspension never is one). A-share price limits
  (10 %, 20 % on ChiNext/STAR, 44 % on a first listing day) keep real moves far
  below the default ``max_daily_move = 1`` (x2 or x0.5); the largest such move
  of the CSI300 members in 2010-2020 is 21 % (SZ002466 on 2020-01-02).

Values are checked on ``[start, end]`` only, the data the panel reads: a
glitch after the study window (e.g. sz302132, x5.6 on 2025-02-18) does not
stop it.
"""

from __future__ import annotations

import getpass
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from riskstudy.data.cleaning import (
    MalformedFileError,
    apply_on_error,
    concat_logs,
    empty_log,
)
from riskstudy.data.panel import Panel, returns_from_close
from riskstudy.paths import DataLocationError

log = logging.getLogger(__name__)

CN_DIRNAME = "cn_qlib_csi300"
QLIB_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "factor")
_QLIB_URI: Path | None = None


def _qlib_dir(raw_dir: Path) -> Path:
    path = Path(raw_dir) / CN_DIRNAME
    if not (path / "calendars" / "day.txt").exists():
        raise DataLocationError(
            f"No qlib CSI300 data at {path} (expected {path / 'calendars' / 'day.txt'}); "
            "set RISKSTUDY_RAW_DIR or run `python -m riskstudy.data.download cn`."
        )
    return path


def init_qlib(provider_uri: Path) -> None:
    """Initialise pyqlib for ``provider_uri`` (region ``cn``) unless already done for it.

    Quiet (``WARNING``) and idempotent: re-initialises, clearing qlib's memory
    caches, only when ``provider_uri`` changes. The experiment manager points at a
    SQLite store in the temp dir because mlflow >= 3.13 refuses qlib's default
    ``file:./mlruns`` store; it is only created if a qlib recorder is ever used.
    """
    global _QLIB_URI
    provider_uri = Path(provider_uri).resolve()
    if provider_uri == _QLIB_URI:
        return
    import qlib

    store = Path(tempfile.gettempdir()) / f"riskstudy-qlib-mlflow-{getpass.getuser()}"
    store.mkdir(exist_ok=True)
    qlib.init(
        provider_uri=str(provider_uri),
        region="cn",
        logging_level=logging.WARNING,
        kernels=1,
        exp_manager={
            "class": "MLflowExpManager",
            "module_path": "qlib.workflow.expm",
            "kwargs": {"uri": f"sqlite:///{store / 'mlflow.db'}", "default_exp_name": "riskstudy"},
        },
    )
    _QLIB_URI = provider_uri


def _features(
    codes: list[str], fields: list[str], *, start: str, end: str
) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    """``D.features`` pivoted to ``(T, N)`` float64 arrays on qlib's calendar of ``[start, end]``."""
    from qlib.data import D

    dates = pd.DatetimeIndex(D.calendar(start_time=start, end_time=end, freq="day"))
    df = D.features(codes, [f"${f}" for f in fields], start_time=start, end_time=end, freq="day")
    ri = dates.get_indexer(df.index.get_level_values("datetime"))
    ci = pd.Index(codes).get_indexer(df.index.get_level_values("instrument"))
    out = {}
    for f in fields:
        arr = np.full((len(dates), len(codes)), np.nan)
        arr[ri, ci] = df[f"${f}"].to_numpy(dtype=np.float64)
        out[f] = arr
    return dates, out


def _span_mask(
    spans: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]], codes: list[str], dates: pd.DatetimeIndex
) -> np.ndarray:
    """Boolean ``(T, N)``: ``dates[t]`` lies in one of the inclusive membership spans of ``codes[n]``."""
    col, lo, hi = zip(*[(j, s, e) for j, c in enumerate(codes) for s, e in spans[c]])
    lo_i = dates.searchsorted(pd.DatetimeIndex(lo), side="left")
    hi_i = dates.searchsorted(pd.DatetimeIndex(hi), side="right")
    count = np.zeros((len(dates) + 1, len(codes)), dtype=np.int64)
    np.add.at(count, (lo_i, np.asarray(col)), 1)
    np.add.at(count, (hi_i, np.asarray(col)), -1)
    return np.cumsum(count, axis=0)[:-1] > 0


def _spell_log(flag: np.ndarray, *, dates: pd.DatetimeIndex, codes: list[str], rule: str, action: str) -> pd.DataFrame:
    """One cleaning-log row per run of consecutive ``True`` in each column of ``flag`` (T, N)."""
    padded = np.zeros((flag.shape[0] + 2, flag.shape[1]), dtype=np.int8)
    padded[1:-1] = flag
    d = np.diff(padded, axis=0).T  # (N, T+1); nonzero scans column by column, in time order
    col, start = np.nonzero(d == 1)
    _, stop = np.nonzero(d == -1)  # exclusive
    return pd.DataFrame(
        {
            "instrument": np.asarray(codes, dtype=object)[col],
            "date": dates[start],
            "rule": rule,
            "action": action,
            "detail": [f"{n} day(s) through {day:%Y-%m-%d}" for n, day in zip(stop - start, dates[stop - 1])],
        }
    )


def read_calendar(qdir: Path) -> pd.DatetimeIndex:
    """qlib's ``calendars/day.txt`` as a DatetimeIndex."""
    path = Path(qdir) / "calendars" / "day.txt"
    return pd.DatetimeIndex(pd.to_datetime(path.read_text().split(), format="%Y-%m-%d"))


def bin_path(qdir: Path, code: str, field: str) -> Path:
    """``features/<code lowercase>/<field>.day.bin``."""
    return Path(qdir) / "features" / code.lower() / f"{field}.day.bin"


def _bin_error(path: Path, raw: np.ndarray | None, n_calendar: int) -> str | None:
    """Why a ``.day.bin`` (read as float32 ``raw``, None if missing) is malformed, or None."""
    if raw is None:
        return "file missing"
    size = path.stat().st_size
    if size == 0:
        return "empty file (0 bytes)"
    if size % 4:
        return f"size {size} bytes is not a multiple of 4 (float32)"
    if raw.size == 1:
        return "header only, no values"
    start = float(raw[0])
    if not (np.isfinite(start) and start == int(start) and 0 <= start < n_calendar):
        return f"header (start index) {start!r} is not an integer in [0, {n_calendar}) of the calendar"
    if int(start) + raw.size - 1 > n_calendar:
        return f"start {int(start)} + {raw.size - 1} values runs past the calendar's {n_calendar} days"
    return None


def validate_bins(
    qdir: Path,
    codes: list[str],
    *,
    start: str,
    end: str,
    fields: tuple[str, ...] = QLIB_FIELDS,
    max_daily_move: float = 1.0,
    max_price: float = 1e6,
) -> pd.DataFrame:
    """Check the ``.day.bin`` files of ``codes`` (see the module docstring, "Validation before qlib").

    Parameters
    ----------
    qdir : Path
        The qlib folder.
    codes : list of str
        Instruments, ``N``.
    start, end : str
        Window whose values are checked.
    fields : tuple of str
        Fields to check; ``close`` is required, ``volume`` (if given) defines tradable days.
    max_daily_move, max_price : float
        Plausibility bounds.

    Returns
    -------
    pandas.DataFrame
        Error rows (:data:`~riskstudy.data.cleaning.LOG_COLUMNS`, action ``"skipped"``), at
        most one per instrument and rule (its first day); the detail names the file.
        Empty when every file passes.
    """
    calendar = read_calendar(qdir)
    n_cal = len(calendar)
    lo = int(calendar.searchsorted(pd.Timestamp(start), side="left"))
    hi = int(calendar.searchsorted(pd.Timestamp(end), side="right"))
    T, N = hi - lo, len(codes)
    arrays = {f: np.full((T, N), np.nan) for f in fields}
    malformed: list[tuple[str, str]] = []
    for j, code in enumerate(codes):  # file I/O; the value checks below are vectorised
        for f in fields:
            path = bin_path(qdir, code, f)
            raw = np.fromfile(path, dtype="<f4") if path.is_file() and path.stat().st_size % 4 == 0 else None
            if raw is None and path.is_file():
                raw = np.empty(0, dtype="<f4")
            why = _bin_error(path, raw, n_cal)
            if why is not None:
                malformed.append((code, f"{path}: {why}"))
                break
            s0 = int(raw[0])
            a, b = max(lo, s0), min(hi, s0 + raw.size - 1)
            if a < b:
                arrays[f][a - lo : b - lo, j] = raw[1 + a - s0 : 1 + b - s0]
    bad_codes = {c for c, _ in malformed}
    rows = [pd.DataFrame({"instrument": [c for c, _ in malformed], "date": pd.NaT, "rule": "malformed_file",
                          "action": "skipped", "detail": [d for _, d in malformed]})]

    prices = [f for f in fields if f in ("open", "high", "low", "close", "factor")]
    with np.errstate(invalid="ignore", divide="ignore"):
        checks = {
            "non_finite_price": np.any([np.isinf(arrays[f]) for f in fields], axis=0),
            "non_positive_price": np.any([arrays[f] <= 0 for f in prices]
                                         + ([arrays["volume"] < 0] if "volume" in arrays else []), axis=0),
            "absurd_price": np.any([arrays[f] > max_price for f in prices if f != "factor"], axis=0),
        }
        close = arrays["close"]
        tradable = np.isfinite(close) & (close > 0)
        if "volume" in arrays:
            tradable &= arrays["volume"] > 0
        move = np.zeros((T, N), dtype=bool)
        d = np.full((T, N), np.nan)
        d[1:] = np.log(close[1:] / close[:-1])
        move[1:] = tradable[1:] & tradable[:-1] & (np.abs(d[1:]) > np.log1p(max_daily_move))
        checks["implausible_move"] = move & ~checks["absurd_price"] & ~checks["non_finite_price"]
    offending_field = {
        "non_finite_price": lambda t, n: next(f for f in fields if np.isinf(arrays[f][t, n])),
        "non_positive_price": lambda t, n: next(f for f in prices + ["volume"] if f in arrays and arrays[f][t, n] <= 0
                                                and (f != "volume" or arrays[f][t, n] < 0)),
        "absurd_price": lambda t, n: next(f for f in prices if arrays[f][t, n] > max_price),
        "implausible_move": lambda t, n: "close",
    }
    for rule, flag in checks.items():
        flag[:, [j for j, c in enumerate(codes) if c in bad_codes]] = False
        cols = np.flatnonzero(flag.any(axis=0))
        first = flag[:, cols].argmax(axis=0)  # first offending day of each instrument
        details = []
        for t, n in zip(first, cols):  # one row per failing instrument (few)
            f = offending_field[rule](t, n)
            value = arrays[f][t, n]
            what = (f"close x{np.exp(d[t, n]):.6g} in one day, beyond x{1 + max_daily_move:g} or "
                    f"x{1 / (1 + max_daily_move):.4g} (max_daily_move={max_daily_move:g})"
                    if rule == "implausible_move" else f"{f} = {value:.6g}"
                    + (f" above max_price {max_price:g}" if rule == "absurd_price" else ""))
            days = int(flag[:, n].sum())
            details.append(f"{bin_path(qdir, codes[n], f)}: {what}" + (f" ({days} days)" if days > 1 else ""))
        rows.append(pd.DataFrame({"instrument": [codes[n] for n in cols], "date": calendar[lo + first],
                                  "rule": rule, "action": "skipped", "detail": details}))
        bad_codes |= {codes[n] for n in cols}
    rows = [r.astype({"date": "datetime64[ns]"}) for r in rows]
    return concat_logs(rows)


def _raise_or_skip(errors: pd.DataFrame, *, on_error: str, qdir: Path) -> set[str]:
    """:func:`~riskstudy.data.cleaning.apply_on_error` for bin errors; malformed files raise MalformedFileError."""
    if on_error == "raise" and (errors["rule"] == "malformed_file").any():
        bad = errors[errors["rule"] == "malformed_file"]
        lines = "\n".join(f"  {r.instrument}: {r.detail}" for r in bad.itertuples())
        raise MalformedFileError(
            f"{len(bad)} instrument(s) with a malformed .day.bin under {qdir / 'features'} "
            f"(set on_error: skip to leave them out):\n{lines}"
        )
    return apply_on_error(errors, on_error=on_error, what="plausibility rules of the qlib files")


def load_cn_panel(
    raw_dir: Path,
    *,
    start: str,
    end: str,
    index: str = "csi300",
    benchmark: str = "sh000300",
    on_error: str = "raise",
    max_daily_move: float = 1.0,
    max_price: float = 1e6,
) -> Panel:
    """Load the China A-share panel of every stock ever in ``index`` during ``[start, end]``.

    Parameters
    ----------
    raw_dir : Path
        Raw-data directory holding ``cn_qlib_csi300/``.
    start, end : str
        Inclusive date range (``YYYY-MM-DD``), cut to qlib's calendar.
    index : str
        qlib market (``instruments/<index>.txt``) giving point-in-time membership spans.
    benchmark : str
        The index's own code, never treated as a stock.
    on_error : {"raise", "skip"}
        Instruments whose files fail :func:`validate_bins`: raise, or leave them out (logged).
    max_daily_move, max_price : float
        Plausibility bounds of :func:`validate_bins`.

    Returns
    -------
    Panel
        Market ``"cn"``, ``T`` days x ``N`` stocks with ``open, high, low, close`` =
        back-adjusted qlib prices, ``volume = $volume / $factor`` (adjusted),
        ``dollar_volume = ($close / $factor) * $volume`` (raw price x raw volume),
        ``ret[t] = close[t] / close[t-1] - 1`` on the masked close, ``member[t, n]`` =
        inside a membership span AND tradable (``volume > 0``, finite positive close),
        ``sector=None``. Suspended days (``$volume == 0`` or missing) are NaN everywhere.
    """
    from qlib.data import D

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    qdir = _qlib_dir(raw_dir)
    init_qlib(qdir)
    spans = D.list_instruments(D.instruments(index), start_time=start, end_time=end, freq="day", as_list=False)
    codes = sorted(c for c in spans if c.lower() != benchmark.lower())
    if not codes:
        raise ValueError(
            f"No {index!r} members between {start} and {end} in {qdir / 'instruments' / index}.txt"
        )
    errors = validate_bins(qdir, codes, start=start, end=end, max_daily_move=max_daily_move, max_price=max_price)
    skipped = _raise_or_skip(errors, on_error=on_error, qdir=qdir)
    codes = [c for c in codes if c not in skipped]
    if not codes:
        raise ValueError(f"Every {index!r} member between {start} and {end} was skipped (see the errors above)")
    dates, q = _features(codes, list(QLIB_FIELDS), start=start, end=end)

    observed = np.isfinite(q["close"])
    tradable = observed & (q["close"] > 0) & (q["volume"] > 0)  # NaN compares False
    suspended = observed & ~tradable
    raw_close = q["close"] / q["factor"]
    fields = {k: np.where(tradable, q[k], np.nan) for k in ("open", "high", "low", "close")}
    fields["volume"] = np.where(tradable, q["volume"] / q["factor"], np.nan)
    fields["dollar_volume"] = np.where(tradable, raw_close * q["volume"], np.nan)
    fields["ret"] = returns_from_close(fields["close"])
    member = _span_mask(spans, codes, dates) & tradable

    spells = _spell_log(suspended, dates=dates, codes=codes, rule="suspended", action="masked")
    cleaning_log = concat_logs([errors, spells.astype({"date": "datetime64[ns]"}) if len(spells) else empty_log()])
    log.info(
        "CN panel %s..%s: %d stocks (%d skipped), %d days, %.1f members/day; masked %d suspended stock-days "
        "in %d spells",
        dates[0].date(), dates[-1].date(), len(codes), len(skipped), len(dates), member.sum(1).mean(),
        suspended.sum(), len(spells),
    )
    return Panel(market="cn", dates=dates, instruments=pd.Index(codes), fields=fields, member=member,
                 sector=None, cleaning_log=cleaning_log)


def cn_benchmark_returns(
    raw_dir: Path, *, start: str, end: str, code: str = "sh000300", max_daily_move: float = 1.0
) -> pd.Series:
    """Daily simple returns of the index ``code`` over ``[start, end]``.

    The index's ``close.day.bin`` is checked by :func:`validate_bins` (no volume,
    no price bound) and any error raises: there is no panel without its benchmark.

    Returns
    -------
    pandas.Series
        Indexed by qlib's trading days, named ``code``: ``close[t] / close[t-1] - 1``,
        NaN on the first day (as in :attr:`Panel.ret`).
    """
    qdir = _qlib_dir(raw_dir)
    init_qlib(qdir)
    errors = validate_bins(qdir, [code.upper()], start=start, end=end, fields=("close",),
                           max_daily_move=max_daily_move, max_price=np.inf)
    _raise_or_skip(errors, on_error="raise", qdir=qdir)  # no panel without its benchmark
    dates, q = _features([code.upper()], ["close"], start=start, end=end)
    if not np.isfinite(q["close"]).any():
        raise ValueError(f"No close prices for benchmark {code!r} in {_qlib_dir(raw_dir)}/features/{code.lower()}")
    return pd.Series(returns_from_close(q["close"])[:, 0], index=dates, name=code)
