r"""The direct networks' weight layer: scores to portfolio weights within bounds that sum to 1.

:func:`bounded_softmax` maps scores :math:`z` ``(B, N)`` to weights with
:math:`\ell \le w_i \le u` and :math:`\sum_i w_i = 1`: first :math:`w = \ell + (1 - N\ell)\,
\mathrm{softmax}(z)` (every weight at least :math:`\ell`; :math:`\ell = 0` is the long-only
softmax, a negative :math:`\ell` allows shorts), then weights above :math:`u` are set to
:math:`u` and the excess is handed to the uncapped weights in proportion to their room above
:math:`\ell`, repeated until none exceeds :math:`u` (at most ``N`` rounds; each round is a
differentiable tensor operation). Needs :math:`N\ell \le 1 \le N u`.
"""

from __future__ import annotations

import torch


def bounded_softmax(scores: torch.Tensor, *, lower: float = 0.0, upper: float = 1.0) -> torch.Tensor:
    """Weights ``(B, N)`` from scores ``(B, N)`` (module docstring)."""
    n = scores.shape[-1]
    if not (n * lower <= 1.0 + 1e-12 and n * upper >= 1.0 - 1e-12 and lower < upper):
        raise ValueError(f"bounds [{lower}, {upper}] cannot hold {n} weights summing to 1")
    w = lower + (1.0 - n * lower) * torch.softmax(scores, dim=-1)
    for _ in range(n):
        over = w > upper + 1e-12
        if not bool(over.any()):
            break
        excess = torch.where(over, w - upper, torch.zeros_like(w)).sum(dim=-1, keepdim=True)
        room = torch.where(over, torch.zeros_like(w), w - lower)
        share = room / room.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        w = torch.where(over, torch.full_like(w, upper), w + excess * share)
    return w
