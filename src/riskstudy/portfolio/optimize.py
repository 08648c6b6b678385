"""Portfolio construction on factor risk models: GMV, long-only GMV (GMV+) and max-Sharpe.

``model`` arguments are :class:`~riskstudy.risk.model.RiskModel` instances: a
:class:`~riskstudy.risk.covariance.FactorRiskModel` (``Sigma = X F X' + diag(d)``, never
densified) or, for the dense estimators, a :class:`~riskstudy.risk.estimators.DenseRiskModel`.
Problems over any model take its risk from :meth:`~riskstudy.risk.model.RiskModel.cvxpy_risk`
(``w' Sigma w / s`` in the model's own form) and its scale ``s`` from
:meth:`~riskstudy.risk.model.RiskModel.risk_scale`; the unconstrained GMV is
:meth:`~riskstudy.risk.model.RiskModel.gmv_weights` (Woodbury for factor models).

The long-only GMV is a CVXPY problem in factor form over ``C`` slots,

.. math::  \\min_w \\|L' w\\|^2 + \\sum_i d_i w_i^2 + c\\,(1 - m)'w \\quad
           \\text{s.t. } m'w = 1,\\; w \\ge 0, \\qquad L = X F^{1/2},

with ``L`` (P, C), ``d`` (C,) and the slot mask ``m`` (C,) as CVXPY Parameters
(DPP). It is compiled once per number of factors ``P`` and capacity ``C`` and
re-solved daily with new parameter values: the day's ``N <= C`` stocks fill slots
``0..N-1`` (``m = 1``); the unused slots get zero loadings, ``d = 1``, ``m = 0`` and
a small linear cost ``c`` (long-only), so they are out of the budget, have optimum
exactly 0 (strictly complementary, which keeps the interior-point iteration count
of the unpadded problem) and are dropped. A changing membership or universe size
therefore only changes parameter values; the capacity grows geometrically
(recompiling) only when a day has more stocks than slots. The
objective is rescaled by ``1 / mean(d)`` (same minimiser) so the solver's absolute
tolerances are meaningful for daily variances ~1e-4. Default solver: Clarabel
(interior point, default tolerances ``tol_gap_abs = tol_gap_rel = tol_feas = 1e-8``);
OSQP is supported with ``eps_abs = eps_rel = 1e-7`` and solution polishing.
Long-only solutions are clipped at 0 (solver noise ~1e-10) and renormalised to sum to 1.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np

from riskstudy.risk.covariance import FactorRiskModel
from riskstudy.risk.estimators import DenseRiskModel
from riskstudy.risk.model import RiskModel

logger = logging.getLogger(__name__)

SOLVER_OPTIONS: dict[str, dict[str, Any]] = {
    "CLARABEL": {},
    "OSQP": {"eps_abs": 1e-7, "eps_rel": 1e-7, "polish": True, "max_iter": 200_000},
}
_OK = (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
# Linear cost of an unused slot of GMVLongOnly (long-only): its optimum w = 0 then has a dual
# of this size (strict complementarity) instead of 0, which spares the interior-point solver
# the extra iterations a degenerate bound costs; ~0.01-0.1 matches the scaled problem's duals.
_UNUSED_SLOT_COST = 0.03


def _solve(problem: cp.Problem, solver: str, what: str, **kwargs: Any) -> None:
    problem.solve(solver=solver, **SOLVER_OPTIONS.get(solver, {}), **kwargs)
    if problem.status not in _OK:
        raise RuntimeError(f"{what}: solver {solver} returned status {problem.status!r}")
    if problem.status == cp.OPTIMAL_INACCURATE:
        logger.warning("%s: solver %s returned an inaccurate solution", what, solver)


def _clean(w: np.ndarray, long_only: bool) -> np.ndarray:
    if long_only:
        w = np.clip(w, 0.0, None)
    return w / w.sum()


@dataclass
class _Compiled:
    problem: cp.Problem
    w: cp.Variable  # (C,)
    loadings_t: cp.Parameter  # (P, C) = L', zero columns in unused slots
    spec_var: cp.Parameter  # (C,) d / mean(d), 1 in unused slots
    used: cp.Parameter  # (C,) 1 in the slots of the day's stocks, 0 elsewhere

    @property
    def capacity(self) -> int:
        return self.w.shape[0]


class GMVLongOnly:
    """Factor-form minimum-variance problem compiled once per universe and re-solved with new parameters.

    Parameters
    ----------
    long_only : bool
        Impose ``w >= 0`` (GMV+); ``False`` gives the fully invested GMV.
    solver : {"CLARABEL", "OSQP"}
    warm_start : bool
        Reuse the solver's previous state (Clarabel: its workspace; OSQP: also the previous
        solution, slot by slot, i.e. the day's ``i``-th stock starts from yesterday's ``i``-th).
    capacity : int, optional
        Slots of the compiled problem, e.g. the largest number of stocks the universe has on
        any day; default: the first model's ``n_assets``. A model with more stocks
        recompiles with ``max(n_assets, ceil(growth * capacity))`` slots.
    growth : float
        Geometric growth factor of the capacity (> 1).

    Attributes
    ----------
    n_solves_ : int
        Problems solved so far.
    n_compiles_ : int
        CVXPY problems built (and canonicalised on their first solve) so far.
    """

    def __init__(
        self,
        *,
        long_only: bool = True,
        solver: str = "CLARABEL",
        warm_start: bool = True,
        capacity: int | None = None,
        growth: float = 1.1,
    ) -> None:
        if growth <= 1.0:
            raise ValueError(f"GMVLongOnly: growth must be > 1, got {growth}")
        self.long_only = long_only
        self.solver = solver
        self.warm_start = warm_start
        self.capacity = capacity
        self.growth = growth
        self.n_solves_ = 0
        self.n_compiles_ = 0
        self._cache: dict[int, _Compiled] = {}  # by number of factors P

    def _build(self, capacity: int, p: int) -> _Compiled:
        w = cp.Variable(capacity)
        lt = cp.Parameter((p, capacity))
        d = cp.Parameter(capacity, nonneg=True)
        used = cp.Parameter(capacity, nonneg=True)
        objective = cp.sum_squares(lt @ w) + d @ cp.square(w)
        cons = [used @ w == 1]
        if self.long_only:
            objective = objective + _UNUSED_SLOT_COST * ((1.0 - used) @ w)
            cons.append(w >= 0)
        problem = cp.Problem(cp.Minimize(objective), cons)
        assert problem.is_dpp()
        self.n_compiles_ += 1
        logger.debug("GMVLongOnly: compiling for %d slots, %d factors", capacity, p)
        return _Compiled(problem, w, lt, d, used)

    def _compiled(self, n: int, p: int) -> _Compiled:
        c = self._cache.get(p)
        if c is None:
            self._cache[p] = c = self._build(max(n, self.capacity or n), p)
        elif n > c.capacity:
            self._cache[p] = c = self._build(max(n, math.ceil(self.growth * c.capacity)), p)
        return c

    def solve(self, model: FactorRiskModel) -> np.ndarray:
        """Minimum-variance weights for ``model``.

        Parameters
        ----------
        model : FactorRiskModel
            ``N = model.n_assets`` stocks and ``P`` factors.

        Returns
        -------
        ndarray (N,)
            Weights over the model's stocks (in the order of ``model.assets``), summing to 1.
        """
        n, p = model.exposures.shape
        c = self._compiled(n, p)
        cap = c.capacity
        scale = 1.0 / model.risk_scale()
        lt = np.zeros((p, cap))
        lt[:, :n] = np.sqrt(scale) * model.factor_loadings().T
        c.loadings_t.value = lt
        c.spec_var.value = np.r_[scale * model.specific_var, np.ones(cap - n)]
        c.used.value = np.r_[np.ones(n), np.zeros(cap - n)]
        if not self.warm_start:
            c.w.value = None
        _solve(c.problem, self.solver, f"GMVLongOnly(n={n}, p={p}, capacity={cap})", warm_start=self.warm_start)
        self.n_solves_ += 1
        return _clean(c.w.value[:n], self.long_only)


def min_variance_weights(model: RiskModel, *, long_only: bool = True, solver: str = "CLARABEL") -> np.ndarray:
    """Minimum-variance weights of any :class:`RiskModel`, building a new CVXPY problem each call.

    .. math::  \min_w w' \Sigma w / s \quad \text{s.t. } 1'w = 1 \;(,\ w \ge 0),

    with the risk from ``model.cvxpy_risk`` (factor form for a factor model, ``quad_form`` for a
    dense one) and ``s = model.risk_scale()``. The daily GMV+ of the dense estimators and a test
    oracle; a factor model re-solved daily is faster through the compiled :class:`GMVLongOnly`.

    Parameters
    ----------
    model : RiskModel
        ``N = model.n_assets`` stocks.
    long_only : bool
        Impose ``w >= 0`` (GMV+).
    solver : {"CLARABEL", "OSQP"}

    Returns
    -------
    ndarray (N,)
        Weights over the model's stocks, summing to 1.
    """
    w = cp.Variable(model.n_assets)
    cons = [cp.sum(w) == 1] + ([w >= 0] if long_only else [])
    problem = cp.Problem(cp.Minimize(model.cvxpy_risk(w)), cons)
    _solve(problem, solver, f"min_variance_weights({type(model).__name__}, n={model.n_assets})")
    return _clean(w.value, long_only)


def gmv_long_only_dense(cov: np.ndarray, *, long_only: bool = True, solver: str = "CLARABEL") -> np.ndarray:
    """Minimum-variance weights from a dense ``cov`` (N, N): :func:`min_variance_weights` of ``DenseRiskModel(cov)``.

    ``min w' Sigma w  s.t. 1'w = 1 (, w >= 0)`` -- the slow baseline of the benchmark and a test
    oracle. ``cov`` must be positive semidefinite (it is wrapped as such, not checked). At
    ``N = 300`` one call takes ~90 ms on one BLAS thread; passing a full-rank factor
    (``Sigma = L L' + delta I``, ``L`` of shape ``(N, N)``) through the compiled
    :class:`GMVLongOnly` instead was measured slower (130-690 ms per re-solve: the dense
    ``N x N`` loading block then sits in the solver's constraint matrix), so this path stays.
    """
    return min_variance_weights(DenseRiskModel(cov), long_only=long_only, solver=solver)


def max_sharpe(
    mu: np.ndarray,
    model: RiskModel,
    *,
    gamma: float | None = None,
    w_prev: np.ndarray | None = None,
    max_change: float | None = None,
    long_only: bool = True,
    solver: str = "CLARABEL",
) -> np.ndarray:
    """Long-only maximum-Sharpe (or mean-variance) weights.

    ``gamma is None``: maximum Sharpe via the convex reformulation
    ``min y' Sigma y  s.t. mu'y = 1, y >= 0``, ``w = y / 1'y`` (needs some ``mu_i > 0``).
    ``gamma`` given: ``max mu'w - gamma w' Sigma w  s.t. 1'w = 1, w >= 0``.
    Optional cap ``|w_i - w_prev_i| <= max_change`` (homogenised as
    ``|y - kappa w_prev| <= max_change kappa`` in the Sharpe form).

    Parameters
    ----------
    mu : ndarray (N,)
        Expected returns over the model's stocks.
    model : RiskModel
        Its risk ``w' Sigma w`` enters as ``risk_scale() * cvxpy_risk(w)``.
    gamma : float, optional
        Risk aversion (in units of the daily covariance).
    w_prev : ndarray (N,), optional
        Previous weights (over the same stocks); required with ``max_change``.
    max_change : float, optional
    long_only : bool
    solver : str

    Returns
    -------
    ndarray (N,)
        Weights summing to 1.
    """
    n = model.n_assets
    if max_change is not None and w_prev is None:
        raise ValueError("max_sharpe: max_change needs w_prev")
    if gamma is None:
        if long_only and not (mu > 0).any():
            raise ValueError("max_sharpe: no positive expected return, the long-only max-Sharpe problem is infeasible")
        y, kappa = cp.Variable(n), cp.Variable(nonneg=True)
        cons = [mu @ y == 1, cp.sum(y) == kappa] + ([y >= 0] if long_only else [])
        if max_change is not None:
            cons.append(cp.abs(y - kappa * w_prev) <= max_change * kappa)
        problem = cp.Problem(cp.Minimize(model.cvxpy_risk(y)), cons)
        _solve(problem, solver, "max_sharpe")
        return _clean(y.value / kappa.value, long_only)
    w = cp.Variable(n)
    cons = [cp.sum(w) == 1] + ([w >= 0] if long_only else [])
    if max_change is not None:
        cons.append(cp.abs(w - w_prev) <= max_change)
    problem = cp.Problem(cp.Maximize(mu @ w - gamma * model.risk_scale() * model.cvxpy_risk(w)), cons)
    _solve(problem, solver, "max_sharpe")
    return _clean(w.value, long_only)
