"""Deep Risk Model ablation runs (paper section 5.4): one run per configuration and seed.

Each run is its own DVC stage (``abl_gat``, ``abl_lambda``, ``abl_task`` matrices in
``dvc.yaml``); a stage passes only its matrix's swept axes, everything else is read from the
params file, e.g.::

    python -m riskstudy.studies.ablations --params params.yaml --market us \\
        --k 10 --gat --seed 0 --out data/ablations/us/gat/gat_k10_s0.json

(``--k`` defaults to ``ablations.base_k``, ``--gat/--nogat`` to ``drm.gat``, ``--lam`` to
``drm.lambda``, ``--horizon`` to ``drm.horizon``, i.e. all label horizons of ``features.horizon``
when unset). A run trains the model on the reduced ablation setting (``ablations.*``), predicts
exposures over validation + test, and measures on the test window: mean R^2, per-factor VIF,
GMV volatility and the daily lag-1 rank autocorrelation of the exposures, and on validation its
best R^2 beside its own untrained network's (``valid_r2_init``, same warm-started scoring), so
every ablation row shows whether its run learned. The files are
aggregated by :mod:`riskstudy.evaluation.ablations`.
"""

from __future__ import annotations

import argparse
import logging
import time
from itertools import product

import numpy as np

from riskstudy.config import Params, load_params
from riskstudy.data.market import load_market
from riskstudy.evaluation.factor_stats import rank_autocorrelation, vif
from riskstudy.evaluation.scoring import evaluate_factor_model
from riskstudy.factors.drm_runs import (
    build_dataset,
    full_exposures,
    model_config,
    restrict_universe,
    split_days,
    train_and_predict,
    untrained_run,
)
from riskstudy.reporting import write_metrics
from riskstudy.risk.factor_model import EvalWindow

log = logging.getLogger(__name__)


def expected_stages(params: Params) -> list[str]:
    """DVC stage names the ablation matrices of ``dvc.yaml`` must expand to."""
    a = params.ablations
    names = [f"abl_gat@{m}-{k}-{g}-{s}" for m, k, g, s in product(a.markets, a.ks, ("gat", "nogat"), a.seeds)]
    names += [f"abl_lambda@{m}-{lam}-{s}" for m, lam, s in product(a.markets, a.lambdas, a.seeds)]
    names += [f"abl_task@{m}-{h}-{s}" for m, h, s in product(a.markets, (1, 20), a.seeds)]
    return names


def label_horizons(params: Params) -> int:
    """H of the loss: ``drm.horizon``, or all ``features.horizon`` label horizons when it is unset."""
    return params.features.horizon if params.drm.horizon is None else params.drm.horizon


def run_ablation(params: Params, *, market: str, k: int, gat: bool, lam: float, horizon: int, seed: int) -> dict:
    """Train one configuration and measure it on the test window (a JSON-ready dict).

    ``horizon`` is the number of label horizons in the loss (the run file records it; the
    multi-task runs have ``horizon > 1``).
    """
    t0 = time.perf_counter()
    a = params.ablations
    md = restrict_universe(load_market(params, market), params, a.max_stocks)
    panel = md.panel
    ds = build_dataset(md, params)
    days = split_days(ds, params, train_start=a.train_start, valid_max_days=a.valid_max_days, history_days=a.history_days)
    cfg = model_config(
        params, n_factors=k, seed=seed, gat=gat, lambda_=lam, horizon=horizon,
        max_epochs=a.max_epochs, train_days_per_epoch=a.train_days_per_epoch,
        patience=max(1, min(params.drm.patience, a.max_epochs)),
    )
    control = untrained_run(ds, days, cfg, predict=False)  # the run's own starting point, same warm-started scoring
    run = train_and_predict(ds, days, cfg)
    best = run.fit.history.loc[run.fit.history.epoch == run.fit.best_epoch].iloc[0]
    expo = full_exposures(run, panel.shape[0]).astype(float)
    s = params.split
    window = EvalWindow.from_dates(panel, history_start=panel.dates[days.predict[0]], test_start=s.test_start, test_end=s.test_end)
    names = [f"drm_{i + 1}" for i in range(k)]
    ev = evaluate_factor_model(f"K={k}", panel, expo, window, factor_names=names, risk=params.risk, long_only=False)
    rows = window.rows.start + window.test
    test_expo, test_mask = expo[rows], panel.member[rows]
    autocorr_daily = rank_autocorrelation(test_expo, mask=test_mask, daily=True).mean(1)  # (T_test,)
    return {
        "market": market, "k": k, "gat": gat, "lambda": lam, "horizon": horizon, "seed": seed,
        "r2": float(ev.r2.mean()),
        "gmv_vol": ev.table1_row()["gmv_vol"],
        "vif": [float(v) for v in vif(test_expo, mask=test_mask)],
        "autocorr": float(np.nanmean(autocorr_daily)),
        "autocorr_daily": {str(d.date()): float(v) for d, v in zip(panel.dates[rows], autocorr_daily)},
        "best_epoch": run.fit.best_epoch,
        "best_steps": int(best.steps),
        "valid_r2": float(best.valid_r2),
        "valid_r2_init": float(control.fit.history.valid_r2.iloc[0]),
        "n_stocks": int(panel.shape[1]),
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="One Deep Risk Model ablation run (a DVC stage).")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--market", required=True, choices=["us", "cn"])
    ap.add_argument("--k", type=int, default=None, help="K (default: ablations.base_k)")
    gat = ap.add_mutually_exclusive_group()
    gat.add_argument("--gat", dest="gat", action="store_true", default=None, help="with the GAT branch (default: drm.gat)")
    gat.add_argument("--nogat", dest="gat", action="store_false")
    ap.add_argument("--lam", type=float, default=None, help="collinearity penalty weight (default: drm.lambda)")
    ap.add_argument("--horizon", type=int, default=None,
                    help="label horizons in the loss (default: drm.horizon, unset = all of features.horizon)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    params = load_params(args.params)
    d = params.drm
    settings = {"k": params.ablations.base_k if args.k is None else args.k,
                "gat": d.gat if args.gat is None else args.gat,
                "lam": d.lambda_ if args.lam is None else args.lam,
                "horizon": label_horizons(params) if args.horizon is None else args.horizon}
    log.info("ablation run %s: market %s, seed %d, %s", args.out, args.market, args.seed,
             ", ".join(f"{k}={v}" for k, v in settings.items()))
    res = run_ablation(params, market=args.market, seed=args.seed, **settings)
    write_metrics(args.out, res, params=params)
    log.info("ablation %s: R2 %.4f, GMV vol %.4f, VIF mean %.2f, autocorr %.3f (%.0fs)",
             args.out, res["r2"], res["gmv_vol"], np.mean(res["vif"]), res["autocorr"], res["seconds"])


if __name__ == "__main__":
    main()
