r"""Expanding-window out-of-sample evaluation of CA0-CA3, IPCA and static PCA (Gu, Kelly, Xiu 2021, section 3).

Schedule
--------
Periods ``t = 0 .. T-1`` of a :class:`~riskstudy.cae.characteristics.Characteristics` (``Z[t]``
known at the end of period ``t`` prices ``R[t]``, the return over the next period). The scored
periods are ``first_oos <= t`` with at least one member with a label. Refit ``r`` starts at
``s_r = first_oos + r * refit_every`` (:func:`refit_schedule`):

* the model is fitted on the periods ``j < s_r`` with members and complete enough
  characteristics (:func:`complete_periods`), the **last** ``n_valid`` of them as the validation
  window (early stopping of the networks; the linear baselines fit on all of them, validation
  included, since they have nothing to stop);
* it predicts the periods ``s_r <= t < s_{r+1}`` out of sample.

Periods where some characteristic is missing (hence 0) for more than ``max_missing`` of the
members are not fitted: before 36 months of history ``mom36m`` is missing for every stock (US
until 2010-12, China until 2013-01 on our panels), before 12 months ``beta``, ``idiovol`` and the
12-month momenta are, and such all-zero columns make the IPCA factors of those periods explode
(measured on the US, refits from 2014-12 every 12 months: IPCA K = 6 predictive R^2 -210 with
them, -0.8% without; total R^2 unchanged at 40.9%). Scored periods are never dropped.

The label of period ``j`` is realised at the end of period ``j + 1``, so every label a refit
uses, ``R[j]`` with ``j <= s_r - 1``, is known at the end of period ``s_r``, when the first
betas it prices, ``beta(Z[s_r])``, are formed: no look-ahead. The fit sees only the prefix
``ch[:s_r]`` (:func:`prefix`), so it cannot read later data even by accident.

Predictions
-----------
For each model, K and seed ``s`` (the linear baselines have one "seed"), with betas
:math:`\beta^{(s)}_{t-1}` and factors :math:`f^{(s)}_t` of the fitted model:

.. math:: \hat r^{\text{tot}}_{i,t} = \tfrac1S \sum_s \beta^{(s)\prime}_{i,t-1} f^{(s)}_t, \qquad
          \hat r^{\text{pred}}_{i,t} = \tfrac1S \sum_s \beta^{(s)\prime}_{i,t-1} \lambda^{(s)}_{t-1},

where :math:`\lambda^{(s)}_{t-1}` is the running mean (:func:`~riskstudy.cae.scores.running_mean`)
of the refit's factors over every period before ``t``: the fitted periods ``j < s_r`` (training
*and* validation, all known at ``s_r``) and the refit's out-of-sample periods before ``t``. The
out-of-sample factor :math:`f_t` is, by the definition of the total R^2, contemporaneous with
``R[t]``: the factor network on the managed portfolios of ``R[t]`` (CA0-CA3) or the
cross-sectional regression of ``R[t]`` on the betas (IPCA, PCA; :mod:`riskstudy.cae.ipca`).

Scores
------
:func:`score_table` scores the ensemble predictions over all scored periods at once
(:func:`~riskstudy.cae.scores.score_predictions`), giving ``{model: {K: {"r2_total", "r2_pred",
"r2_total_portfolios", "r2_pred_portfolios"}}}`` (fractions); for models with several seeds it
adds ``"seeds"``: each metric of each seed's own predictions summarised by :func:`~riskstudy.stats.mean_ci`
(mean, Student-t 95% interval, min, max; the dict that ``riskstudy.evaluation.claims.verdict`` compares).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from riskstudy.cae.characteristics import Characteristics
from riskstudy.cae.ipca import IPCA, StaticPCA
from riskstudy.cae.models import ConditionalAutoencoder
from riskstudy.cae.config import CAEConfig
from riskstudy.cae.scores import running_mean, score_predictions
from riskstudy.stats import mean_ci

#: The four scores of every (model, K), in the order of the metrics file.
METRICS: tuple[str, ...] = ("r2_total", "r2_pred", "r2_total_portfolios", "r2_pred_portfolios")
#: Linear baselines fitted by :func:`expanding_window_oos` beside the networks.
BASELINES: tuple[str, ...] = ("IPCA", "PCA")


@dataclass(frozen=True)
class RefitWindow:
    """One refit of the expanding window.

    Attributes
    ----------
    start, stop : int
        The refit predicts periods ``start <= t < stop``.
    train : ndarray of int
        Training periods (before the validation window).
    valid : ndarray of int
        The last ``n_valid`` fitted periods (early stopping).
    """

    start: int
    stop: int
    train: np.ndarray
    valid: np.ndarray

    @property
    def fitted(self) -> np.ndarray:
        """Every period the refit learns from (training then validation), all ``< start``."""
        return np.concatenate([self.train, self.valid])


@dataclass
class OOSResult:
    """Output of :func:`expanding_window_oos`.

    Attributes
    ----------
    periods : ndarray of int, shape (T_oos,)
        Scored periods (indices into the characteristics).
    windows : list of RefitWindow
    total, predictive : dict
        ``{model: {K: ndarray (S, T_oos, N)}}``: each seed's out-of-sample predictions of
        ``R[periods]`` (``S = 1`` for IPCA and PCA; 0 off ``mask``).
    table : dict
        :func:`score_table` of the ensemble (seed-mean) predictions.
    timings : dict
        Seconds spent fitting and predicting, per model.
    epochs : dict
        ``{model: {K: [epochs trained, per refit and seed]}}`` (networks only).
    """

    periods: np.ndarray
    windows: list[RefitWindow]
    total: dict[str, dict[int, np.ndarray]]
    predictive: dict[str, dict[int, np.ndarray]]
    table: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    epochs: dict[str, dict[int, list[int]]] = field(default_factory=dict)


def periods_per_refit(months: int, frequency: str) -> int:
    """Refit cadence in periods: ``months`` monthly, ``round(months * 52 / 12)`` weekly."""
    return int(months) if frequency == "monthly" else max(1, int(round(months * 52 / 12)))


def prefix(ch: Characteristics, stop: int) -> Characteristics:
    """The first ``stop`` periods of ``ch`` (periods ``0 .. stop-1``; the same period indices)."""
    s = slice(0, int(stop))
    return replace(ch, Z=ch.Z[s], R=ch.R[s], mask=ch.mask[s], member=ch.member[s], dates=ch.dates[s], rows=ch.rows[s],
                   missing=ch.missing[s])


def complete_periods(ch: Characteristics, *, max_missing: float | None = 0.5) -> np.ndarray:
    """Periods whose every characteristic is missing for at most ``max_missing`` of the members, ``(T,)`` bool.

    ``None`` keeps every period. Periods without members count as complete (they are never fitted anyway).
    """
    if max_missing is None:
        return np.ones(len(ch.mask), dtype=bool)
    share = ch.missing / np.maximum(ch.member.sum(1, keepdims=True), 1)
    return (share <= max_missing).all(1)


def refit_schedule(ch: Characteristics, *, first_oos: int, refit_every: int = 12, n_valid: int = 12,
                   min_train: int = 12, max_missing: float | None = 0.5) -> list[RefitWindow]:
    """Refit windows of the expanding window (module docstring).

    Parameters
    ----------
    ch : Characteristics
    first_oos : int
        First out-of-sample period (index into ``ch``).
    refit_every : int
        Periods between refits (each refit predicts this many periods; the last may predict fewer).
    n_valid : int
        Validation periods at the end of each fitted window.
    min_train : int
        Fewest training periods (with members) the first refit may have.
    max_missing : float, optional
        Fitted periods must pass :func:`complete_periods` (``None``: every period with members).

    Returns
    -------
    list of RefitWindow
        Consecutive, covering every scored period ``t >= first_oos`` (periods with a labelled member).
    """
    scored = np.flatnonzero(ch.mask.any(1))
    oos = scored[scored >= first_oos]
    if len(oos) == 0:
        raise ValueError(f"no scored period at or after first_oos={first_oos} (T={len(ch.mask)})")
    if refit_every < 1 or n_valid < 1:
        raise ValueError(f"refit_every and n_valid must be >= 1, got {refit_every}, {n_valid}")
    fittable = scored[complete_periods(ch, max_missing=max_missing)[scored]]
    windows = []
    for start in range(int(first_oos), int(oos[-1]) + 1, int(refit_every)):
        fitted = fittable[fittable < start]
        train, valid = fitted[:-n_valid], fitted[-n_valid:]
        if len(train) < min_train:
            raise ValueError(f"refit at period {start}: {len(train)} training periods (+ {len(valid)} validation), "
                             f"fewer than min_train={min_train}; start later")
        windows.append(RefitWindow(start=start, stop=min(start + refit_every, int(oos[-1]) + 1), train=train,
                                   valid=valid))
    return windows


def _seed_predictions(beta: np.ndarray, f_oos: np.ndarray, f_prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-seed total and predictive predictions ``(S, T, N)`` from betas ``(S, T, N, K)``, factors ``(S, T, K)``
    and the factors of the fitted periods ``(S, T_0, K)`` (the running mean's prior)."""
    lam = np.stack([running_mean(f_oos[s], prior=f_prior[s]) for s in range(len(beta))])
    return np.einsum("stnk,stk->stn", beta, f_oos), np.einsum("stnk,stk->stn", beta, lam)


