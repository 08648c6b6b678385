"""Benchmark of the Deep Risk Model training protocol on real data (issue 11).

``python -m riskstudy.studies.drm_protocol --market us [--k 10 --seed 0]`` trains the recipes of
:data:`RECIPES` (overrides of the ``drm`` section) on one market, K and seed, and scores each,
its untrained control, the linear probe and the static training-window PCA loadings on the same
validation days with the same warm-started scoring (``--burn-in`` rows predicted first). Prints
one table and writes it as JSON (``--out``): validation R^2 (20-horizon mean and next day), best
epoch and steps, training wall time. Choices are made on validation only; the test window is not
read.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import pandas as pd

from riskstudy.config import load_params
from riskstudy.data.market import load_market
from riskstudy.factors.drm_runs import build_dataset, model_config, split_days, untrained_run
from riskstudy.factors.srm import StaticPCAFactorModel
from riskstudy.features.drm_inputs import split_rows
from riskstudy.nn.drm_train import burn_in_rows, fit_drm, score_exposures

log = logging.getLogger(__name__)

#: The fast recipe (unsmoothed training, 8-day continuous batches, subsampled stocks) and its variants.
FAST = dict(rho_train=0.0, batch_days=8, lr=3e-3, train_days_per_epoch=None, max_epochs=4, patience=4, train_stocks=150)
#: Named overrides of the ``drm`` section; ``params`` is the profile's own recipe.
RECIPES: dict[str, dict[str, object]] = {
    "params": {},
    "fast": FAST,
    "fast, lambda warm-up 100": {**FAST, "lambda_warmup_steps": 100},
    "fast, rho_train 0.9": {**FAST, "rho_train": 0.9},
    "linear probe (fast)": {**FAST, "encoder": "linear", "gat": False},
}


def run(params_file: str, *, market: str, k: int, seed: int, burn_in: int, recipes: list[str]) -> pd.DataFrame:
    params = load_params(params_file)
    md = load_market(params, market)
    ds = build_dataset(md, params)
    days = split_days(ds, params, train_start=params.drm.train_start, valid_max_days=params.drm.valid_max_days)
    rows = []
    train = split_rows(md.panel.dates, *params.split.window("train"))
    pca = StaticPCAFactorModel(n_factors=k).fit(md, train_rows=train)
    ref = score_exposures(pca.full_exposures(md, rows=days.valid), ds, days.valid)
    rows.append({"model": "PCA static (training window)", "valid_r2": ref["r2"], "valid_r2_1d": ref["r2_1d"]})
    for name in recipes:
        cfg = model_config(params, n_factors=k, seed=seed, burn_in_days=burn_in, **RECIPES[name])
        ctl = untrained_run(ds, days, cfg, predict=False).fit.history.iloc[0]
        t0 = time.perf_counter()
        fit = fit_drm(ds, train_days=days.train, valid_days=days.valid, config=cfg)
        best = fit.history.loc[fit.history.epoch == fit.best_epoch].iloc[0]
        rows.append({"model": name, "valid_r2_init": float(ctl.valid_r2), "valid_r2": float(best.valid_r2),
                     "valid_r2_1d": float(best.valid_r2_1d), "gain": float(best.valid_r2 - ctl.valid_r2),
                     "best_epoch": int(fit.best_epoch), "best_steps": int(best.steps),
                     "train_seconds": time.perf_counter() - t0,
                     "curve": fit.history[["steps", "valid_r2"]].to_dict("records")})
        log.info("%s: untrained %.4f -> trained %.4f", name, ctl.valid_r2, best.valid_r2)
    out = pd.DataFrame(rows)
    out.attrs.update(market=market, k=k, seed=seed, burn_in_days=burn_in, n_train_days=len(days.train),
                     n_valid_days=len(days.valid), n_burn_in=len(burn_in_rows(ds, days.valid, n_days=burn_in)))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="DRM training-protocol benchmark (validation only).")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--market", default="us", choices=["us", "cn"])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--burn-in", type=int, default=250)
    ap.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    table = run(args.params, market=args.market, k=args.k, seed=args.seed, burn_in=args.burn_in, recipes=args.recipes)
    print(json.dumps(table.attrs))
    print(table.drop(columns=["curve"], errors="ignore").to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"settings": table.attrs, "rows": table.to_dict("records")}, indent=2, default=float))


if __name__ == "__main__":
    main()
