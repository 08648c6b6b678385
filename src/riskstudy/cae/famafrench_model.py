r"""Fama-French time-series factor models (FF3, FF5) on the periods of the conditional autoencoder section (US only).

Betas
-----
At each period end ``e_j`` (:attr:`~riskstudy.cae.characteristics.Characteristics.rows`), every
stock's betas on the ``F`` daily factors come from the OLS of its daily returns on a constant and
the factors over the trailing ``window`` trading days, rows ``(e_j - window, e_j]``
(:func:`trailing_betas`; batched over stocks, one cross-section of regressions per period end):

.. math:: r_{i,s} = a_{i,j} + \beta_{i,j}' f_s + e_{i,s}, \qquad s \in (e_j - w, e_j],

with at least 2/3 of the window's days finite, else NaN. Only data up to the close of ``e_j`` enter.

Predictions
-----------
The period factor returns are aggregated over the label's rows ``(e_j, e_{j+1}]`` the way the
labels are (:func:`~riskstudy.cae.characteristics.next_period_returns`): compounded,
:math:`F_j = \prod_s (1 + f_s) - 1` (``aggregate="compound"``, default; ``"sum"`` sums them).
As for every model of the section, the intercept is not part of the prediction (restricted models:
no alpha), and the labels are total, not excess, returns:

.. math:: \hat r^{\text{tot}}_{i,j} = \beta_{i,j}' F_j, \qquad
          \hat r^{\text{pred}}_{i,j} = \beta_{i,j}' \lambda_{j}, \quad
          \lambda_j = \mathrm{mean}(F_0, \dots, F_{j-1})

(the running mean of the periods before ``j`` with a finite factor return, from the first period
of the panel; NaN-free periods only). Members without betas (too short a history) are predicted 0
(explained by nothing, as static PCA does for stocks without history); :attr:`FFPredictions.coverage`
is their complement's share.

Compounding the factors makes the prediction only approximately linear in the daily model: with
daily returns exactly :math:`\beta' f_s`, the compounded label differs from :math:`\beta' F_j` by
second-order terms (R^2 just below 1; exactly 1 with ``"sum"`` against summed labels, see the tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from riskstudy.cae.characteristics import MIN_FRAC, Characteristics, _padded_cumsum, next_period_returns
from riskstudy.data.famafrench import read_fama_french
from riskstudy.data.market import MarketData

#: Factor columns of each model (the rest of French's table, ``RF``, is not a factor).
FF_COLUMNS: dict[str, tuple[str, ...]] = {"FF3": ("Mkt-RF", "SMB", "HML"),
                                         "FF5": ("Mkt-RF", "SMB", "HML", "RMW", "CMA")}


def read_ff_models(raw_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Daily factors of FF3 (the 3-factor file) and FF5 (the 5-factor 2x3 file), fractions, by model name."""
    return {"FF3": read_fama_french(raw_dir)[list(FF_COLUMNS["FF3"])],
            "FF5": read_fama_french(raw_dir, five_factor=True)[list(FF_COLUMNS["FF5"])]}


def market_factors(params, market: str) -> dict[str, pd.DataFrame]:
    """:func:`read_ff_models` from ``paths.raw_dir`` for the US; ``{}`` elsewhere (no Fama-French data for China)."""
    if market != "us":
        return {}
    from riskstudy import paths

    return read_ff_models(paths.raw_dir(params.paths.raw_dir, require="fama_french_daily"))


def daily_factors(ff: pd.DataFrame, dates: pd.DatetimeIndex) -> np.ndarray:
    """Factor returns on the panel calendar ``(T_d, F)``: ``ff`` reindexed onto ``dates`` (NaN where missing)."""
    return ff.reindex(pd.DatetimeIndex(dates)).to_numpy(dtype=float)


def trailing_betas(ret: np.ndarray, f: np.ndarray, ends: np.ndarray, *, window: int = 252) -> np.ndarray:
    """Betas ``(T, N, F)`` at each period end from the trailing ``window`` days (module docstring).

    Parameters
    ----------
    ret : ndarray, shape (T_d, N)
        Daily stock returns.
    f : ndarray, shape (T_d, F)
        Daily factor returns on the same calendar.
    ends : ndarray of int, shape (T,)
        Period-end rows.
    window : int

    Returns
    -------
    ndarray, shape (T, N, F)
        Row ``j`` uses rows ``(ends[j] - window, ends[j]]`` only; NaN before a full window and for
        stocks with fewer than 2/3 of its days finite.
    """
    ends = np.asarray(ends, dtype=np.int64)
    T, N, F = len(ends), ret.shape[1], f.shape[1]
    out = np.full((T, N, F), np.nan)
    for j, e in enumerate(ends):  # one batched regression per period end, vectorised over stocks
        if e - window + 1 < 0:
            continue
        s = slice(e - window + 1, e + 1)
        coef, n = batched_ols(ret[s], np.column_stack([np.ones(window), f[s]]))
        out[j] = np.where((n >= MIN_FRAC * window)[:, None], coef[:, 1:], np.nan)
    return out


