"""Rule-based cleaning of daily price data, with an auditable log.

Each rule is a small function. The row-level rules work on a *long* frame of
one row per ``(instrument, date)``, sorted by instrument then date, with the
Alpha Vantage columns (raw ``open, high, low, close, volume``, the split- and
dividend-adjusted ``adjusted_close`` and the event columns
``dividend_amount, split_coefficient``). "Previous" and "next" always mean the
neighbouring *row of the same instrument* (its previous/next observation).
Every rule returns the cleaned frame and a log frame with one row per action
(columns :data:`LOG_COLUMNS`); every action is also sent to :mod:`logging`.

Rules, in the order :func:`clean_daily` applies them (``L = log(1 + jump_threshold)``,
log moves ``d_t = log(p_t / p_{t-1})`` of the adjusted close ``p``):

1. :func:`drop_non_positive` -- rows with a non-positive or missing price are dropped.
2. :func:`remove_spikes` -- an isolated spike that reverses is dropped: rows
   ``t..t+k-1`` (``k <= max_len``) whose entry move ``d_t`` and exit move
   ``d_{t+k}`` have opposite signs, the larger exceeds ``L`` and the smaller
   ``L / 2``, the round trip ``|log(p_{t+k} / p_{t-1})| < tolerance``, moves
   inside the spike are below ``L / 2`` and the moves just before and after it
   are below ``L / 2`` (isolation). Example: TRMB 2007-02-23 (adjusted
   x2 then x0.49, a split applied one day early).
3. :func:`repair_split_adjustments` -- a move of the adjusted close whose ratio
   ``a_t = p_t / p_{t-1}`` lies within ``tolerance`` of a common split ratio
   ``s`` (:data:`SPLIT_RATIOS`) although the raw close does not make that move
   (``log(c_t / c_{t-1}) / log(a_t) < 1/2``: the jump comes from the adjustment
   factor, not from trading) is a bad split adjustment. Repair: the adjusted
   history before ``t`` is multiplied by ``s``, leaving the residual move
   ``a_t / s``; a split coefficient recorded on that day is reset to 1 (the raw
   prices show no such split). Genuine large moves (HIG +102% on 2008-12-05,
   OXY -50% on 2020-03-09) show in the raw close too and are kept. Adjustment-
   driven jumps beyond ``L`` that are not near a split ratio (un-adjusted
   spin-offs, e.g. MSI 2011-01-04) cannot be repaired from the data; they are
   logged with action ``"kept"``.

4. :func:`flag_implausible` -- plausibility rules that no repair can satisfy;
   an instrument failing one is an error under the reader's ``on_error`` policy
   (``"raise"``: :class:`ImplausibleDataError` naming each instrument, file and
   day; ``"skip"``: every row of the instrument is dropped and logged with
   action ``"skipped"`` at ``ERROR`` level). The rules, with
   ``M = log(1 + max_daily_move)``:

   * ``absurd_price`` -- a raw or adjusted price above ``max_price`` (garbage
     bytes, a wrong unit);
   * ``implausible_move`` -- a move ``|d_t| > M`` of the adjusted close that
     survives rules 2-3, i.e. it did not revert as a spike and is not a split
     ratio. Whether the raw close moves too or not (a lasting 100x jump in raw
     and adjusted close; an adjustment factor off by 100x), no large-cap stock
     moves that far in one day: the default ``max_daily_move = 3`` (+300 % or
     -75 %) lies well beyond the largest real move of the S&P 500 files after
     rules 2-3 (PWR -68 % on 2002-07-02, ``|d| = 1.14 < M = 1.39``).

   Adjustment-driven jumps between ``L`` and ``M`` stay as rule 3 logs them
   (``"kept"`` with a warning).

Non-finite prices never reach these rules: the readers reject them as
malformed files. After assembly into ``(T, N)`` arrays, :func:`fill_gaps`
forward-fills short gaps inside an instrument's listing.

:func:`log_summary` counts skipped and repaired instruments of a log (the
data stage's one console line per market).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

logger = logging.getLogger(__name__)

LOG_COLUMNS: list[str] = ["instrument", "date", "rule", "action", "detail"]
REPAIR_ACTIONS: tuple[str, ...] = ("dropped", "repaired")  # row-level fixes; the instrument is kept
SKIP_ACTION = "skipped"  # the whole instrument (file) is left out


class MalformedFileError(ValueError):
    """A raw file that cannot be read as valid data; the message names the file (and line or field)."""


class ImplausibleDataError(ValueError):
    """Raw data that fails a plausibility rule; the message names each instrument, file and day."""
SPLIT_RATIOS: tuple[float, ...] = (2.0, 3.0, 4.0, 1.5, 0.5, 1.0 / 3.0, 0.25, 2.0 / 3.0)
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adjusted_close")


def empty_log() -> pd.DataFrame:
    """An empty cleaning log with the standard columns."""
    return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "date" else object) for c in LOG_COLUMNS})


def make_log(
    instrument: ArrayLike, date: ArrayLike, rule: str, action: str, detail: ArrayLike, *, level: int = logging.INFO
) -> pd.DataFrame:
    """Log rows for one rule (array-likes or scalars) and emit each at ``level``."""
    log = pd.DataFrame(
        {"instrument": instrument, "date": pd.to_datetime(date), "rule": rule, "action": action, "detail": detail},
        index=range(len(np.atleast_1d(instrument))),
    )
    for row in log.itertuples(index=False):
        day = "" if pd.isna(row.date) else f" {row.date:%Y-%m-%d}"
        logger.log(level, "%s%s: %s %s (%s)", row.instrument, day, row.rule, row.action, row.detail)
    return log


def concat_logs(logs: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate log frames (ignoring empty ones) in order."""
    logs = [log for log in logs if len(log)]
    return pd.concat(logs, ignore_index=True) if logs else empty_log()


