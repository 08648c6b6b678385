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
import torch

from riskstudy.config import load_params
from riskstudy.data.market import load_market
from riskstudy.factors.drm_runs import build_dataset, model_config, split_days, untrained_run
from riskstudy.factors.srm import StaticPCAFactorModel
from riskstudy.features.drm_inputs import split_rows
from riskstudy.nn.drm_train import (
    ExposureCarry,
    burn_in_rows,
    fit_drm,
    init_model,
    score_exposures,
    train_step_per_day,
    training_rho,
)

log = logging.getLogger(__name__)

#: The issue-11 target: validation R^2 gain over the untrained control (fraction, 1.5 points).
TARGET_GAIN = 0.015

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
#: Shuffled recipe: unsmoothed training on random 8-day chunks (``train_days_per_epoch`` of them an epoch).
SHUFFLED = dict(rho_train=0.0, batch_days=8, lr=3e-3, train_days_per_epoch=368, max_epochs=12, patience=4,
                train_stocks=None)
#: The paper's recipe (per-day loop over 64 accumulated days, rho = 0.99 in training, lr 1e-3, all
#: training days in order each epoch), trained with the batched step (the same gradient) for a bounded run.
PAPER = dict(rho_train=None, batch_days=64, lr=1e-3, train_days_per_epoch=None, train_stocks=None, lambda_warmup_steps=0,
             lr_schedule="constant", max_epochs=4, patience=4)
RECIPES.update({
    "paper recipe (bounded)": PAPER,
    "linear probe (params)": {"encoder": "linear", "gat": False},
    "shuffled": SHUFFLED,
    "shuffled, 150 stocks": {**SHUFFLED, "train_stocks": 150},
    "shuffled, lr 1e-3": {**SHUFFLED, "lr": 1e-3},
    "shuffled, from 2009": {**SHUFFLED, "train_start": "2009-04-30"},
    "linear probe (shuffled)": {**SHUFFLED, "encoder": "linear", "gat": False},
    "shuffled, 150 stocks, lr 1e-2": {**SHUFFLED, "train_stocks": 150, "lr": 1e-2},
    "shuffled, 150 stocks, from 2009": {**SHUFFLED, "train_stocks": 150, "train_start": "2009-04-30"},
    "shuffled, 150 stocks, lr 1e-2 cosine, 8 epochs": {**SHUFFLED, "train_stocks": 150, "lr": 1e-2, "lr_schedule": "cosine",
                                                       "max_epochs": 8},
    "shuffled, 150 stocks, lr 1e-2 cosine, 8 epochs, from 2009": {**SHUFFLED, "train_stocks": 150, "lr": 1e-2,
                                                                  "lr_schedule": "cosine", "max_epochs": 8,
                                                                  "train_start": "2009-04-30"},
})


def per_day_step_seconds(ds, days, cfg, *, repeats: int = 2) -> float:
    """Wall time of one step of the paper's per-day loop (:func:`~riskstudy.nn.drm_train.train_step_per_day`)
    on the first ``cfg.batch_days`` training days, all members (the fastest of ``repeats``)."""
    model = init_model(cfg).to(cfg.resolved_device()).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    batch = next(iter(ds.batches(days.train[:cfg.batch_days], cfg.batch_days))).to(cfg.resolved_device())
    best = float("inf")
    for _ in range(repeats):
        carry = ExposureCarry(n_factors=cfg.n_factors, device=cfg.resolved_device())
        t0 = time.perf_counter()
        train_step_per_day(model, opt, batch, carry, rho=training_rho(cfg), lambda_=cfg.lambda_)
        best = min(best, time.perf_counter() - t0)
    return best


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
        days = split_days(ds, params, train_start=cfg.train_start, valid_max_days=cfg.valid_max_days)
        ctl = untrained_run(ds, days, cfg, predict=False).fit.history.iloc[0]
        t0 = time.perf_counter()
        fit = fit_drm(ds, train_days=days.train, valid_days=days.valid, config=cfg)
        h = fit.history.assign(elapsed=fit.history.seconds.cumsum())
        best = h.loc[h.epoch == fit.best_epoch].iloc[0]
        hit = h.loc[h.valid_r2 - ctl.valid_r2 >= TARGET_GAIN]
        rows.append({"model": name, "valid_r2_init": float(ctl.valid_r2), "valid_r2": float(best.valid_r2),
                     "valid_r2_1d": float(best.valid_r2_1d), "gain": float(best.valid_r2 - ctl.valid_r2),
                     "best_epoch": int(fit.best_epoch), "best_steps": int(best.steps),
                     "train_seconds": time.perf_counter() - t0,
                     "seconds_to_target": float(hit.elapsed.iloc[0]) if len(hit) else None,
                     "steps_to_target": int(hit.steps.iloc[0]) if len(hit) else None,
                     "curve": h[["steps", "elapsed", "valid_r2"]].to_dict("records")})
        if name.startswith("paper recipe"):  # its time on the paper's own per-day loop: step time x steps to its best
            step = per_day_step_seconds(ds, days, cfg)
            rows[-1].update(per_day_step_seconds=step, per_day_seconds_to_best=step * int(best.steps))
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
