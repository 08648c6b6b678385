"""The one interface of a day's covariance forecast, shared by factor and dense risk models.

A :class:`RiskModel` is the forecast ``Sigma`` (N, N) of the covariance of the next day's returns
of ``N`` stocks, the positions ``assets`` of a larger universe. Every consumer -- the portfolio
optimisers (:mod:`riskstudy.portfolio.optimize`), forecast evaluation
(:mod:`riskstudy.evaluation.forecast`) and the scoring of Table 1
(:mod:`riskstudy.evaluation.scoring`) -- uses only these methods, never the concrete class:

* :meth:`RiskModel.portfolio_variance` ``w' Sigma w``,
* :meth:`RiskModel.solve` ``Sigma^{-1} b``,
* :meth:`RiskModel.gmv_weights` ``Sigma^{-1} 1 / 1' Sigma^{-1} 1`` (implemented here, once, from ``solve``),
* :meth:`RiskModel.risk_scale` and :meth:`RiskModel.cvxpy_risk`: the scaled risk ``w' Sigma w / s``
  as a CVXPY expression, in the form each model is best expressed in (factor form
  ``||L' w||^2 + sum_i d_i w_i^2`` for ``X F X' + D``, ``quad_form`` for a dense matrix).

Implementations: :class:`riskstudy.risk.covariance.FactorRiskModel` and
:class:`riskstudy.risk.estimators.DenseRiskModel`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # cvxpy is slow to import; only the optimisers need it, at call time
    import cvxpy as cp


class RiskModel(ABC):
    """One day's covariance forecast ``Sigma`` (N, N) over the stocks ``assets``.

    Attributes
    ----------
    assets : ndarray of int (N,) or None
        Positions of the model's stocks in the full universe; ``None`` = the first ``N`` positions
        (see :meth:`positions`).
    """

    assets: np.ndarray | None

    @property
    @abstractmethod
    def n_assets(self) -> int:
        """``N``, the number of stocks."""

    @abstractmethod
    def covariance(self) -> np.ndarray:
        """Dense ``Sigma`` (N, N) -- for tests, oracles and small ``N``."""

    @abstractmethod
    def portfolio_variance(self, w: np.ndarray) -> np.ndarray | float:
        """``w' Sigma w``: ``w`` (N,) -> float, ``w`` (N, M) -> (M,) (one variance per column)."""

    @abstractmethod
    def solve(self, b: np.ndarray) -> np.ndarray:
        """``Sigma^{-1} b`` for ``b`` (N,) or (N, M), same shape as ``b``."""

    @abstractmethod
    def risk_scale(self) -> float:
        """A positive scale ``s`` of ``Sigma`` (a typical daily variance) that conditions the optimisers.

        :meth:`cvxpy_risk` is ``w' Sigma w / s``, so the solvers' absolute tolerances are meaningful
        for daily variances ~1e-4.
        """

    @abstractmethod
    def cvxpy_risk(self, w: cp.Expression) -> cp.Expression:
        """``w' Sigma w / s`` (``s`` = :meth:`risk_scale`) as a convex CVXPY expression of ``w`` (N,)."""

    def gmv_weights(self) -> np.ndarray:
        """Unconstrained global minimum variance weights (N,) summing to 1.

        .. math::  w = \\Sigma^{-1} 1 / 1' \\Sigma^{-1} 1.
        """
        s = self.solve(np.ones(self.n_assets))
        return s / s.sum()

    def positions(self) -> np.ndarray:
        """Positions (N,) of the model's stocks in the full universe: ``assets``, or ``0..N-1`` without them."""
        return np.arange(self.n_assets) if self.assets is None else self.assets
