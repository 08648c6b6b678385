r"""The covariance-prediction network (Tian, Appendix A), batched over the days of a contiguous batch.

For each day ``t`` (``B`` days, ``N`` stocks, ``mask`` marking the stocks present):

1. implicit factors :math:`X_t = \mathrm{MLP}(X^{prior}_t)` ``(N, K)`` from prior exposures (the FRM
   style factors);
2. size-weighted regression :math:`r_{t+1} = X_t f_{t+1} + u_{t+1}`:
   :math:`W_f = (X' W X)^{-1} X' W` ``(K, N)`` (factor-portfolio weights), :math:`f = W_f r`,
   :math:`u = r - X f` (a small ridge keeps :math:`X'WX` invertible);
3. stock features :math:`e_s = \mathrm{encoder}(S_t)` ``(N, D)`` from the price/volume sequence (any
   encoder of :mod:`riskstudy.nn.encoders`' interface);
4. factor features :math:`e_f = W_f e_s` ``(K, D)`` and the factor covariance :math:`F = e_f e_f'`
   (a Gram matrix: PSD by construction);
5. idiosyncratic features :math:`e_u = e_s - W_f' e_f` and specific variances
   :math:`\Delta = \mathrm{softplus}(\mathrm{MLP}(e_u))`;
6. :math:`V = X F X' + \mathrm{diag}(\Delta)`, kept in factor form.

Only :math:`X_t`, :math:`F_t`, :math:`\Delta_t` use information at ``t``; the returns of ``t + 1``
enter the regression (hence the loss, :mod:`riskstudy.sharpe.covnet_losses`) and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class CovNetOutput:
    """Per day of the batch: ``exposures (B, N, K)``, ``factor_cov (B, K, K)``, ``specific_var (B, N)``, and from
    the regression on the next day's returns ``factor_returns (B, K)``, ``residuals (B, N)``, ``portfolios (B, K, N)``."""

    exposures: torch.Tensor
    factor_cov: torch.Tensor
    specific_var: torch.Tensor
    factor_returns: torch.Tensor
    residuals: torch.Tensor
    portfolios: torch.Tensor


def factor_portfolios(X: torch.Tensor, w: torch.Tensor, *, ridge: float = 1e-6) -> torch.Tensor:
    """:math:`W_f = (X' W X + \\epsilon I)^{-1} X' W` ``(B, K, N)`` for exposures ``X (B, N, K)`` and weights ``w (B, N)``."""
    XtW = X.transpose(1, 2) * w[:, None, :]
    A = XtW @ X
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    scale = torch.diagonal(A, dim1=-2, dim2=-1).mean(-1).clamp_min(1e-12)[:, None, None]
    return torch.linalg.solve(A + ridge * scale * eye, XtW)


class CovNet(nn.Module):
    """Module docstring. ``encoder`` maps ``(S, L, P)`` to ``(S, encoder.out_features)``.

    Parameters
    ----------
    n_prior : int
        Prior exposures per stock.
    n_factors : int
        K implicit factors.
    encoder : nn.Module
    hidden : int
        Width of the two MLPs.
    """

    def __init__(self, *, n_prior: int, n_factors: int, encoder: nn.Module, hidden: int = 32) -> None:
        super().__init__()
        self.implicit = nn.Sequential(nn.Linear(n_prior, hidden), nn.ReLU(), nn.Linear(hidden, n_factors))
        self.encoder = encoder
        d = encoder.out_features
        self.specific = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, prior: torch.Tensor, seq: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor,
                next_returns: torch.Tensor | None = None) -> CovNetOutput:
        """``prior (B, N, P0)``, ``seq (B, N, L, P)``, ``weights (B, N)``, ``mask (B, N)``, ``next_returns (B, N)``."""
        B, N = mask.shape
        m = mask.to(prior.dtype)
        X = self.implicit(torch.nan_to_num(prior)) * m[..., None]
        w = torch.nan_to_num(weights) * m
        Wf = factor_portfolios(X, w)  # (B, K, N)
        es = self.encoder(torch.nan_to_num(seq).reshape(B * N, *seq.shape[2:])).reshape(B, N, -1) * m[..., None]
        ef = Wf @ es  # (B, K, D)
        cov = ef @ ef.transpose(1, 2)
        eu = es - Wf.transpose(1, 2) @ ef
        delta = F.softplus(self.specific(eu)).squeeze(-1) + 1e-8
        if next_returns is None:
            f = torch.full((B, X.shape[-1]), float("nan"), dtype=X.dtype, device=X.device)
            u = torch.full((B, N), float("nan"), dtype=X.dtype, device=X.device)
        else:
            r = torch.nan_to_num(next_returns) * m
            f = (Wf @ r[..., None]).squeeze(-1)
            u = torch.where(mask, r - (X @ f[..., None]).squeeze(-1), torch.full_like(r, float("nan")))
        return CovNetOutput(X, cov, delta, f, u, Wf)