def batched_ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""OLS of every column of ``y`` ``(w, N)`` on ``x`` ``(w, M)`` over its own finite days, in one batch.

    :math:`b_i = (X_i'X_i)^{+} X_i'y_i` with :math:`X_i` the rows where ``y[:, i]`` and ``x`` are
    finite (pseudo-inverse: a degenerate window gives the minimum-norm solution instead of failing).

    Returns
    -------
    coef : ndarray, shape (N, M)
        NaN for columns with no more observations than regressors.
    n : ndarray, shape (N,)
        Observations per column.
    """
    ok = np.isfinite(y) & np.isfinite(x).all(1, keepdims=True)
    okf = ok.astype(float)
    xz = np.nan_to_num(x)
    g = np.einsum("wn,wa,wb->nab", okf, xz, xz)  # (N, M, M)
    b = np.einsum("wn,wa->na", np.where(ok, y, 0.0), xz)  # (N, M)
    coef = np.einsum("nab,nb->na", np.linalg.pinv(g, hermitian=True), b)
    n = okf.sum(0)
    return np.where((n > x.shape[1])[:, None], coef, np.nan), n


def period_factor_returns(f: np.ndarray, ends: np.ndarray, *,
                          aggregate: Literal["compound", "sum"] = "compound") -> np.ndarray:
    """Factor returns over each label's rows ``(ends[j], ends[j+1]]`` ``(T, F)``; NaN for the last end.

    ``"compound"``: :func:`~riskstudy.cae.characteristics.next_period_returns` (as the labels; NaN
    with fewer than half the days finite). ``"sum"``: the sum of the finite daily returns (same rule).
    """
    ends = np.asarray(ends, dtype=np.int64)
    if aggregate == "compound":
        return next_period_returns(f, ends)
    cum, cnt = _padded_cumsum(f), _padded_cumsum(np.isfinite(f).astype(float))
    out = np.full((len(ends), f.shape[1]), np.nan)
    if len(ends) > 1:
        a, b = ends[:-1] + 1, ends[1:] + 1
        out[:-1] = np.where(cnt[b] - cnt[a] >= 0.5 * (b - a)[:, None], cum[b] - cum[a], np.nan)
    return out


def past_mean(F: np.ndarray) -> np.ndarray:
    r"""Running mean of earlier periods' finite factor returns ``(T, F)``: row ``j`` is the mean of ``F[:j]``."""
    ok = np.isfinite(F).all(1, keepdims=True)
    zero = np.zeros((1, F.shape[1]))
    s = np.cumsum(np.concatenate([zero, np.where(ok, F, 0.0)[:-1]]), axis=0)  # sums of rows < j only
    n = np.cumsum(np.concatenate([zero[:, :1], ok[:-1].astype(float)]), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / np.where(n > 0, n, np.nan)


@dataclass
class FFPredictions:
    """Output of :func:`ff_predictions`.

    Attributes
    ----------
    betas : ndarray, shape (T, N, F)
        At each period end (NaN without enough history).
    factors : ndarray, shape (T, F)
        Period factor returns of each label's period.
    lam : ndarray, shape (T, F)
        Running mean of the earlier periods' factor returns.
    total, predictive : ndarray, shape (T, N)
        :math:`\\beta' F_j` and :math:`\\beta' \\lambda_j` (0 without betas or factors; use with ``ch.mask``).
    coverage : float
        Share of the ``ch.mask`` stock-periods with betas.
    names : list of str
    """

    betas: np.ndarray
    factors: np.ndarray
    lam: np.ndarray
    total: np.ndarray
    predictive: np.ndarray
    coverage: float
    names: list[str]


def ff_predictions(md: MarketData, ch: Characteristics, ff: pd.DataFrame, *, window: int = 252,
                   aggregate: Literal["compound", "sum"] = "compound") -> FFPredictions:
    """Time-series Fama-French predictions of ``ch.R`` (module docstring).

    Parameters
    ----------
    md : MarketData
        The daily panel ``ch`` was built from.
    ch : Characteristics
        Period ends (``rows``) and the scored stock-periods (``mask``).
    ff : DataFrame
        Daily factor returns by date, one column per factor (e.g. :func:`read_ff_models` ``["FF5"]``).
    window : int
        Trading days of the beta regressions.
    aggregate : {"compound", "sum"}

    Returns
    -------
    FFPredictions
    """
    f = daily_factors(ff, md.panel.dates)
    beta = trailing_betas(md.panel["ret"], f, ch.rows, window=window)
    F = period_factor_returns(f, ch.rows, aggregate=aggregate)
    lam = past_mean(F)
    has = np.isfinite(beta).all(-1)
    b0 = np.where(has[..., None], beta, 0.0)
    total = np.einsum("tnk,tk->tn", b0, np.nan_to_num(F))
    predictive = np.einsum("tnk,tk->tn", b0, np.nan_to_num(lam))
    cov = float((has & ch.mask).sum() / max(int(ch.mask.sum()), 1))
    return FFPredictions(betas=beta, factors=F, lam=lam, total=total, predictive=predictive, coverage=cov,
                         names=[str(c) for c in ff.columns])


def ff_prediction_table(md: MarketData, ch: Characteristics, models: Mapping[str, pd.DataFrame], *,
                        window: int = 252) -> tuple[dict[str, dict[int, np.ndarray]], dict[str, dict[int, np.ndarray]],
                                                    dict[str, float]]:
    """:func:`ff_predictions` of every model, keyed like :func:`riskstudy.cae.refit.score_table`'s inputs.

    Returns
    -------
    total, predictive : dict
        ``{name: {F: ndarray (T, N)}}`` over every period of ``ch`` (K = the model's factor count).
    coverage : dict
        ``{name: share of ch.mask with betas}``.
    """
    total, predictive, coverage = {}, {}, {}
    for name, table in models.items():
        p = ff_predictions(md, ch, table, window=window)
        k = p.betas.shape[-1]
        total[name], predictive[name], coverage[name] = {k: p.total}, {k: p.predictive}, p.coverage
    return total, predictive, coverage
