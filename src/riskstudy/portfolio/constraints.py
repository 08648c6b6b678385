r"""Rebalancing constraints: the cap on each stock's weight change, as an exact Euclidean projection.

At a rebalance from held weights :math:`w^0` (after drift) to a target :math:`w^*`, no stock's
weight may change by more than ``max_change`` (a fraction of capital), weights stay within
``[lower, upper]`` and sum to ``budget``. :func:`cap_weight_change` returns the feasible portfolio
closest to the target,

.. math:: \min_w \|w - w^*\|_2 \quad \text{s.t.} \quad \ell_i \le w_i \le u_i,\ \sum_i w_i = B,
          \qquad \ell_i = \max(lower, w^0_i - c),\ u_i = \min(upper, w^0_i + c),

whose solution is :math:`w_i = \mathrm{clip}(w^*_i + \lambda, \ell_i, u_i)` for the scalar
:math:`\lambda` that meets the budget (found by bisection; :math:`\sum_i w_i(\lambda)` is monotone).
When the box cannot meet the budget (e.g. the held weights are far from it) the budget is relaxed
to the nearest reachable total, and ``feasible`` says so.
"""

from __future__ import annotations

import numpy as np


def cap_weight_change(target: np.ndarray, held: np.ndarray, *, max_change: float = 0.10, lower: float = 0.0,
                      upper: float = 1.0, budget: float = 1.0, tol: float = 1e-12) -> tuple[np.ndarray, bool]:
    """The projection of the module docstring: ``target (N,)``, ``held (N,)`` -> ``(w (N,), feasible)``."""
    target, held = np.asarray(target, dtype=float), np.asarray(held, dtype=float)
    lo = np.maximum(lower, held - max_change)
    hi = np.minimum(upper, held + max_change)
    empty = lo > hi  # a held weight beyond a bound by more than max_change moves towards it by max_change
    towards = np.where(held > upper, held - max_change, held + max_change)
    lo, hi = np.where(empty, towards, lo), np.where(empty, towards, hi)
    total_lo, total_hi = lo.sum(), hi.sum()
    if not total_lo - tol <= budget <= total_hi + tol:
        return (lo if budget < total_lo else hi).copy(), False
    a, b = float((lo - target).min()) - 1.0, float((hi - target).max()) + 1.0
    for _ in range(200):
        lam = 0.5 * (a + b)
        s = np.clip(target + lam, lo, hi).sum()
        if abs(s - budget) <= tol:
            break
        a, b = (lam, b) if s < budget else (a, lam)
    return np.clip(target + lam, lo, hi), True
