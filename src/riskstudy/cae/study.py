"""The conditional autoencoder section for one market: characteristics, expanding-window refits, Fama-French.

:func:`run_market` is what the section's stage (and notebook ``40_conditional_autoencoder``) calls
per market; its ``"metrics"`` are ``reports/metrics/cae_<market>.json``'s content::

    {model: {K: {"r2_total", "r2_pred", "r2_total_portfolios", "r2_pred_portfolios",
                 "seeds": {metric: {"mean", "lo", "hi", "n", "min", "max"}}}}}

(fractions; ``K`` as a string, the JSON key; the four values are the seed ensemble's, i.e. the
R^2 of the seed-mean predictions, and ``"seeds"``, for CA0-CA3 only, summarises each seed's own
R^2). Models: the networks of ``cae.models``, each beside its untrained self (``"CA1 (untrained)"``:
the same seeds' initial weights, :func:`untrained`), ``IPCA`` (our ALS), ``PCA`` (static loadings)
for every K of ``cae.ks``, and with Fama-French factors ``FF3`` (K = 3) and ``FF5`` (K = 5), all
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
from riskstudy.cae.config import CAEConfig
from riskstudy.config import Params
from riskstudy.data.market import MarketData
from riskstudy.stats import CLAIM_WORDS, point, verdict


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


def untrained(model: str) -> str:
    """The name of ``model``'s untrained control: the same architecture, seeds and refits, zero epochs."""
    return f"{model} (untrained)"


def is_control(model: str) -> bool:
    """Whether ``model`` names an untrained control (:func:`untrained`)."""
    return model.endswith(" (untrained)")


#: The networks whose claims :func:`verdicts` checks, and the linear baselines they are checked against.
NETWORKS = ("CA0", "CA1", "CA2", "CA3")
BASELINES = ("IPCA", "PCA")


