r"""Point-in-time stock characteristics at each period end, from the daily panel.

The conditional autoencoder (Gu, Kelly, Xiu 2021) prices the return of period ``t+1`` with betas
that are functions of characteristics known at the end of period ``t``. We have no fundamentals,
so the characteristics are the price/volume ones of the original 94 that a daily panel supports.

Timing
------
Period ends are the last trading day of each calendar month (``frequency="monthly"``, the
paper's) or week (``"weekly"``); ``e_j`` is the panel row of the ``j``-th end. Characteristic
``Z[j]`` uses panel rows ``<= e_j`` only; its label ``R[j]`` is the stock's compounded return
over the next period, rows ``e_j < s <= e_{j+1}``. The last period end has no label.

Definitions (``m = 21`` trading days, windows in trading days ending at ``e_j``)
-------------------------------------------------------------------------------
mom1m
    Return over the last month: :math:`\exp(\sum_{s \in (t-m, t]} \log(1+r_s)) - 1`.
mom6m, mom12m
    Return over months ``t-6 .. t-2`` and ``t-12 .. t-2``: rows ``(t-6m, t-m]`` and
    ``(t-12m, t-m]`` (the last month skipped).
mom36m
    Return over months ``t-36 .. t-13``: rows ``(t-36m, t-12m]``.
chmom
    Return over the last 6 months minus the return over the 6 months before:
    rows ``(t-6m, t]`` minus rows ``(t-12m, t-6m]``.
indmom
    Equal-weighted mean of ``mom12m`` over the universe members of the stock's sector (where the
    panel has sectors; omitted for China, which has none here).
maxret, retvol
    Largest daily return and standard deviation of daily returns over the last month.
beta, betasq
    Slope of the stock's daily return on the market's over ``beta_window`` (252) days, and the
    squared deviation of that slope from the period's cross-sectional median among members,
    :math:`(\beta_i - \mathrm{med}_j \beta_j)^2`. The market is the *equal-weighted* mean return
    of the day's universe members (``market="equal"``, default) or its weighting by the previous
    day's dollar volume (``"value"``). The paper's ``betasq`` is :math:`\beta^2`; ranked, that is
    ``beta`` again whenever every member's beta is positive (China here: 105 of the 111 month ends
    that have betas) and nearly so otherwise (a handful of negative betas: the instruments' Gram
    matrix reaches condition numbers ~3e5 and the managed portfolios of ``beta`` and ``betasq``
    weights of +-0.8 against ~0.05 elsewhere), so the square is taken around the median, which
    keeps its purpose (curvature in beta) after ranking.
idiovol
    Standard deviation of the residuals of the stock's daily returns regressed on a constant and
    the given daily factor returns (Fama-French 3 for the US) over ``idio_window`` (252) days;
    on the market return when no factors are given (China).
dolvol
    ``log`` of the dollar volume traded in month ``t-1``: rows ``(t-2m, t-m]`` (lagged, as in the
    paper's month ``t-2`` convention).
std_dolvol
    Standard deviation of daily dollar volume over the last month.
ill
    Amihud illiquidity: mean of :math:`|r_s| / \mathrm{DV}_s` over the last month's days with
    positive dollar volume.
zerotrade
    Number of days with zero (or missing) volume over the last month, scaled to ``m`` days.
size
    The size proxy: ``log`` of the mean daily dollar volume over the last month (we have no shares
    outstanding, see :mod:`riskstudy.features.style`).

A window needs at least 2/3 of its days with finite inputs, else the value is missing.

What the original 94 have that this set lacks: every accounting characteristic (book-to-market,
earnings, cash flow, accruals, asset growth, investment, leverage, profitability, R&D, sales
growth, ...), share-based ones (market equity from shares outstanding, share turnover, share
issuance), analyst and earnings-announcement data, dividends, and the bid-ask spread.

Ranks
-----
Each period, every characteristic is ranked cross-sectionally among the universe members with a
finite value (ties get their average rank) and mapped linearly onto ``[-1, 1]``:
:math:`z = 2 (\mathrm{rank} - 1) / (n - 1) - 1`. Missing values of members are set to 0 (the
cross-sectional median) and counted in :attr:`Characteristics.missing`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from riskstudy.data.market import MarketData

#: Trading days per month.
MONTH = 21
#: The characteristics in the order of :attr:`Characteristics.names` (``indmom`` only where sectors exist).
NAMES: tuple[str, ...] = ("mom1m", "mom6m", "mom12m", "mom36m", "chmom", "indmom", "maxret", "retvol", "beta", "betasq",
                          "idiovol", "dolvol", "std_dolvol", "ill", "zerotrade", "size")
MIN_FRAC = 2 / 3


@dataclass
class Characteristics:
    """Ranked characteristics at each period end and next-period returns.

    Attributes
    ----------
    Z : ndarray, shape (T, N, P)
        Characteristics ranked into ``[-1, 1]`` per period among members; 0 for missing values and
        for non-members (finite everywhere; :attr:`mask` says which rows count).
    R : ndarray, shape (T, N)
        Return over the period after end ``j`` (NaN where unknown; all NaN for the last end).
    mask : ndarray of bool, shape (T, N)
        Universe member at the period end and label known: the stock-periods that are fitted and scored.
    member : ndarray of bool, shape (T, N)
        Universe member at the period end (label known or not).
    dates : DatetimeIndex, length T
        Period-end dates.
    rows : ndarray of int, shape (T,)
        Panel rows of the period ends.
    names : list of str, length P
    missing : ndarray of int, shape (T, P)
        Members whose characteristic was missing (set to 0), per period.
    instruments : pandas.Index, length N
    frequency : str
        ``"monthly"`` or ``"weekly"``.
    """

    Z: np.ndarray
    R: np.ndarray
    mask: np.ndarray
    member: np.ndarray
    dates: pd.DatetimeIndex
    rows: np.ndarray
    names: list[str]
    missing: np.ndarray
    instruments: pd.Index
    frequency: str

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(T, N, P)``."""
        return self.Z.shape

    def missing_share(self) -> pd.Series:
        """Share of member-periods with each characteristic missing (set to 0), indexed by name."""
        return pd.Series(self.missing.sum(0) / max(int(self.member.sum()), 1), index=self.names)


