r"""CAE and IPCA betas as daily exposures of the shared risk harness (:class:`~riskstudy.factors.base.FactorModel`).

Timing
------
Betas are formed at the period ends ``e_j`` (the close of the last trading day of each month,
:func:`~riskstudy.cae.characteristics.period_ends`) from the characteristics ``Z[j]``, which use
data up to the close of ``e_j``. The exposure of day ``t`` is the beta of the most recent period
end **at or before** ``t``:

.. math:: X_{t} = \beta(Z_{j(t)}), \qquad j(t) = \max\{j : e_j \le t\},

held from ``e_j`` to ``e_{j+1} - 1``. The harness prices the return of ``t + 1`` with ``X_t``,
so the betas of ``e_j`` price exactly the days ``e_j + 1 .. e_{j+1}`` of the month they were
fitted to price. Exposures are NaN for stocks outside the day's universe, for stocks that were
not members at ``e_{j(t)}`` (they have no ranked characteristics there), and before the first
period end. (The panel's last row is always a period end, :func:`period_ends`; no data after it
exist, so this is not look-ahead.)

Fitting
-------
:meth:`~_HeldBetas.fit` uses the periods whose whole label lies in the given rows: ``j`` with
``min(rows) <= e_j`` and ``e_{j+1} <= max(rows)`` (labels straddling the end of the training
window are left out), among the periods complete enough to fit
(:func:`~riskstudy.cae.refit.complete_periods`, ``max_missing``; on our panels the training
window's first months lack ``mom36m`` for every stock). CAE trains on the training rows' periods
and early-stops on the validation rows' periods (the last ``n_valid`` training periods when none
are given); IPCA, which has nothing to stop, fits on the training periods only. One fit, no
refits, as for the other models of the harness.

Seeds
-----
Betas of different seeds are not comparable (each seed has its own rotation of the factor space),
so one network's betas cannot be averaged with another's as they are. ``ensemble="first"``
(default) trains one network (``seed``, default ``cae.seed``) and uses its betas: the harness
gets the seeds as separate runs of one Table-1 row (:data:`SPEC`, like the DRM's seeds), so
Table 1 reports their spread. ``ensemble="aligned"`` trains ``cae.n_seeds`` networks, maps each
seed's betas onto the first seed's by the least-squares linear map :math:`A_s` over the training
stock-periods (:math:`\min_A \|B_s A - B_1\|_F`; the risk model is invariant to such maps of one
network's exposures) and averages :math:`B_s A_s` over seeds.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from riskstudy.cae.characteristics import Characteristics, build_characteristics
from riskstudy.cae.famafrench_model import market_factors
from riskstudy.cae.ipca import IPCA
from riskstudy.cae.models import ConditionalAutoencoder
from riskstudy.cae.refit import complete_periods, prefix
from riskstudy.cae.config import CAEConfig
from riskstudy.config import Params
from riskstudy.data.market import MarketData
from riskstudy.factors.base import FactorModel, ModelSpec, Run


def label_periods(ch: Characteristics, rows: np.ndarray | None) -> np.ndarray:
    """Periods ``j`` with members whose label ``(e_j, e_{j+1}]`` lies inside ``[min(rows), max(rows)]`` ``(T_fit,)``."""
    if rows is None or len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    e = ch.rows
    nxt = np.r_[e[1:], np.iinfo(np.int64).max]
    ok = (e >= rows.min()) & (nxt <= rows.max()) & ch.mask.any(1)
    return np.flatnonzero(ok)


def held_exposures(betas: np.ndarray, ch: Characteristics, member: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Daily exposures ``(len(rows), N, K)`` from betas at every period end ``(T, N, K)`` (module docstring).

    Parameters
    ----------
    betas : ndarray, shape (T, N, K)
        Betas at the period ends of ``ch``.
    ch : Characteristics
    member : ndarray of bool, shape (T_d, N)
        The daily universe.
    rows : ndarray of int
        Panel rows.
    """
    rows = np.asarray(rows, dtype=np.int64)
    j = np.searchsorted(ch.rows, rows, side="right") - 1  # last period end <= t
    jj = np.clip(j, 0, None)
    ok = (j >= 0)[:, None] & ch.member[jj] & member[rows]
    return np.where(ok[..., None], betas[jj], np.nan)