def _fit_predict(name: str, k: int, ch: Characteristics, w: RefitWindow, *, config: CAEConfig
                 ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Fit model ``name`` with K = ``k`` on the prefix before ``w.start``; predict ``w.start .. w.stop - 1``.

    Returns the per-seed total and predictive predictions ``(S, w.stop - w.start, N)`` and the epochs
    each seed trained (empty for the linear baselines).
    """
    fit_ch = prefix(ch, w.start)
    oos = np.arange(w.start, w.stop)
    if name in config.hidden and name not in BASELINES:
        m = ConditionalAutoencoder(hidden=config.hidden[name], n_factors=k, config=config)
        m.fit(fit_ch, train=w.train, valid=w.valid)
        beta, f = m.betas(ch, oos), m.factors(ch, oos)
        prior = m.factors(fit_ch, w.fitted)
        epochs = [len(r.history) for r in m.results_]
    else:
        if name == "IPCA":
            m = IPCA(n_factors=k, max_iter=config.ipca_max_iter, tol=config.ipca_tol)
        elif name == "PCA":
            m = StaticPCA(n_factors=k, min_periods=config.pca_min_periods)
        else:
            raise ValueError(f"unknown model {name!r}: CA0-CA3 (with cae.hidden) or one of {BASELINES}")
        m.fit(fit_ch, train=w.fitted)
        beta, f, prior = m.betas(ch, oos)[None], m.factors(ch, oos)[None], m.factors(fit_ch, w.fitted)[None]
        epochs = []
    return (*_seed_predictions(beta, f, prior), epochs)


def score_table(ch: Characteristics, periods: np.ndarray, total: Mapping[str, Mapping[int, np.ndarray]],
                predictive: Mapping[str, Mapping[int, np.ndarray]]) -> dict:
    """Out-of-sample R^2 of every (model, K) over the stock-periods ``ch.mask[periods]``.

    Parameters
    ----------
    ch : Characteristics
    periods : ndarray of int, shape (T_oos,)
    total, predictive : dict
        ``{model: {K: ndarray (S, T_oos, N) or (T_oos, N)}}``.

    Returns
    -------
    dict
        ``{model: {K: {metric: float, ...}}}`` with :data:`METRICS` from the seed-mean predictions;
        with ``S > 1`` also ``"seeds": {metric: mean_ci(per-seed values)}``.
    """
    p = np.asarray(periods, dtype=np.int64)
    Z, R, mask = ch.Z[p], ch.R[p], ch.mask[p]
    out: dict = {}
    for name, by_k in total.items():
        out[name] = {}
        for k, tot in by_k.items():
            tot = np.asarray(tot)
            pred = np.asarray(predictive[name][k])
            tot, pred = (tot[None], pred[None]) if tot.ndim == 2 else (tot, pred)
            row = score_predictions(Z, R, mask, total=tot.mean(0), predictive=pred.mean(0))
            if len(tot) > 1:
                per = [score_predictions(Z, R, mask, total=tot[s], predictive=pred[s]) for s in range(len(tot))]
                row["seeds"] = {m: mean_ci([d[m] for d in per]) for m in METRICS}
            out[name][k] = row
    return out


def earliest_first_oos(ch: Characteristics, *, n_valid: int = 12, min_train: int = 12,
                       max_missing: float | None = 0.5) -> int:
    """The first period before which ``min_train + n_valid`` periods can be fitted (:func:`refit_schedule`'s rule)."""
    fittable = np.flatnonzero(ch.mask.any(1) & complete_periods(ch, max_missing=max_missing))
    need = min_train + n_valid
    if len(fittable) < need + 1:
        raise ValueError(f"{len(fittable)} fittable periods, fewer than min_train + n_valid + 1 = {need + 1}")
    return int(fittable[need - 1]) + 1


def expanding_window_oos(ch: Characteristics, *, config: CAEConfig, first_oos: int, refit_every: int | None = None,
                         n_valid: int = 12, min_train: int = 12, max_missing: float | None = 0.5,
                         models: Sequence[str] | None = None,
                         ks: Sequence[int] | None = None, baselines: Sequence[str] = BASELINES,
                         progress: Callable[[str], object] | None = None) -> OOSResult:
    """Out-of-sample predictions and R^2 of CA0-CA3 ensembles, IPCA and static PCA by expanding-window refits.

    Parameters
    ----------
    ch : Characteristics
    config : CAEConfig
        The ``cae`` section (network training, ``n_seeds``, ``hidden``, IPCA and PCA settings).
    first_oos : int
        First out-of-sample period.
    refit_every : int, optional
        Periods between refits; default ``cae.refit_every_months`` (:func:`periods_per_refit`).
    n_valid : int
        Validation periods at the end of each fitted window.
    min_train, max_missing : int, float
        See :func:`refit_schedule` (config fields to add: ``cae.n_valid``, ``cae.max_missing``).
    models, ks : sequence, optional
        Networks (default ``cae.models``) and factor counts (default ``cae.ks``).
    baselines : sequence of str
        Linear baselines among :data:`BASELINES`.
    progress : callable, optional
        Called with a short message after each fit.

    Returns
    -------
    OOSResult
    """
    models = list(config.models if models is None else models)
    ks = [int(k) for k in (config.ks if ks is None else ks)]
    every = periods_per_refit(config.refit_every_months, ch.frequency) if refit_every is None else int(refit_every)
    windows = refit_schedule(ch, first_oos=first_oos, refit_every=every, n_valid=n_valid, min_train=min_train,
                             max_missing=max_missing)
    periods = np.arange(windows[0].start, windows[-1].stop)
    T, N = len(periods), ch.shape[1]
    names = models + [b for b in baselines]
    total = {m: {} for m in names}
    predictive = {m: {} for m in names}
    timings = {m: 0.0 for m in names}
    epochs: dict[str, dict[int, list[int]]] = {m: {} for m in models}
    for name in names:
        for k in ks:
            tot = pred = None
            for w in windows:
                t0 = time.perf_counter()
                a, b, ep = _fit_predict(name, k, ch, w, config=config)
                timings[name] += time.perf_counter() - t0
                if name in epochs:
                    epochs[name].setdefault(k, []).extend(ep)
                if tot is None:
                    tot, pred = np.zeros((len(a), T, N)), np.zeros((len(a), T, N))
                sl = slice(w.start - periods[0], w.stop - periods[0])
                tot[:, sl], pred[:, sl] = a, b
                if progress is not None:
                    progress(f"{name} K={k} refit at period {w.start}: {timings[name]:.1f} s so far")
            m = ch.mask[periods][None]
            total[name][k], predictive[name][k] = np.where(m, tot, 0.0), np.where(m, pred, 0.0)
    res = OOSResult(periods=periods, windows=windows, total=total, predictive=predictive, timings=timings,
                    epochs=epochs)
    res.table = score_table(ch, periods, total, predictive)
    return res