def period_ends(dates: pd.DatetimeIndex, frequency: Literal["monthly", "weekly"] = "monthly") -> np.ndarray:
    """Rows of the last trading day of each calendar month (or week, ending Sunday) and the last row.

    Parameters
    ----------
    dates : DatetimeIndex, length T_d
        Increasing trading days.
    frequency : {"monthly", "weekly"}

    Returns
    -------
    ndarray of int, shape (T,)
    """
    freq = {"monthly": "M", "weekly": "W"}[frequency]
    per = pd.DatetimeIndex(dates).to_period(freq).asi8
    return np.flatnonzero(np.r_[per[1:] != per[:-1], True])


def market_return(md: MarketData, *, weighting: Literal["equal", "value"] = "equal") -> np.ndarray:
    r"""Daily market return of the universe, shape ``(T_d,)``.

    ``"equal"``: mean of the finite returns of day ``s``'s members. ``"value"``: weighted by the
    previous day's dollar volume, :math:`\sum_i w_{s-1,i} r_{s,i} / \sum_i w_{s-1,i}` (point in time).
    NaN on days without members.
    """
    p = md.panel
    r = p["ret"]
    ok = p.member & np.isfinite(r)
    if weighting == "equal":
        w = ok.astype(float)
    else:
        dv = np.vstack([np.full((1, r.shape[1]), np.nan), p["dollar_volume"][:-1]])
        w = np.where(ok, np.nan_to_num(dv, nan=0.0), 0.0)
    tot = w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, (w * np.where(ok, r, 0.0)).sum(1) / tot, np.nan)


def _padded_cumsum(a: np.ndarray) -> np.ndarray:
    """``c[i] = sum(a[:i])`` over axis 0 (NaN as 0), shape ``(T_d + 1, ...)``."""
    return np.concatenate([np.zeros((1, *a.shape[1:])), np.cumsum(np.nan_to_num(a), axis=0)])


def _window_sum(cum: np.ndarray, cnt: np.ndarray, ends: np.ndarray, *, lo: int, hi: int) -> np.ndarray:
    """Sum over rows ``(e - lo, e - hi]`` for each end ``e`` ``(T, N)``; NaN with fewer than 2/3 of its days finite."""
    a, b = ends - lo + 1, ends - hi + 1
    ok = a >= 0
    a, b = np.clip(a, 0, None), np.clip(b, 0, None)
    s = cum[b] - cum[a]
    n = cnt[b] - cnt[a]
    return np.where(ok[:, None] & (n >= MIN_FRAC * (lo - hi)), s, np.nan)