def verdicts(metrics: Mapping[str, Mapping[str, Mapping]], *, metric: str = "r2_total") -> pd.DataFrame:
    """Does each network beat each linear baseline, and its own untrained self, at each K, by more than seed noise?

    The network enters with its seeds' own R^2 (``row["seeds"][metric]``: mean, Student-t 95%
    interval, range; :func:`~riskstudy.stats.mean_ci`), a deterministic baseline as a point, the
    untrained control (:func:`untrained`) with its seeds' interval, and
    :func:`~riskstudy.stats.verdict` decides: "win" needs the whole interval and every seed above
    the baseline. (The ensemble's own R^2, ``row[metric]``, is shown beside it; it is usually above
    the seeds' mean, so judging by seeds is the conservative side.)

    Returns
    -------
    DataFrame
        One row per (model, K, baseline): ``ensemble``, ``seed_mean``, ``seed_lo``, ``seed_hi``,
        ``baseline``, ``outcome`` ("win", "loss", "tie", ...) and ``claim`` (its wording).
    """
    def seeds(row: Mapping) -> dict:
        return row.get("seeds", {}).get(metric) or point(row[metric]) | {"lo": float("nan"), "hi": float("nan")}

    rows = []
    for m in (x for x in NETWORKS if x in metrics):
        for k, row in metrics[m].items():
            s = seeds(row)
            for b in (x for x in (*BASELINES, untrained(m)) if x in metrics and k in metrics[x]):
                ref = metrics[b][k]
                out = verdict(s, seeds(ref) if is_control(b) else point(ref[metric]))
                rows.append({"model": m, "K": int(k), "vs": b, "ensemble": row[metric], "seed_mean": s["mean"],
                             "seed_lo": s["lo"], "seed_hi": s["hi"], "baseline": ref[metric], "outcome": out,
                             "claim": CLAIM_WORDS[out]})
    return pd.DataFrame(rows)


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`verdicts` counted over K: one row per (model, baseline), columns win / tie / loss."""
    if table.empty:
        return pd.DataFrame(columns=["model", "vs", "win", "tie", "loss"])
    counts = (table.assign(outcome=table.outcome.str.replace(r" \(.*\)", "", regex=True))
              .groupby(["model", "vs"]).outcome.value_counts().unstack(fill_value=0))
    return counts.reindex(columns=["win", "tie", "loss"], fill_value=0).reset_index()


def verdict_text(counts: pd.DataFrame, *, market: str, metric: str) -> str:
    """One sentence per (network, baseline) of :func:`verdict_counts`, e.g. "CA1 vs IPCA: above at 2 of 6 K, ..."."""
    lines = []
    for _, r in counts.iterrows():
        n = int(r.win + r.tie + r.loss)
        lines.append(f"- {market}, {metric}: {r.model} vs {r.vs}: above by more than seed noise at {int(r.win)} of {n} K, "
                     f"within noise at {int(r.tie)}, below at {int(r.loss)}.")
    return "\n".join(lines) if lines else f"- {market}, {metric}: no network and baseline to compare."


def run_market(params: Params, md: MarketData, *, ff: Mapping[str, pd.DataFrame] | None = None,
               cae_config: CAEConfig | None = None, ks: Sequence[int] | None = None,
               models: Sequence[str] | None = None, controls: bool = True,
               progress: Callable[[str], object] | None = None) -> dict:
    """Out-of-sample R^2 of every model and K on one market, with timings.

    Parameters
    ----------
    params : Params
        ``params.cae`` (unless ``cae_config``) and ``params.split.valid_start``.
    md : MarketData
    ff : dict of DataFrame, optional
        Daily Fama-French factors by model name (:func:`~riskstudy.cae.famafrench_model.read_ff_models`;
        US only). ``ff["FF3"]`` also drives ``idiovol``; without it ``idiovol`` uses the market.
    cae_config : CAEConfig, optional
        Overrides ``params.cae``. Its ``first_oos`` (default ``split.valid_start``: the DRM's
        validation and test windows are the CAE's out-of-sample) is moved later when fewer than
        ``min_train + n_valid`` periods before it can be fitted (China: ``mom36m`` exists from
        2013-02 only; ``info["first_oos_period_end"]`` says where it starts). ``n_valid``,
        ``min_train``, ``max_missing`` and ``refit_every_months`` set the refits
        (:func:`~riskstudy.cae.refit.refit_schedule`), ``ff_window`` the Fama-French betas.
    ks, models : sequence, optional
        Override ``cae.ks`` and ``cae.models``.
    controls : bool
        Also score every network untrained (``"<model> (untrained)"``: the same seeds' initial
        weights on the same refits, i.e. ``max_epochs = 0``; its time is ``timings["untrained"]``).
    progress : callable, optional

    Returns
    -------
    dict
        ``"metrics"`` (module docstring), ``"timings"`` (seconds: ``characteristics``, each model,
        ``FF``, ``total``) and ``"info"`` (periods, refits, coverage, the setting).
    """
    t_start = time.perf_counter()
    cfg = cae_config if cae_config is not None else (params.cae if params.cae is not None else CAEConfig())
    n_valid, min_train, max_missing = cfg.n_valid, cfg.min_train, cfg.max_missing
    ff = dict(ff or {})
    t0 = time.perf_counter()
    ch = build_characteristics(md, frequency=cfg.frequency, factors=ff.get("FF3"), market=cfg.market,
                               beta_window=cfg.beta_window, idio_window=cfg.idio_window)
    timings = {"characteristics": time.perf_counter() - t0}
    j0 = max(first_oos_period(ch, cfg.first_oos or params.split.valid_start),
             earliest_first_oos(ch, n_valid=n_valid, min_train=min_train, max_missing=max_missing))
    oos = expanding_window_oos(ch, config=cfg, first_oos=j0, n_valid=n_valid,
                               min_train=min_train, max_missing=max_missing, models=models, ks=ks, progress=progress)
    table = dict(oos.table)
    timings.update(oos.timings)
    if controls and oos.epochs:
        t0 = time.perf_counter()
        ctl = expanding_window_oos(ch, config=cfg.model_copy(update={"max_epochs": 0}), first_oos=j0, n_valid=n_valid,
                                   min_train=min_train, max_missing=max_missing, models=list(oos.epochs), ks=ks,
                                   baselines=(), progress=progress)
        table.update({untrained(m): by_k for m, by_k in ctl.table.items()})
        timings["untrained"] = time.perf_counter() - t0
    coverage = {}
    if ff:
        t0 = time.perf_counter()
        tot, pred, coverage = ff_prediction_table(md, ch, ff, window=cfg.ff_window)
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
        "n_seeds": cfg.n_seeds, "max_epochs": cfg.max_epochs, "patience": cfg.patience, "controls": bool(controls),
        "ff_coverage": {k: float(v) for k, v in coverage.items()},
        "epochs": {m: {str(k): v for k, v in d.items()} for m, d in oos.epochs.items()},
    }
    return {"metrics": _jsonable(table), "timings": timings, "info": info}
