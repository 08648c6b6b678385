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
"""

from __future__ import annotations

import getpass
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

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


def load_cn_panel(
    raw_dir: Path, *, start: str, end: str, index: str = "csi300", benchmark: str = "sh000300"
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

    init_qlib(_qlib_dir(raw_dir))
    spans = D.list_instruments(D.instruments(index), start_time=start, end_time=end, freq="day", as_list=False)
    codes = sorted(c for c in spans if c.lower() != benchmark.lower())
    if not codes:
        raise ValueError(
            f"No {index!r} members between {start} and {end} in {_qlib_dir(raw_dir) / 'instruments' / index}.txt"
        )
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

    cleaning_log = _spell_log(suspended, dates=dates, codes=codes, rule="suspended", action="masked")
    log.info(
        "CN panel %s..%s: %d stocks, %d days, %.1f members/day; masked %d suspended stock-days in %d spells",
        dates[0].date(), dates[-1].date(), len(codes), len(dates), member.sum(1).mean(),
        suspended.sum(), len(cleaning_log),
    )
    return Panel(market="cn", dates=dates, instruments=pd.Index(codes), fields=fields, member=member,
                 sector=None, cleaning_log=cleaning_log)


def cn_benchmark_returns(raw_dir: Path, *, start: str, end: str, code: str = "sh000300") -> pd.Series:
    """Daily simple returns of the index ``code`` over ``[start, end]``.

    Returns
    -------
    pandas.Series
        Indexed by qlib's trading days, named ``code``: ``close[t] / close[t-1] - 1``,
        NaN on the first day (as in :attr:`Panel.ret`).
    """
    init_qlib(_qlib_dir(raw_dir))
    dates, q = _features([code.upper()], ["close"], start=start, end=end)
    if not np.isfinite(q["close"]).any():
        raise ValueError(f"No close prices for benchmark {code!r} in {_qlib_dir(raw_dir)}/features/{code.lower()}")
    return pd.Series(returns_from_close(q["close"])[:, 0], index=dates, name=code)
