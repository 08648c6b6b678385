r"""The direct networks' loss: negative annualised Sharpe ratio of the portfolio held after each decision.

A batch holds ``B`` decision days (contiguous, in time order). Decision ``b`` sets weights
:math:`w_b` (``N``, summing to 1) at its close; the portfolio is then held, drifting with prices,
over the next ``H`` days (21: one rebalancing period), with daily returns

.. math:: r^p_{b,\tau} = \frac{V_{b,\tau}}{V_{b,\tau-1}} - 1, \qquad
          V_{b,\tau} = \sum_i w_{b,i} \prod_{s \le \tau} (1 + r_{b,s,i}), \quad V_{b,0} = 1.

The loss is :math:`-\sqrt{A}\,(\bar r^p - r_f / A) / \mathrm{sd}(r^p)` over all ``B H`` holding
days of the batch pooled (``pool=True``), or the mean over decisions of each decision's own
``H``-day Sharpe ratio (``pool=False``), with ``A = 252`` and the annual risk-free rate ``r_f``
(2% in the paper). Missing future returns (NaN) count as 0 (a suspended stock keeps its price).
"""

from __future__ import annotations

import torch


def holding_returns(weights: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
    """Daily returns ``(B, H)`` of portfolios ``weights (B, N)`` bought and held over ``future (B, H, N)``."""
    growth = torch.cumprod(1.0 + torch.nan_to_num(future, nan=0.0), dim=1)  # (B, H, N)
    value = torch.einsum("bn,bhn->bh", weights, growth)
    prev = torch.cat([weights.sum(dim=1, keepdim=True), value[:, :-1]], dim=1)
    return value / prev - 1.0


def negative_sharpe(weights: torch.Tensor, future: torch.Tensor, *, risk_free: float = 0.02, periods_per_year: int = 252,
                    pool: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """The loss of the module docstring (a scalar; lower is better)."""
    r = holding_returns(weights, future) - risk_free / periods_per_year
    if pool:
        r = r.reshape(1, -1)
    sr = r.mean(dim=1) / (r.std(dim=1, unbiased=True) + eps)
    return -(periods_per_year ** 0.5) * sr.mean()