class _HeldBetas(FactorModel):
    """Shared part of :class:`CAEFactorModel` and :class:`IPCAFactorModel`: characteristics, periods, holding."""

    def __init__(self, *, n_factors: int, config: CAEConfig, factors: pd.DataFrame | None = None,
                 n_valid: int = 12, max_missing: float | None = 0.5) -> None:
        self.k, self.config, self.factors, self.n_valid = int(n_factors), config, factors, int(n_valid)
        self.max_missing = max_missing

    def fit_periods(self, ch: Characteristics, rows: np.ndarray | None) -> np.ndarray:
        """:func:`label_periods` of ``rows`` that pass :func:`~riskstudy.cae.refit.complete_periods`."""
        j = label_periods(ch, rows)
        return j[complete_periods(ch, max_missing=self.max_missing)[j]]

    def characteristics(self, md: MarketData) -> Characteristics:
        """:func:`~riskstudy.cae.characteristics.build_characteristics` of ``md`` with the ``cae`` settings."""
        c = self.config
        return build_characteristics(md, frequency=c.frequency, factors=self.factors, market=c.market,
                                     beta_window=c.beta_window, idio_window=c.idio_window)

    def _windows(self, ch: Characteristics, train_rows: np.ndarray, valid_rows: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
        train, valid = self.fit_periods(ch, train_rows), self.fit_periods(ch, valid_rows)
        if len(valid) == 0:
            train, valid = train[:-self.n_valid], train[-self.n_valid:]
        if len(train) == 0 or len(valid) == 0:
            raise ValueError(f"{type(self).__name__}: {len(train)} training and {len(valid)} validation periods "
                             "in the given rows; give more rows")
        return train, valid

    def _betas(self, ch: Characteristics, periods: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def exposures(self, md: MarketData, *, rows: np.ndarray) -> np.ndarray:
        """Betas of the last period end at or before each row, ``(len(rows), N, K)``, NaN off-universe."""
        rows = np.asarray(rows, dtype=np.int64)
        ch = self.characteristics(md)
        need = np.unique(np.clip(np.searchsorted(ch.rows, rows, side="right") - 1, 0, None))
        betas = np.zeros((len(ch.rows), ch.shape[1], self.k))
        if len(need):
            betas[need] = self._betas(ch, need)
        return held_exposures(betas, ch, md.panel.member, rows)


class CAEFactorModel(_HeldBetas):
    """A conditional autoencoder's betas, held over each month, as daily exposures (module docstring).

    Parameters
    ----------
    n_factors : int
        K.
    config : CAEConfig
        The ``cae`` section (characteristics, training).
    model : {"CA0", "CA1", "CA2", "CA3"}
        The beta network (``cae.hidden[model]``); CA1 by default, as in the issue.
    ensemble : {"first", "aligned"}
        One network's betas, or the seeds' betas aligned onto the first seed's and averaged.
    seed : int, optional
        The network's seed with ``"first"`` (default ``cae.seed``); the first seed with ``"aligned"``.
    factors : DataFrame, optional
        Daily factors of ``idiovol`` (Fama-French 3 for the US).
    n_valid : int
        Validation periods taken from the end of the training periods when ``valid_rows`` has none.
    max_missing : float, optional
        Fitted periods' completeness (:func:`~riskstudy.cae.refit.complete_periods`; ``None``: all).

    Attributes
    ----------
    cae_ : ConditionalAutoencoder
    train_, valid_ : ndarray of int
        Periods fitted and early-stopped on.
    align_ : ndarray, shape (S, K, K)
        The maps :math:`A_s` (identity for the first seed; only with ``"aligned"``).
    names_ : list of str
    """

    def __init__(self, *, n_factors: int, config: CAEConfig, model: str = "CA1",
                 ensemble: Literal["first", "aligned"] = "first", seed: int | None = None,
                 factors: pd.DataFrame | None = None, n_valid: int = 12, max_missing: float | None = 0.5) -> None:
        super().__init__(n_factors=n_factors, config=config, factors=factors, n_valid=n_valid, max_missing=max_missing)
        if model not in config.hidden:
            raise ValueError(f"model {model!r} has no cae.hidden entry")
        self.model, self.ensemble = model, ensemble
        self.seed = config.seed if seed is None else int(seed)

    def fit(self, md: MarketData, *, train_rows: np.ndarray, valid_rows: np.ndarray | None = None) -> "CAEFactorModel":
        ch = self.characteristics(md)
        self.train_, self.valid_ = self._windows(ch, train_rows, valid_rows)
        n = 1 if self.ensemble == "first" else self.config.n_seeds
        cfg = self.config.model_copy(update={"seed": self.seed, "n_seeds": n})
        fit_ch = prefix(ch, max(self.train_.max(), self.valid_.max()) + 1)
        self.cae_ = ConditionalAutoencoder(hidden=cfg.hidden[self.model], n_factors=self.k, config=cfg)
        self.cae_.fit(fit_ch, train=self.train_, valid=self.valid_)
        if self.ensemble == "aligned":
            b = self.cae_.betas(fit_ch, self.train_)  # (S, T, N, K)
            m = fit_ch.mask[self.train_]
            ref = b[0][m]
            self.align_ = np.stack([np.linalg.lstsq(bs[m], ref, rcond=None)[0] for bs in b])
        self.names_ = [f"{self.model.lower()}_{i + 1}" for i in range(self.k)]
        return self

    def _betas(self, ch: Characteristics, periods: np.ndarray) -> np.ndarray:
        b = self.cae_.betas(ch, periods)  # (S, T, N, K)
        if self.ensemble == "first":
            return b[0]
        return np.einsum("stnk,skl->tnl", b, self.align_) / len(b)


class IPCAFactorModel(_HeldBetas):
    """IPCA betas :math:`[z, 1]'\\Gamma`, held over each month, as daily exposures (module docstring).

    Parameters
    ----------
    n_factors : int
        K.
    config : CAEConfig
        The ``cae`` section (characteristics, ``ipca_max_iter``, ``ipca_tol``).
    factors : DataFrame, optional
        Daily factors of ``idiovol``.
    n_valid, max_missing
        As :class:`CAEFactorModel` (``n_valid`` unused: IPCA does not early-stop).

    Attributes
    ----------
    ipca_ : IPCA
    train_ : ndarray of int
    names_ : list of str
    """

    def fit(self, md: MarketData, *, train_rows: np.ndarray, valid_rows: np.ndarray | None = None) -> "IPCAFactorModel":
        ch = self.characteristics(md)
        self.train_ = self.fit_periods(ch, train_rows)
        if len(self.train_) == 0:
            raise ValueError("IPCAFactorModel: no training period in the given rows")
        fit_ch = prefix(ch, self.train_.max() + 1)
        self.ipca_ = IPCA(n_factors=self.k, max_iter=self.config.ipca_max_iter, tol=self.config.ipca_tol)
        self.ipca_.fit(fit_ch, train=self.train_)
        self.names_ = [f"ipca_{i + 1}" for i in range(self.k)]
        return self

    def _betas(self, ch: Characteristics, periods: np.ndarray) -> np.ndarray:
        return self.ipca_.betas(ch, periods)


def _idiovol_factors(params: Params, market: str) -> pd.DataFrame | None:
    """Fama-French 3 daily factors for the US's ``idiovol`` (the market return elsewhere)."""
    return market_factors(params, market).get("FF3")


def _runs(params: Params, market: str, *, k: int | None = None) -> list[Run]:
    """Rows "CAE" (``cae.risk_model``, one run per seed, K = :meth:`~riskstudy.cae.config.CAEConfig.harness_k`
    unless ``k``) and "IPCA" (same K)."""
    cfg = params.cae
    if cfg is None:
        raise ValueError("the cae model needs a 'cae' section in params.yaml")
    k = cfg.harness_k() if k is None else int(k)
    seeds = [cfg.seed + s for s in range(cfg.n_seeds)]
    ff = _idiovol_factors(params, market)
    common = {"n_factors": k, "config": cfg, "factors": ff, "n_valid": cfg.n_valid, "max_missing": cfg.max_missing}
    runs = [Run(f"CAE s{s}", "CAE", seed=s,
                factor_model=lambda s=s: CAEFactorModel(model=cfg.risk_model, seed=s, **common))
            for s in seeds]
    return runs + [Run("IPCA", "IPCA", factor_model=lambda: IPCAFactorModel(**common))]


#: Registered as ``cae`` (``evaluation/registry.py::BUILTIN``): rows "CAE" (its seeds as runs) and "IPCA".
SPEC = ModelSpec("cae", runs=_runs)