def _window_ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Per-stock OLS of ``y`` ``(w, N)`` on regressors ``x`` ``(w, M)`` over each stock's finite days.

    Returns the coefficients ``(N, M)`` (:math:`(X_i'X_i)^{-1} X_i'y_i`), the residual standard
    deviation ``(N,)`` (``n_i - M`` degrees of freedom) and the observation counts ``(N,)``.
    """
    ok = np.isfinite(y) & np.isfinite(x).all(1, keepdims=True)
    okf = ok.astype(float)
    xz = np.nan_to_num(x)
    yz = np.where(ok, y, 0.0)
    g = np.einsum("wn,wa,wb->nab", okf, xz, xz)  # (N, M, M)
    b = np.einsum("wn,wa->na", yz, xz)  # (N, M)
    n = okf.sum(0)
    M = x.shape[1]
    good = n > M
    eye = np.eye(M)
    coef = np.linalg.solve(np.where(good[:, None, None], g, eye), np.where(good[:, None], b, 0.0)[..., None])[..., 0]
    resid = np.where(ok, yz - xz @ coef.T, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt((resid**2).sum(0) / (n - M))
    return np.where(good[:, None], coef, np.nan), np.where(good, sd, np.nan), n


def rank_to_unit(x: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-sectional ranks into ``[-1, 1]`` per period and characteristic among members.

    Parameters
    ----------
    x : ndarray, shape (T, N, P)
        Raw characteristics (NaN = missing).
    member : ndarray of bool, shape (T, N)

    Returns
    -------
    z : ndarray, shape (T, N, P)
        :math:`2 (\\mathrm{rank} - 1) / (n - 1) - 1` over the ``n`` members with a finite value
        (average rank for ties; 0 when ``n = 1``); 0 for missing values and non-members.
    missing : ndarray of int, shape (T, P)
        Members with a missing value.
    """
    T, N, P = x.shape
    v = np.where(member[..., None] & np.isfinite(x), x, np.nan).transpose(0, 2, 1).reshape(T * P, N)
    rank = pd.DataFrame(v).rank(axis=1, method="average").to_numpy()
    n = np.isfinite(v).sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(n > 1, 2.0 * (rank - 1.0) / (n - 1.0) - 1.0, 0.0)
    z = np.nan_to_num(z, nan=0.0).reshape(T, P, N).transpose(0, 2, 1)
    missing = (member[..., None] & ~np.isfinite(x)).sum(1)
    return z, missing


