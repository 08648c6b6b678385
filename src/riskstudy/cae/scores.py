r"""Out-of-sample R^2 of conditional factor models (Gu, Kelly, Xiu 2021, section 3.3).

With betas :math:`\beta_{i,t-1}` known at the end of period ``t-1`` and factors :math:`f_t`:

.. math:: R^2_{\text{total}} = 1 - \frac{\sum_{(i,t)} (r_{i,t} - \beta_{i,t-1}' f_t)^2}{\sum_{(i,t)} r_{i,t}^2},
          \qquad
          R^2_{\text{pred}} = 1 - \frac{\sum_{(i,t)} (r_{i,t} - \beta_{i,t-1}' \lambda_{t-1})^2}{\sum_{(i,t)} r_{i,t}^2}

over the scored stock-periods, where :math:`\lambda_{t-1}` is the running mean of the factors up
to ``t-1`` (:func:`running_mean`). Denominators are not demeaned (the paper's convention). The
same two ratios on the characteristic-managed portfolios :math:`x_t` (the cross-sectional
regression of returns on ``[Z_{t-1}, 1]``, :func:`~riskstudy.cae.characteristics.managed_portfolios`)
and on their fitted counterparts :math:`\hat x_t` (the same regression of the predicted returns)
are the portfolio R^2s.

In the arrays' indexing, ``Z[t]``, ``beta[t]`` (the end of period ``t``) price ``R[t]`` (the next
period), so no shifting happens here: the caller passes aligned arrays.
"""

from __future__ import annotations

import numpy as np

from riskstudy.cae.characteristics import managed_portfolios


def predicted_returns(beta: np.ndarray, f: np.ndarray) -> np.ndarray:
    r"""Model returns :math:`\hat r_{i,t} = \beta_{i,t}' f_t`: ``(T, N, K), (T, K) -> (T, N)``."""
    return np.einsum("tnk,tk->tn", beta, f)


def r2(y: np.ndarray, yhat: np.ndarray, mask: np.ndarray | None = None) -> float:
    r""":math:`1 - \sum (y - \hat y)^2 / \sum y^2` over ``mask`` (default: finite ``y``); NaN when empty.

    Parameters
    ----------
    y, yhat : ndarray, same shape
    mask : ndarray of bool, same shape, optional
    """
    m = np.isfinite(y) if mask is None else mask & np.isfinite(y)
    den = float(np.sum(np.where(m, y, 0.0) ** 2))
    if not m.any() or den == 0:
        return float("nan")
    return 1.0 - float(np.sum(np.where(m, y - yhat, 0.0) ** 2)) / den


def running_mean(f: np.ndarray, *, prior: np.ndarray | None = None) -> np.ndarray:
    r"""Running mean of past factors: :math:`\lambda_t = \mathrm{mean}(\text{prior}, f_0, \dots, f_{t-1})`.

    Parameters
    ----------
    f : ndarray, shape (T, K)
        Factors of the scored periods.
    prior : ndarray, shape (T_0, K), optional
        Factors of earlier periods (e.g. the training window's), counted in every mean.

    Returns
    -------
    ndarray, shape (T, K)
        Row ``t`` uses factors strictly before ``t`` only; NaN for ``t = 0`` without ``prior``.
    """
    prior = np.zeros((0, f.shape[1])) if prior is None else np.asarray(prior, dtype=float)
    s = np.concatenate([prior.sum(0, keepdims=True), f[:-1]]).cumsum(0)
    n = len(prior) + np.arange(len(f))
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / np.where(n > 0, n, np.nan)[:, None]


def r2_total(R: np.ndarray, beta: np.ndarray, f: np.ndarray, mask: np.ndarray) -> float:
    """Total R^2 of individual returns ``R`` ``(T, N)`` with ``beta`` ``(T, N, K)`` and factors ``f`` ``(T, K)``."""
    return r2(R, predicted_returns(beta, f), mask)


def r2_pred(R: np.ndarray, beta: np.ndarray, lam: np.ndarray, mask: np.ndarray) -> float:
    """Predictive R^2: :func:`r2_total` with ``f`` replaced by the running factor mean ``lam`` ``(T, K)``."""
    return r2(R, predicted_returns(beta, lam), mask)


def portfolio_r2(Z: np.ndarray, R: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    r"""R^2 of the managed portfolios: :math:`1 - \sum_t \|x_t - \hat x_t\|^2 / \sum_t \|x_t\|^2`.

    Parameters
    ----------
    Z : ndarray, shape (T, N, P)
        Characteristics pricing ``R``.
    R, pred : ndarray, shape (T, N)
        Realised and model returns.
    mask : ndarray of bool, shape (T, N)
        Stock-periods in the portfolios (periods without any are left out).
    """
    x = managed_portfolios(Z, R, mask)
    xhat = managed_portfolios(Z, np.where(mask, pred, 0.0), mask)
    rows = np.broadcast_to(mask.any(1, keepdims=True), x.shape)
    return r2(x, xhat, rows)


def score_predictions(Z: np.ndarray, R: np.ndarray, mask: np.ndarray, *, total: np.ndarray,
                      predictive: np.ndarray) -> dict[str, float]:
    """The four out-of-sample R^2 of one model from its predictions (e.g. averaged over an ensemble's seeds).

    Parameters
    ----------
    Z : ndarray, shape (T, N, P)
    R : ndarray, shape (T, N)
    mask : ndarray of bool, shape (T, N)
    total, predictive : ndarray, shape (T, N)
        :math:`\\beta_{t-1}' f_t` and :math:`\\beta_{t-1}' \\lambda_{t-1}`.

    Returns
    -------
    dict
        ``r2_total``, ``r2_pred``, ``r2_total_portfolios``, ``r2_pred_portfolios`` (fractions).
    """
    return {"r2_total": r2(R, total, mask), "r2_pred": r2(R, predictive, mask),
            "r2_total_portfolios": portfolio_r2(Z, R, total, mask),
            "r2_pred_portfolios": portfolio_r2(Z, R, predictive, mask)}
