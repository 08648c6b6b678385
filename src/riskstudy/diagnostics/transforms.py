r"""Transforms that wrap any factor model: Gram-Schmidt orthogonalisation of its exposures, day by day.

For each day, with the regression's weights :math:`w_i` (normalised to sum to 1 over the day's
stocks) and the inner product :math:`\langle a, b \rangle_w = \sum_i w_i a_i b_i`, the exposures
are first demeaned (:math:`x_k - \langle x_k, 1 \rangle_w`), then orthonormalised in the given
order,

.. math:: q_j = \frac{v_j}{\|v_j\|_w}, \qquad v_j = x_{o_j} - \sum_{l<j} \langle x_{o_j}, q_l \rangle_w\, q_l,

(modified Gram-Schmidt, applied twice for round-off). The result has an identity Gram matrix
:math:`Q' W Q = I` and zero weighted means, so every factor is uncorrelated with the others
(VIF 1), and :math:`\mathrm{span}\{1, Q\} = \mathrm{span}\{1, X\}`: a regression with an intercept
on ``Q`` fits exactly what it fits on ``X`` (same R^2, same residuals). Columns whose residual
norm falls below ``eps`` times the original's (exact collinearity) become NaN-free zeros and are
reported in ``dropped``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from riskstudy.data.market import MarketData
from riskstudy.factors.base import FactorModel


def gram_schmidt(exposures: np.ndarray, *, weights: np.ndarray | None = None, mask: np.ndarray | None = None,
                 order: Sequence[int] | None = None, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormalise each day's exposures in the weighted inner product (module docstring).

    Parameters
    ----------
    exposures : ndarray, shape (T, N, K)
        NaN off-universe.
    weights : ndarray, shape (T, N), optional
        Regression weights (default equal); stocks with zero weight, NaN exposures or outside
        ``mask`` are left out and stay NaN.
    mask : ndarray of bool, shape (T, N), optional
    order : sequence of int, optional
        The order in which factors are orthogonalised (a permutation of ``range(K)``); output
        column ``j`` is the orthogonalised factor ``order[j]``. Default ``0 .. K-1``.
    eps : float
        Relative residual norm below which a factor counts as collinear with the earlier ones.

    Returns
    -------
    q : ndarray, shape (T, N, K)
    dropped : ndarray of bool, shape (T, K)
        Days on which output column ``j`` was collinear with the earlier columns (set to 0).
    """
    T, N, K = exposures.shape
    order = list(range(K)) if order is None else [int(k) for k in order]
    if sorted(order) != list(range(K)):
        raise ValueError(f"order must be a permutation of 0..{K - 1}, got {order}")
    ok = np.isfinite(exposures).all(axis=2)
    if mask is not None:
        ok &= mask
    w = np.where(ok, 1.0 if weights is None else weights, 0.0)
    ok &= w > 0
    w = np.where(ok, w, 0.0)
    sw = w.sum(axis=1, keepdims=True)
    w = np.divide(w, sw, out=np.zeros_like(w), where=sw > 0)
    x = np.where(ok[..., None], exposures, 0.0)[:, :, order]
    x = x - np.einsum("tn,tnk->tk", w, x)[:, None, :]
    x = np.where(ok[..., None], x, 0.0)
    q = np.zeros_like(x)
    dropped = np.zeros((T, K), dtype=bool)
    for j in range(K):  # K columns; every step is batched over days and stocks
        v = x[:, :, j].copy()
        norm0 = np.sqrt(np.einsum("tn,tn->t", w, v * v))
        for _ in range(2):
            if j:
                coef = np.einsum("tn,tnl,tn->tl", w, q[:, :, :j], v)
                v -= np.einsum("tnl,tl->tn", q[:, :, :j], coef)
        norm = np.sqrt(np.einsum("tn,tn->t", w, v * v))
        bad = ~(norm > eps * np.maximum(norm0, np.finfo(float).tiny))
        dropped[:, j] = bad & ok.any(axis=1)
        q[:, :, j] = np.where(bad[:, None], 0.0, v / np.where(bad, 1.0, norm)[:, None])
    return np.where(ok[..., None], q, np.nan), dropped


def weighted_gram(exposures: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each day's Gram matrix ``(T, K, K)`` :math:`X' W X` with weights normalised to sum to 1 over finite rows."""
    ok = np.isfinite(exposures).all(axis=2) & (weights > 0)
    w = np.where(ok, weights, 0.0)
    w = w / np.maximum(w.sum(axis=1, keepdims=True), np.finfo(float).tiny)
    x = np.where(ok[..., None], exposures, 0.0)
    return np.einsum("tn,tnk,tnl->tkl", w, x, x)


class Orthogonalised(FactorModel):
    """Any factor model with its exposures Gram-Schmidt orthogonalised per day (:func:`gram_schmidt`).

    Parameters
    ----------
    base : FactorModel
        The wrapped model (fitted by :meth:`fit`).
    order : sequence of int, optional
        Orthogonalisation order of the base model's factors (default as they come).
    weights : callable ``(md, rows) -> (len(rows), N)``, optional
        The inner product's weights; default: the risk harness's regression weights are not known
        here, so equal weights over the day's stocks. Pass
        ``lambda md, rows: regression_weights(...)`` to match the regression exactly.

    Attributes
    ----------
    names_ : list of str
        ``"<base name>_gs"`` in orthogonalisation order.
    dropped_ : ndarray of bool, shape (T_rows, K)
        From the last :meth:`exposures` call.
    """

    def __init__(self, base: FactorModel, *, order: Sequence[int] | None = None, weights=None) -> None:
        self.base, self.order, self.weights = base, None if order is None else list(order), weights

    def fit(self, md: MarketData, *, train_rows: np.ndarray, valid_rows: np.ndarray | None = None) -> "Orthogonalised":
        self.base.fit(md, train_rows=train_rows, valid_rows=valid_rows)
        order = list(range(self.base.n_factors)) if self.order is None else self.order
        self.order_ = order
        self.names_ = [f"{self.base.names_[k]}_gs" for k in order]
        return self

    def exposures(self, md: MarketData, *, rows: np.ndarray) -> np.ndarray:
        x = self.base.exposures(md, rows=rows)
        w = None if self.weights is None else self.weights(md, rows)
        q, self.dropped_ = gram_schmidt(x, weights=w, order=self.order_)
        return q