def raw_characteristics(
    md: MarketData,
    ends: np.ndarray,
    *,
    factors: pd.DataFrame | None = None,
    market: Literal["equal", "value"] = "equal",
    beta_window: int = 252,
    idio_window: int = 252,
) -> tuple[np.ndarray, list[str]]:
    """Unranked characteristics at the panel rows ``ends`` (see the module docstring).

    Parameters
    ----------
    md : MarketData
    ends : ndarray of int, shape (T,)
        Increasing panel rows (period ends).
    factors : DataFrame, optional
        Daily factor returns indexed by date (e.g. ``Mkt-RF, SMB, HML``) for ``idiovol``; the
        market return (``market``) when ``None``.
    market : {"equal", "value"}
        Weighting of the market return of ``beta`` (:func:`market_return`).
    beta_window, idio_window : int
        Trading days of the ``beta`` and ``idiovol`` regressions.

    Returns
    -------
    x : ndarray, shape (T, N, P)
        NaN where missing; row ``j`` uses panel rows ``<= ends[j]`` only.
    names : list of str, length P
        :data:`NAMES`, without ``indmom`` when the panel has no sectors.
    """
    p = md.panel
    ends = np.asarray(ends, dtype=np.int64)
    r, dv, vol = p["ret"], p["dollar_volume"], p["volume"]
    T, N = len(ends), p.shape[1]
    lr = np.log1p(r)
    cum, cnt = _padded_cumsum(lr), _padded_cumsum(np.isfinite(lr).astype(float))

    def ret_over(lo: int, hi: int) -> np.ndarray:
        return np.expm1(_window_sum(cum, cnt, ends, lo=lo, hi=hi))

    m = MONTH
    out: dict[str, np.ndarray] = {
        "mom1m": ret_over(m, 0), "mom6m": ret_over(6 * m, m), "mom12m": ret_over(12 * m, m),
        "mom36m": ret_over(36 * m, 12 * m),
        "chmom": ret_over(6 * m, 0) - ret_over(12 * m, 6 * m),
    }
    dv_pos = np.where(dv > 0, dv, np.nan)
    dcum, dcnt = _padded_cumsum(dv_pos), _padded_cumsum(np.isfinite(dv_pos).astype(float))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["dolvol"] = np.log(_window_sum(dcum, dcnt, ends, lo=2 * m, hi=m))

    mkt = market_return(md, weighting=market)
    if factors is None:
        fx = mkt[:, None]
    else:
        fx = factors.reindex(p.dates).to_numpy(dtype=float)
    keys = ("maxret", "retvol", "beta", "idiovol", "std_dolvol", "ill", "zerotrade", "size")
    per = {k: np.full((T, N), np.nan) for k in keys}
    need_m = MIN_FRAC * m
    for j, e in enumerate(ends):  # one cross-section per period end, vectorised over stocks
        lo = e - m + 1
        if lo >= 0:
            rb, db, vb = r[lo:e + 1], dv_pos[lo:e + 1], vol[lo:e + 1]
            n_r = np.isfinite(rb).sum(0)
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: masked below
                per["maxret"][j] = np.where(n_r >= need_m, np.nanmax(rb, 0), np.nan)
                per["retvol"][j] = np.where(n_r >= need_m, np.nanstd(rb, 0, ddof=1), np.nan)
                n_d = np.isfinite(db).sum(0)
                per["std_dolvol"][j] = np.where(n_d >= need_m, np.nanstd(db, 0, ddof=1), np.nan)
                per["size"][j] = np.where(n_d >= need_m, np.log(np.nanmean(db, 0)), np.nan)
                amihud = np.abs(rb) / db
                n_a = np.isfinite(amihud).sum(0)
                per["ill"][j] = np.where(n_a >= need_m, np.nanmean(amihud, 0), np.nan)
            seen = np.isfinite(p["close"][lo:e + 1]).sum(0)
            zero = (~(vb > 0)).sum(0)  # zero or missing volume
            per["zerotrade"][j] = np.where(seen >= need_m, zero * m / (e - lo + 1), np.nan)
        if e - beta_window + 1 >= 0:
            s = slice(e - beta_window + 1, e + 1)
            coef, _, n = _window_ols(r[s], np.column_stack([np.ones(beta_window), mkt[s]]))
            per["beta"][j] = np.where(n >= MIN_FRAC * beta_window, coef[:, 1], np.nan)
        if e - idio_window + 1 >= 0:
            s = slice(e - idio_window + 1, e + 1)
            _, sd, n = _window_ols(r[s], np.column_stack([np.ones(idio_window), fx[s]]))
            per["idiovol"][j] = np.where(n >= MIN_FRAC * idio_window, sd, np.nan)
    out.update(per)
    mem = p.member[ends]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # periods without betas: NaN
        med = np.nanmedian(np.where(mem, out["beta"], np.nan), axis=1, keepdims=True)
    out["betasq"] = (out["beta"] - med) ** 2

    names = [n for n in NAMES if n != "indmom" or p.sector is not None]
    if p.sector is not None:
        codes, _ = p.sector_codes()
        onehot = (codes[:, None] == np.arange(codes.max() + 1)[None, :]).astype(float)  # (N, S)
        mem = p.member[ends]
        ok = mem & np.isfinite(out["mom12m"])
        tot = np.where(ok, out["mom12m"], 0.0) @ onehot  # (T, S)
        cntS = ok.astype(float) @ onehot
        with np.errstate(invalid="ignore", divide="ignore"):
            ind = (tot / cntS) @ onehot.T  # (T, N): the mean of the stock's sector
        out["indmom"] = np.where((codes >= 0)[None, :], ind, np.nan)
    return np.stack([out[n] for n in names], axis=-1), names


