r"""Losses of the covariance-prediction network (Tian, Appendix A): ZCA whitening of pure factor returns.

For each day ``t`` of a temporally contiguous batch, the network predicts a factor covariance
:math:`F_t = E_t E_t'` (a Gram matrix of factor features, PSD by construction) and the day's pure
factor returns :math:`f_t` are known from the regression :math:`r_t = X_t f_t + u_t`. ZCA
whitening with the eigendecomposition :math:`F_t = U_t \Lambda_t U_t'` (differentiable,
``torch.linalg.eigh``; eigenvalues floored at ``eps``),

.. math:: f'_t = U_t \Lambda_t^{-1/2} U_t' f_t ,

should give :math:`F' = \frac1T \sum_t f'_t f_t'^{\prime\top} \approx I` when :math:`F_t` is right.
Loss: diagonal :math:`\frac1K \sum_i \big(F'_{ii} - \ln F'_{ii}\big)` (minimal, 1, at
:math:`F'_{ii} = 1`; under-predicted risk makes :math:`F'_{ii}` large, over-predicted makes the
log large) plus off-diagonal :math:`\frac{1}{K(K-1)} \sum_{i \ne j} |F'_{ij}|`.

Idiosyncratic risk: with predicted specific variances :math:`\Delta_{t,i}` and residuals
:math:`u_{t,i}`, the same statistic per stock on :math:`q_i = \frac1{T_i}\sum_t u_{t,i}^2 /
\Delta_{t,i}` (stocks with data), averaged: :math:`\frac1N \sum_i (q_i - \ln q_i)`.
"""

from __future__ import annotations

import torch


def zca_whiten(cov: torch.Tensor, f: torch.Tensor, *, eps: float = 1e-8) -> torch.Tensor:
    """:math:`F_t^{-1/2} f_t` for ``cov (T, K, K)`` and ``f (T, K)`` -> ``(T, K)`` (module docstring)."""
    lam, U = torch.linalg.eigh(cov)
    inv_sqrt = torch.clamp(lam, min=eps).rsqrt()
    return torch.einsum("tij,tj,tkj,tk->ti", U, inv_sqrt, U, f)


def q_statistic(m: torch.Tensor) -> torch.Tensor:
    """:math:`m - \\ln m`, elementwise (``m > 0``); 1 at ``m = 1``, larger on either side."""
    return m - torch.log(m)


def factor_covariance_loss(cov: torch.Tensor, f: torch.Tensor, *, eps: float = 1e-8) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of the predicted factor covariances over one contiguous batch; returns ``(loss, parts)``."""
    w = zca_whiten(cov, f, eps=eps)  # (T, K)
    T, K = w.shape
    Fp = w.T @ w / T
    diag = torch.diagonal(Fp)
    diag_loss = q_statistic(torch.clamp(diag, min=eps)).mean()
    off = (Fp - torch.diag_embed(diag)).abs().sum() / max(K * (K - 1), 1)
    return diag_loss + off, {"diag": diag_loss.detach(), "offdiag": off.detach(), "whitened_var": diag.detach()}


def specific_variance_loss(delta: torch.Tensor, u: torch.Tensor, mask: torch.Tensor, *, eps: float = 1e-12) -> torch.Tensor:
    """Q-statistic loss of predicted specific variances ``delta (T, N)`` for residuals ``u (T, N)`` on ``mask``."""
    m = mask.to(u.dtype)
    n = m.sum(dim=0)
    q = (torch.nan_to_num(u) ** 2 / torch.clamp(delta, min=eps) * m).sum(dim=0) / torch.clamp(n, min=1)
    has = n > 0
    return q_statistic(torch.clamp(q[has], min=eps)).mean()
