"""The conditional autoencoder section for one market: characteristics, expanding-window refits, Fama-French.

:func:`run_market` is what the section's stage (and notebook ``40_conditional_autoencoder``) calls
per market; its ``"metrics"`` are ``reports/metrics/cae_<market>.json``'s content::

    {model: {K: {"r2_total", "r2_pred", "r2_total_portfolios", "r2_pred_portfolios",
                 "seeds": {metric: {"mean", "lo", "hi", "n", "min", "max"}}}}}

(fractions; ``K`` as a string, the JSON key; the four values are the seed ensemble's, i.e. the
R^2 of the seed-mean predictions, and ``"seeds"``, for CA0-CA3 only, summarises each seed's own
R^2). Models: the networks of ``cae.models``, ``IPCA`` (our ALS), ``PCA`` (static loadings) for
every K of ``cae.ks``, and with Fama-French factors ``FF3`` (K = 3) and ``FF5`` (K = 5), all
scored on the same out-of-sample stock-periods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd

from riskstudy.cae.characteristics import Characteristics, build_characteristics
from riskstudy.cae.famafrench_model import ff_prediction_table
from riskstudy.cae.refit import METRICS, earliest_first_oos, expanding_window_oos, score_table
from riskstudy.config import CAEConfig, Params
from riskstudy.data.market import MarketData


def first_oos_period(ch: Characteristics, start: date | str | pd.Timestamp) -> int:
    """The first period whose label lies after ``start``: the last period end strictly before ``start``."""
    j = int(np.searchsorted(ch.dates, pd.Timestamp(start), side="left")) - 1
    if j < 0:
        raise ValueError(f"no period end before {start} (first is {ch.dates[0].date()})")
    return j


def _jsonable(table: dict) -> dict:
    """``{model: {K: row}}`` with string K keys and plain floats."""
    def clean(v):
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        return int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else float(v)
    return {m: {str(k): clean(row) for k, row in by_k.items()} for m, by_k in table.items()}


def metrics_frame(metrics: Mapping[str, Mapping[str, Mapping]]) -> pd.DataFrame:
    """The metrics dict as a long table: one row per (model, K), :data:`~riskstudy.cae.refit.METRICS` columns
    plus ``<metric>_min`` / ``_max`` for models with seeds."""
    rows = []
    for m, by_k in metrics.items():
        for k, row in by_k.items():
            r = {"model": m, "K": int(k), **{x: row[x] for x in METRICS}}
            for x in METRICS:
                s = row.get("seeds", {}).get(x)
                r[f"{x}_min"], r[f"{x}_max"] = (s["min"], s["max"]) if s else (np.nan, np.nan)
            rows.append(r)
    return pd.DataFrame(rows)


def run_market(params: Params, md: MarketData, *, ff: Mapping[str, pd.DataFrame] | None = None,
               cae_config: CAEConfig | None = None, ks: Sequence[int] | None = None,
               models: Sequence[str] | None = None, first_oos: date | str | pd.Timestamp | None = None,
               n_valid: int = 12, min_train: int = 12, max_missing: float | None = 0.5,
               refit_every: int | None = None, ff_window: int = 252,
               progress: Callable[[str], object] | None = None) -> dict:
    """Out-of-sample R^2 of every model and K on one market, with timings.

    Parameters
    ----------
    params : Params
        ``params.cae`` (unless ``cae_config``) and ``params.split.valid_start`` (default ``first_oos``).
    md : MarketData
    ff : dict of DataFrame, optional
        Daily Fama-French factors by model name (:func:`~riskstudy.cae.famafrench_model.read_ff_models`;
        US only). ``ff["FF3"]`` also drives ``idiovol``; without it ``idiovol`` uses the market.
    cae_config : CAEConfig, optional
        Overrides ``params.cae``.
    ks, models : sequence, optional
        Override ``cae.ks`` and ``cae.models``.
    first_oos : date, optional
        The first out-of-sample label starts after the last period end before it. Default
        ``split.valid_start`` (the DRM's validation and test windows are the CAE's out-of-sample),
        moved later when fewer than ``min_train + n_valid`` periods before it can be fitted
        (China: ``mom36m`` exists from 2013-02 only; ``info["first_oos_period_end"]`` says where it starts).
    n_valid : int
        Validation periods at the end of each refit's window (config field to add: ``cae.n_valid``).
    min_train, max_missing : int, float
        :func:`~riskstudy.cae.refit.refit_schedule` (config field to add: ``cae.max_missing``).
    refit_every : int, optional
        Periods between refits (default ``cae.refit_every_months``).
    ff_window : int
        Trading days of the Fama-French beta regressions.
    progress : callable, optional

    Returns
    -------
    dict
        ``"metrics"`` (module docstring), ``"timings"`` (seconds: ``characteristics``, each model,
        ``FF``, ``total``) and ``"info"`` (periods, refits, coverage, the setting).
    """
    t_start = time.perf_counter()
    cfg = cae_config if cae_config is not None else (params.cae if params.cae is not None else CAEConfig())
    ff = dict(ff or {})
    t0 = time.perf_counter()
    ch = build_characteristics(md, frequency=cfg.frequency, factors=ff.get("FF3"), market=cfg.market,
                               beta_window=cfg.beta_window, idio_window=cfg.idio_window)
    timings = {"characteristics": time.perf_counter() - t0}
    if first_oos is None:
        j0 = max(first_oos_period(ch, params.split.valid_start),
                 earliest_first_oos(ch, n_valid=n_valid, min_train=min_train, max_missing=max_missing))
    else:
        j0 = first_oos_period(ch, first_oos)
    oos = expanding_window_oos(ch, config=cfg, first_oos=j0, refit_every=refit_every, n_valid=n_valid,
                               min_train=min_train, max_missing=max_missing, models=models, ks=ks, progress=progress)
    table = dict(oos.table)
    timings.update(oos.timings)
    coverage = {}
    if ff:
        t0 = time.perf_counter()
        tot, pred, coverage = ff_prediction_table(md, ch, ff, window=ff_window)
        p = oos.periods
        table.update(score_table(ch, p, {m: {k: v[p] for k, v in d.items()} for m, d in tot.items()},
                                 {m: {k: v[p] for k, v in d.items()} for m, d in pred.items()}))
        timings["FF"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    info = {
        "market": md.panel.market, "frequency": ch.frequency, "n_periods": int(len(ch.dates)),
        "n_stocks": int(ch.shape[1]), "characteristics": list(ch.names),
        "missing_share": {k: float(v) for k, v in ch.missing_share().items()},
        "first_oos_period_end": str(ch.dates[oos.periods[0]].date()),
        "last_oos_period_end": str(ch.dates[oos.periods[-1]].date()),
        "n_oos_periods": int(len(oos.periods)), "n_oos_stock_periods": int(ch.mask[oos.periods].sum()),
        "first_fitted": str(ch.dates[oos.windows[0].train[0]].date()), "max_missing": max_missing,
        "refits": [{"period_end": str(ch.dates[w.start].date()), "n_train": int(len(w.train)),
                    "n_valid": int(len(w.valid)), "n_predicted": int(w.stop - w.start)} for w in oos.windows],
        "models": list(cfg.models if models is None else models),
        "ks": [int(k) for k in (cfg.ks if ks is None else ks)],
        "n_seeds": cfg.n_seeds, "max_epochs": cfg.max_epochs, "patience": cfg.patience,
        "ff_coverage": {k: float(v) for k, v in coverage.items()},
        "epochs": {m: {str(k): v for k, v in d.items()} for m, d in oos.epochs.items()},
    }
    return {"metrics": _jsonable(table), "timings": timings, "info": info}
