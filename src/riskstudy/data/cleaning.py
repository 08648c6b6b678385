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

After assembly into ``(T, N)`` arrays, :func:`fill_gaps` forward-fills short
gaps inside an instrument's listing.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

logger = logging.getLogger(__name__)

LOG_COLUMNS: list[str] = ["instrument", "date", "rule", "action", "detail"]
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


def clean_daily(
    frame: pd.DataFrame,
    *,
    jump_threshold: float = 0.5,
    spike_max_len: int = 2,
    spike_tolerance: float = 0.05,
    split_tolerance: float = 0.03,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply the row-level rules in order; returns the cleaned long frame and the log."""
    frame, log1 = drop_non_positive(frame)
    frame, log2 = remove_spikes(frame, threshold=jump_threshold, max_len=spike_max_len, tolerance=spike_tolerance)
    frame, log3 = repair_split_adjustments(frame, threshold=jump_threshold, tolerance=split_tolerance)
    return frame, concat_logs([log1, log2, log3])


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