def next_period_returns(ret: np.ndarray, ends: np.ndarray) -> np.ndarray:
    r"""Compounded return over rows ``(e_j, e_{j+1}]`` per stock, shape ``(T, N)``.

    :math:`R_j = \prod_{s} (1 + r_s) - 1` over the period's finite daily returns (a missing day
    counts as no move); NaN when fewer than half of the period's days are finite, and for the last end.
    """
    ends = np.asarray(ends, dtype=np.int64)
    lr = np.log1p(ret)
    cum, cnt = _padded_cumsum(lr), _padded_cumsum(np.isfinite(lr).astype(float))
    out = np.full((len(ends), ret.shape[1]), np.nan)
    if len(ends) > 1:
        a, b = ends[:-1] + 1, ends[1:] + 1
        s, n = cum[b] - cum[a], cnt[b] - cnt[a]
        out[:-1] = np.where(n >= 0.5 * (b - a)[:, None], np.expm1(s), np.nan)
    return out


def build_characteristics(
    md: MarketData,
    *,
    frequency: Literal["monthly", "weekly"] = "monthly",
    factors: pd.DataFrame | None = None,
    market: Literal["equal", "value"] = "equal",
    beta_window: int = 252,
    idio_window: int = 252,
) -> Characteristics:
    """Ranked point-in-time characteristics at every period end and next-period returns.

    Parameters
    ----------
    md : MarketData
        The prepared daily panel.
    frequency : {"monthly", "weekly"}
        Period ends (:func:`period_ends`).
    factors : DataFrame, optional
        Daily factor returns for ``idiovol`` (Fama-French 3 for the US); ``None`` uses the market.
    market : {"equal", "value"}
        Market return of ``beta`` (:func:`market_return`).
    beta_window, idio_window : int
        Trading days of the ``beta`` and ``idiovol`` regressions.

    Returns
    -------
    Characteristics
        ``Z`` from :func:`raw_characteristics` ranked by :func:`rank_to_unit` over the members at
        each end; ``R`` from :func:`next_period_returns`; ``mask = member & isfinite(R)``.
    """
    p = md.panel
    ends = period_ends(p.dates, frequency)
    raw, names = raw_characteristics(md, ends, factors=factors, market=market, beta_window=beta_window,
                                     idio_window=idio_window)
    member = p.member[ends]
    z, missing = rank_to_unit(raw, member)
    R = next_period_returns(p["ret"], ends)
    return Characteristics(Z=z, R=R, mask=member & np.isfinite(R), member=member, dates=p.dates[ends], rows=ends,
                           names=names, missing=missing, instruments=p.instruments, frequency=frequency)


def managed_portfolios(Z: np.ndarray, R: np.ndarray, mask: np.ndarray, *, constant: bool = True) -> np.ndarray:
    r"""Characteristic-managed portfolio returns, one cross-sectional regression per period.

    .. math:: x_t = (\tilde Z_{t-1}' \tilde Z_{t-1})^{+} \tilde Z_{t-1}' r_t,
              \quad \tilde Z = [Z, 1]

    over the stocks of ``mask[t]`` (pseudo-inverse: a characteristic constant across the
    cross-section, e.g. all tied, gives the minimum-norm solution instead of failing). In our
    indexing ``Z[t]`` (the end of period ``t``) prices ``R[t]`` (the next period).

    Parameters
    ----------
    Z : ndarray, shape (T, N, P)
    R : ndarray, shape (T, N)
    mask : ndarray of bool, shape (T, N)
    constant : bool
        Append the constant column (``L = P + 1``).

    Returns
    -------
    ndarray, shape (T, L)
        0 for periods without members.
    """
    zt = add_constant(Z) if constant else Z
    w = mask[..., None].astype(float)
    zm = zt * w
    g = np.einsum("tna,tnb->tab", zm, zm)
    b = np.einsum("tna,tn->ta", zm, np.where(mask, R, 0.0))
    return np.einsum("tab,tb->ta", np.linalg.pinv(g, hermitian=True), b)


def add_constant(Z: np.ndarray) -> np.ndarray:
    """``[Z, 1]``: ``(T, N, P) -> (T, N, P + 1)``."""
    return np.concatenate([Z, np.ones((*Z.shape[:-1], 1))], axis=-1)
