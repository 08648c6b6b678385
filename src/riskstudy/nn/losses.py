r"""Deep Risk Model loss: multi-horizon cross-sectional :math:`R^2` and the collinearity penalty.

For day :math:`t` with exposures :math:`F_t \in \mathbb{R}^{N_t \times K}` (universe members only),
labels :math:`y_{t+h}` (single-day return ``h`` days ahead) and regression weights :math:`w`,

.. math::

    \mathcal{L}_t = -\frac{1}{H} \sum_{h=1}^{H} R^2(y_{t+h} \mid F_t)
                    + \lambda \, \operatorname{tr}\big((F_t^\top F_t)^{-1}\big) \frac{N_t}{K},

where :math:`R^2` comes from a weighted least-squares regression of :math:`y_{t+h}` on
:math:`[1, F_t]` and is *uncentred*: :math:`R^2 = 1 - \mathrm{SSE}_w / \sum_i w_i y_i^2`.
For unit-variance, uncorrelated factors :math:`F^\top F = N I` so the penalty term equals
:math:`\lambda`. All functions are pure and batched over days ``B`` (and horizons ``H``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def label_valid(w: torch.Tensor, *, n_factors: int) -> torch.Tensor:
    """Which (day, horizon) regressions are identified.

    Parameters
    ----------
    w : torch.Tensor, shape (B, M, H)
        Per-observation regression weights, 0 where the label is missing or off-universe.
    n_factors : int
        K; the regression has ``K + 1`` coefficients (intercept).

    Returns
    -------
    torch.Tensor, bool, shape (B, H)
        More than ``K + 1`` observations with positive weight.
    """
    return (w > 0).sum(dim=1) > n_factors + 1


def regression_r2(f: torch.Tensor, y: torch.Tensor, w: torch.Tensor, *, ridge: float = 1e-6) -> torch.Tensor:
    r"""Uncentred weighted :math:`R^2` of ``y`` regressed on ``[1, f]``, per day and horizon.

    Solves the ``B * H`` normal equations :math:`(X^\top W X + \epsilon I)\beta = X^\top W y`
    with :math:`X = [1, f]` in one batched ``torch.linalg.solve``; the ridge
    :math:`\epsilon` is ``ridge`` times the mean diagonal of :math:`X^\top W X`. The SSE is
    evaluated exactly for that :math:`\beta`:
    :math:`\mathrm{SSE} = y^\top W y - 2\beta^\top X^\top W y + \beta^\top X^\top W X \beta`.

    Parameters
    ----------
    f : torch.Tensor, shape (B, M, K)
        Exposures.
    y : torch.Tensor, shape (B, M, H)
        Labels (finite; value irrelevant where ``w == 0``).
    w : torch.Tensor, shape (B, M, H)
        Non-negative weights, 0 = excluded.
    ridge : float
        Relative ridge for numerical stability (plus an absolute ``1e-8`` so empty days stay finite).

    Returns
    -------
    torch.Tensor, shape (B, H)
        :math:`1 - \mathrm{SSE}_w / \sum w y^2` (0 where ``sum w y^2 == 0``).
    """
    x = torch.cat([torch.ones_like(f[..., :1]), f], dim=-1)  # (B, M, K+1)
    wt = w.transpose(1, 2)  # (B, H, M)
    xw = wt.unsqueeze(-1) * x.unsqueeze(1)  # (B, H, M, K+1)
    a = xw.transpose(-1, -2) @ x.unsqueeze(1)  # (B, H, K+1, K+1)
    yt = y.transpose(1, 2).unsqueeze(-1)  # (B, H, M, 1)
    c = xw.transpose(-1, -2) @ yt  # (B, H, K+1, 1)
    yy = (wt * y.transpose(1, 2).square()).sum(-1)  # (B, H)
    eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
    eps = ridge * a.diagonal(dim1=-2, dim2=-1).mean(-1) + 1e-8
    beta = torch.linalg.solve(a + eps[..., None, None] * eye, c)  # (B, H, K+1, 1)
    bt = beta.transpose(-1, -2)
    sse = yy - 2 * (bt @ c)[..., 0, 0] + (bt @ a @ beta)[..., 0, 0]
    return torch.where(yy > 0, 1 - sse / yy.clamp_min(1e-30), torch.zeros_like(yy))


def factor_penalty(f: torch.Tensor, mask: torch.Tensor, *, ridge: float = 1e-6) -> torch.Tensor:
    r""":math:`\operatorname{tr}((F^\top F)^{-1}) N / K` per day, over member rows only.

    Parameters
    ----------
    f : torch.Tensor, shape (B, M, K)
        Exposures.
    mask : torch.Tensor, bool, shape (B, M)
        Member rows.
    ridge : float
        Relative ridge (times the mean diagonal of :math:`F^\top F`, plus ``1e-8``) for stability.

    Returns
    -------
    torch.Tensor, shape (B,)
        Equals 1 when :math:`F^\top F = N I`, and ``N`` when :math:`F^\top F = I`.
    """
    fm = f * mask.unsqueeze(-1).to(f.dtype)
    g = fm.transpose(1, 2) @ fm  # (B, K, K)
    k = f.shape[-1]
    eye = torch.eye(k, dtype=f.dtype, device=f.device)
    eps = ridge * g.diagonal(dim1=-2, dim2=-1).mean(-1) + 1e-8
    trace_inv = torch.linalg.inv(g + eps[:, None, None] * eye).diagonal(dim1=-2, dim2=-1).sum(-1)
    return trace_inv * mask.sum(1).to(f.dtype) / k


@dataclass
class DayLosses:
    """Per-day loss terms of a batch; ``valid`` marks days that enter the averages.

    Attributes
    ----------
    loss, r2, penalty : torch.Tensor, shape (B,)
        :math:`\\mathcal{L}_t`, mean :math:`R^2` over identified horizons, and the
        (unscaled) penalty :math:`\\operatorname{tr}((F^\\top F)^{-1}) N / K`.
    r2_1d : torch.Tensor, shape (B,)
        :math:`R^2` of the first (next-day) horizon, 0 where it is not identified.
    valid : torch.Tensor, bool, shape (B,)
        At least one identified horizon (:func:`label_valid`).
    """

    loss: torch.Tensor
    r2: torch.Tensor
    penalty: torch.Tensor
    valid: torch.Tensor
    r2_1d: torch.Tensor

    def mean(self, name: str) -> torch.Tensor:
        """Average of attribute ``name`` over valid days (0 when none)."""
        v = self.valid.to(self.loss.dtype)
        return (getattr(self, name) * v).sum() / v.sum().clamp_min(1.0)


def drm_day_losses(
    f: torch.Tensor,
    *,
    y: torch.Tensor,
    y_mask: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    lambda_: float,
) -> DayLosses:
    r"""Per-day DRM loss :math:`-\overline{R^2} + \lambda \operatorname{tr}((F^\top F)^{-1}) N / K`.

    Parameters
    ----------
    f : torch.Tensor, shape (B, M, K)
        Exposures (0 off-mask).
    y : torch.Tensor, shape (B, M, H)
        Labels, 0 where missing.
    y_mask : torch.Tensor, bool, shape (B, M, H)
        Label available.
    mask : torch.Tensor, bool, shape (B, M)
        Universe members.
    weight : torch.Tensor, shape (B, M)
        Regression weights (0 off-mask).
    lambda_ : float
        Penalty weight.

    Returns
    -------
    DayLosses
        ``r2`` averages only identified horizons; ``loss`` is 0 on invalid days.
    """
    w = weight.unsqueeze(-1) * (y_mask & mask.unsqueeze(-1)).to(weight.dtype)  # (B, M, H)
    hv = label_valid(w, n_factors=f.shape[-1])  # (B, H)
    r2_h = regression_r2(f, torch.where(w > 0, y, torch.zeros_like(y)), w)
    n_h = hv.sum(-1)
    r2 = (r2_h * hv).sum(-1) / n_h.clamp_min(1)
    penalty = factor_penalty(f, mask)
    valid = n_h > 0
    loss = torch.where(valid, -r2 + lambda_ * penalty, torch.zeros_like(r2))
    return DayLosses(loss=loss, r2=r2, penalty=penalty, valid=valid, r2_1d=torch.where(hv[:, 0], r2_h[:, 0], 0.0))