def _shift(x: np.ndarray, group: np.ndarray, k: int) -> np.ndarray:
    """``x`` at row ``i - k`` when that row belongs to the same group as row ``i``, else NaN.

    ``k > 0`` looks back, ``k < 0`` looks ahead; ``x`` is a float array of shape ``(R,)``.
    """
    out = np.full(len(x), np.nan)
    if abs(k) >= len(x):
        return out
    if k > 0:
        same = group[k:] == group[:-k]
        out[k:] = np.where(same, x[:-k], np.nan)
    elif k < 0:
        same = group[:k] == group[-k:]
        out[:k] = np.where(same, x[-k:], np.nan)
    else:
        out[:] = x
    return out


def _codes(frame: pd.DataFrame) -> np.ndarray:
    return pd.factorize(frame["instrument"], sort=False)[0]


def future_product(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """``prod_{j > i, group_j = group_i} values_j`` for each row ``i`` of a group-sorted array.

    Carries an event on row ``j`` (a split, a bad-adjustment repair) back onto
    the history before it; exact for products of small integers. Shape ``(R,)``.
    """
    nxt = np.ones(len(values))
    nxt[:-1] = np.where(group[1:] == group[:-1], values[1:], 1.0)  # the next row's value within the group
    return pd.Series(nxt[::-1]).groupby(group[::-1]).cumprod().to_numpy()[::-1]


def drop_non_positive(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop rows whose raw OHLC or adjusted close is non-positive or missing."""
    prices = frame[list(PRICE_COLUMNS)].to_numpy()
    bad = ~(prices > 0).all(axis=1)
    rows = frame[bad]
    detail = [f"prices {p.tolist()}" for p in prices[bad]]
    log = make_log(rows["instrument"].to_numpy(), rows["date"].to_numpy(), "non_positive_price", "dropped", detail)
    return frame[~bad].reset_index(drop=True), log


def remove_spikes(
    frame: pd.DataFrame, *, threshold: float, max_len: int = 2, tolerance: float = 0.05
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop isolated spikes of the adjusted close that reverse within ``max_len`` rows.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long frame sorted by instrument, date.
    threshold : float
        Jump size as a simple return; ``L = log(1 + threshold)`` (0.5: +50% or -33%).
    max_len : int
        Longest spike, in rows.
    tolerance : float
        Largest ``|log|`` round trip from the row before the spike to the row after it.
    """
    g = _codes(frame)
    lp = np.log(frame["adjusted_close"].to_numpy())
    d = lp - _shift(lp, g, 1)  # move into each row
    big = np.log1p(threshold)
    spike = np.zeros(len(frame), dtype=bool)
    with np.errstate(invalid="ignore"):
        for k in range(1, max_len + 1):
            entry, exit_ = d, _shift(d, g, -k)
            roundtrip = _shift(lp, g, -k) - _shift(lp, g, 1)
            ok = (
                (entry * exit_ < 0)
                & (np.maximum(np.abs(entry), np.abs(exit_)) > big)
                & (np.minimum(np.abs(entry), np.abs(exit_)) > big / 2)
                & (np.abs(roundtrip) < tolerance)
                & ~(np.abs(_shift(d, g, 1)) >= big / 2)  # calm before (or no earlier row)
                & ~(np.abs(_shift(d, g, -(k + 1))) >= big / 2)  # calm after
            )
            for j in range(1, k):
                ok &= np.abs(_shift(d, g, -j)) < big / 2  # flat top
            ok &= ~spike  # a shorter spike found earlier wins
            for j in range(k):
                spike |= _shift(ok.astype(float), g, j) > 0
    rows = frame[spike]
    detail = [
        f"adjusted close {p:.6g} ({r:+.1%} on the previous row), reversed"
        for p, r in zip(rows["adjusted_close"], np.expm1(d[spike]))
    ]
    log = make_log(rows["instrument"].to_numpy(), rows["date"].to_numpy(), "spike", "dropped", detail)
    return frame[~spike].reset_index(drop=True), log


def repair_split_adjustments(
    frame: pd.DataFrame,
    *,
    threshold: float,
    ratios: tuple[float, ...] = SPLIT_RATIOS,
    tolerance: float = 0.03,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Undo bad split adjustments of the adjusted close (see the module docstring, rule 3).

    For a flagged day ``t`` with nearest split ratio ``s``:
    ``adjusted_close[u] <- adjusted_close[u] * s`` for all rows ``u < t`` of the instrument,
    and ``split_coefficient[t] <- 1``.

    Parameters
    ----------
    threshold : float
        Unrepairable adjustment-driven jumps above ``log(1 + threshold)`` are logged as kept.
    ratios : tuple of float
        Candidate split ratios.
    tolerance : float
        Largest relative distance ``|a_t / s - 1|`` to a split ratio.
    """
    g = _codes(frame)
    adj = frame["adjusted_close"].to_numpy()
    close = frame["close"].to_numpy()
    la = np.log(adj) - _shift(np.log(adj), g, 1)
    lc = np.log(close) - _shift(np.log(close), g, 1)
    s = np.asarray(ratios)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.nan_to_num(np.abs(np.exp(la)[:, None] / s[None, :] - 1.0), nan=np.inf)  # (R, len(ratios))
        driven = (la != 0) & (lc / la < 0.5)
    nearest = s[dist.argmin(axis=1)]
    near = dist.min(axis=1) <= tolerance
    fix = near & driven
    keep = driven & ~near & (np.abs(la) > np.log1p(threshold))

    out = frame.copy()
    factor = np.where(fix, nearest, 1.0)
    out["adjusted_close"] = adj * future_product(factor, g)
    sc = frame["split_coefficient"].to_numpy()
    reset = fix & (sc != 1.0)
    out.loc[reset, "split_coefficient"] = 1.0

    instrument, date = frame["instrument"].to_numpy(), frame["date"].to_numpy()
    detail = [
        f"adjusted x{np.exp(a):.4f} vs raw x{np.exp(c):.4f}: history rescaled by {f:.4g}"
        + (f", split_coefficient {v:g} reset to 1" if r else "")
        for a, c, f, v, r in zip(la[fix], lc[fix], factor[fix], sc[fix], reset[fix])
    ]
    fixed_log = make_log(instrument[fix], date[fix], "bad_split", "repaired", detail)
    kept_detail = [
        f"adjusted x{np.exp(a):.4f} vs raw x{np.exp(c):.4f}: no split ratio within {tolerance:.0%}"
        for a, c in zip(la[keep], lc[keep])
    ]
    kept_log = make_log(instrument[keep], date[keep], "bad_split", "kept", kept_detail, level=logging.WARNING)
    return out, concat_logs([fixed_log, kept_log])


def flag_implausible(
    frame: pd.DataFrame, *, max_daily_move: float, max_price: float
) -> tuple[np.ndarray, pd.DataFrame]:
    """Rule 4: rows failing a plausibility rule (see the module docstring).

    Parameters
    ----------
    frame : pandas.DataFrame
        Long frame sorted by instrument, date, after rules 1-3; ``R`` rows.
    max_daily_move : float
        Largest plausible one-day move as a simple return; the bound is
        ``|log(p_t / p_{t-1})| <= log(1 + max_daily_move)`` (3: +300 % or -75 %).
    max_price : float
        Largest plausible raw or adjusted price.

    Returns
    -------
    bad : numpy.ndarray of bool, shape (R,)
        Rows breaking a rule.
    log : pandas.DataFrame
        One row per instrument and rule (its first bad row; the detail counts the
        days), action ``"skipped"``; not emitted to :mod:`logging`:
        :func:`apply_on_error` decides what happens to it.
    """
    g = _codes(frame)
    adj = frame["adjusted_close"].to_numpy()
    close = frame["close"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        la = np.log(adj) - _shift(np.log(adj), g, 1)
        lc = np.log(close) - _shift(np.log(close), g, 1)
    prices = frame[list(PRICE_COLUMNS)].to_numpy()
    absurd = (prices > max_price).any(axis=1)
    move = ~absurd & (np.abs(la) > np.log1p(max_daily_move))  # NaN (first row) compares False
    instrument, date = frame["instrument"].to_numpy(), frame["date"].to_numpy()
    absurd_log = pd.DataFrame(
        {"instrument": instrument[absurd], "date": date[absurd], "rule": "absurd_price", "action": SKIP_ACTION,
         "detail": [f"price {p.max():.6g} above max_price {max_price:g}" for p in prices[absurd]]}
    )
    move_log = pd.DataFrame(
        {"instrument": instrument[move], "date": date[move], "rule": "implausible_move", "action": SKIP_ACTION,
         "detail": [f"adjusted close x{np.exp(a):.6g} (raw x{np.exp(c):.6g}) in one day, beyond the bound "
                    f"x{1 + max_daily_move:g} or x{1 / (1 + max_daily_move):.4g} (max_daily_move={max_daily_move:g}), "
                    "not a reverting spike nor a split ratio"
                    for a, c in zip(la[move], lc[move])]}
    )
    log = concat_logs([absurd_log.astype({"date": "datetime64[ns]"}), move_log.astype({"date": "datetime64[ns]"})])
    if len(log):  # one row per instrument and rule: its first day, and how many days break it
        log["instrument"] = log["instrument"].astype(str)
        days = log.groupby(["instrument", "rule"])["date"].transform("size").to_numpy()
        log["detail"] = log["detail"] + np.where(days > 1, [f" (first of {n} days)" for n in days], "")
        log = log.drop_duplicates(["instrument", "rule"], keep="first")
    return absurd | move, log.sort_values(["instrument", "date"], kind="stable").reset_index(drop=True)


def apply_on_error(
    errors: pd.DataFrame, *, on_error: str, files: dict[str, object] | None = None, what: str = "plausibility rules"
) -> set[str]:
    """Raise on, or log, the error rows of :func:`flag_implausible` (or a reader's validation).

    Parameters
    ----------
    errors : pandas.DataFrame
        Log rows (:data:`LOG_COLUMNS`), one per offending day or file.
    on_error : {"raise", "skip"}
        ``"raise"``: :class:`ImplausibleDataError` listing every instrument (its
        file, its first offending rows); ``"skip"``: each row is logged at ``ERROR``.
    files : dict, optional
        Instrument -> source file, named in every message.
    what : str
        The rule set, for the message.

    Returns
    -------
    set of str
        Instruments to skip (empty when there are no errors).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if errors.empty:
        return set()
    files = files or {}
    names = list(dict.fromkeys(errors["instrument"].astype(str)))
    if on_error == "raise":
        lines = []
        for name in names:
            rows = errors[errors["instrument"].astype(str) == name]
            where = f" ({files[name]})" if name in files else ""
            first = "; ".join(
                ("" if pd.isna(r.date) else f"{r.date:%Y-%m-%d} ") + f"{r.rule}: {r.detail}"
                for r in rows.head(3).itertuples(index=False)
            )
            more = f" (+{len(rows) - 3} more)" if len(rows) > 3 else ""
            lines.append(f"  {name}{where}: {first}{more}")
        raise ImplausibleDataError(
            f"{len(names)} instrument(s) fail the {what} (set on_error: skip to leave them out):\n" + "\n".join(lines)
        )
    for r in errors.itertuples(index=False):
        day = "" if pd.isna(r.date) else f" {r.date:%Y-%m-%d}"
        where = f" [{files[str(r.instrument)]}]" if str(r.instrument) in files else ""
        logger.error("%s%s: %s %s (%s)%s", r.instrument, day, r.rule, r.action, r.detail, where)
    return set(names)


def clean_daily(
    frame: pd.DataFrame,
    *,
    jump_threshold: float = 0.5,
    spike_max_len: int = 2,
    spike_tolerance: float = 0.05,
    split_tolerance: float = 0.03,
    max_daily_move: float = 3.0,
    max_price: float = 1e6,
    on_error: str = "raise",
    files: dict[str, object] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply rules 1-4 in order; returns the cleaned long frame and the log.

    ``on_error`` and ``files`` (instrument -> source file, for the messages) are
    those of :func:`apply_on_error`; under ``"skip"`` every row of an
    instrument failing rule 4 is dropped and its log rows have action ``"skipped"``.
    """
    frame, log1 = drop_non_positive(frame)
    frame, log2 = remove_spikes(frame, threshold=jump_threshold, max_len=spike_max_len, tolerance=spike_tolerance)
    frame, log3 = repair_split_adjustments(frame, threshold=jump_threshold, tolerance=split_tolerance)
    _, errors = flag_implausible(frame, max_daily_move=max_daily_move, max_price=max_price)
    skip = apply_on_error(errors, on_error=on_error, files=files)
    if skip:
        frame = frame[~frame["instrument"].astype(str).isin(skip)].reset_index(drop=True)
        if isinstance(frame["instrument"].dtype, pd.CategoricalDtype):
            frame["instrument"] = frame["instrument"].cat.remove_unused_categories()
    return frame, concat_logs([log1, log2, log3, errors])


def log_summary(log: pd.DataFrame) -> dict[str, int]:
    """Distinct instruments skipped (action ``"skipped"``), repaired (:data:`REPAIR_ACTIONS`, not
    skipped) and kept with a warning (action ``"kept"``) in a cleaning log."""
    if log.empty:
        return {"skipped": 0, "repaired": 0, "kept": 0}
    inst = log["instrument"].astype(str)
    skipped = set(inst[log["action"] == SKIP_ACTION])
    repaired = set(inst[log["action"].isin(REPAIR_ACTIONS)]) - skipped
    kept = set(inst[log["action"] == "kept"]) - skipped
    return {"skipped": len(skipped), "repaired": len(repaired), "kept": len(kept)}


def fill_gaps(
    fields: dict[str, np.ndarray],
    *,
    dates: pd.DatetimeIndex,
    instruments: pd.Index,
    max_ffill: int = 3,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Forward-fill short gaps inside each instrument's listing.

    A run of missing closes is filled only when it lies strictly between two
    valid closes of the instrument (never before its first or after its last
    valid date) and is at most ``max_ffill`` days long; longer gaps stay
    missing. Filled days repeat the previous close as ``open = high = low =
    close`` and have ``volume = dollar_volume = 0`` (no trade).

    Parameters
    ----------
    fields : dict of (T, N) float arrays
        Must hold ``open, high, low, close, volume, dollar_volume``; not modified.
    dates, instruments : index of length T / N
        Labels for the log.
    max_ffill : int
        Longest gap to fill, in days (0 disables filling).

    Returns
    -------
    fields : dict of (T, N) arrays with the gaps filled
    log : one row per filled gap (its first day; detail gives its length)
    """
    close = fields["close"]
    T, N = close.shape
    valid = np.isfinite(close)
    rows = np.arange(T)[:, None]
    last = np.maximum.accumulate(np.where(valid, rows, -1), axis=0)  # last valid row <= t
    nxt = np.minimum.accumulate(np.where(valid, rows, T)[::-1], axis=0)[::-1]  # next valid row >= t
    fill = ~valid & (last >= 0) & (nxt < T) & (nxt - last - 1 <= max_ffill)
    out = {k: v.copy() for k, v in fields.items()}
    ti, ni = np.nonzero(fill)
    prev = close[last[ti, ni], ni]
    for name in ("open", "high", "low", "close"):
        out[name][ti, ni] = prev
    for name in ("volume", "dollar_volume"):
        out[name][ti, ni] = 0.0
    first = fill & ~np.vstack([np.zeros((1, N), bool), fill[:-1]])  # first day of each filled gap
    fi, fn = np.nonzero(first)
    length = nxt[fi, fn] - last[fi, fn] - 1
    log = make_log(
        instruments.to_numpy()[fn], dates.to_numpy()[fi], "ffill", "filled",
        [f"{n} day(s) filled with the close of {d:%Y-%m-%d}" for n, d in zip(length, dates[last[fi, fn]])],
        level=logging.DEBUG,
    )
    if len(log):
        logger.info("ffill: filled %d gap(s), %d cell(s), max_ffill=%d", len(log), len(ti), max_ffill)
    return out, log
