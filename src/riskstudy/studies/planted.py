"""Planted-factor check: DRM and PCA covariance against the known truth of a synthetic market.

The synthetic market (:mod:`riskstudy.data.synthetic`) has time-varying, non-linear
exposures driven by observable characteristics, regime-switching factor volatility
and sectors, and stores the true conditional covariance of every day. Each model
goes through the study's own pipeline (regression, EWMA/VRA factor covariance,
specific variance) and its day-``t`` forecast is compared with the truth of day
``t + 1``:

``gmv_true_vol``
    Annualised *true* volatility of the model's GMV portfolio, ``sqrt(252 w' Sigma_true w)``;
    the oracle (GMV of the true covariance) is the floor. Lower is better.
``random_log_vol_error``
    Mean ``|log(sigma_pred / sigma_true)|`` over random long-only portfolios (calibration).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from riskstudy.config import Params
from riskstudy.data.synthetic import make_synthetic_market
from riskstudy.evaluation.forecast import random_portfolios, restrict_portfolios
from riskstudy.factors.drm_runs import build_dataset, full_exposures, model_config, split_days, train_and_predict
from riskstudy.factors.srm import pca_exposures
from riskstudy.risk.covariance import FactorRiskModel
from riskstudy.risk.factor_model import EvalWindow, factor_risk_models

log = logging.getLogger(__name__)


def _true_model(market, t: int, assets: np.ndarray) -> FactorRiskModel:
    B, F, D = market.true_covariance(t)
    return FactorRiskModel(B[assets], F, D[assets], assets)


def planted_factor_check(
    params: Params, *, n_days: int = 900, n_stocks: int = 120, n_factors: int = 4, n_sectors: int = 4, seed: int = 0
) -> pd.DataFrame:
    """Compare Oracle, true-exposure pipeline, PCA and DRM on a synthetic market (see module docstring).

    The DRM is trained with ``params.drm`` settings on the first half of the days, validated on the
    next fifth and every model is scored on the last 30%.
    """
    market = make_synthetic_market(n_days=n_days, n_stocks=n_stocks, n_factors=n_factors, n_sectors=n_sectors, seed=seed)
    panel = market.panel
    d = panel.dates
    i_tr, i_va = int(0.5 * n_days), int(0.7 * n_days)
    split = market.split(train_end=i_tr, valid_end=i_va)
    p = params.model_copy(update={"split": split})
    window = EvalWindow.from_dates(panel, history_start=split.valid_start, test_start=split.test_start, test_end=split.test_end)
    k = n_factors + n_factors % 2

    md = market.market_data()
    ds = build_dataset(md, p)
    days = split_days(ds, p, train_start=split.train_start)
    run = train_and_predict(ds, days, model_config(p, n_factors=k, seed=seed))
    exposures = {
        "PCA": pca_exposures(panel["ret"], k=k, window=min(p.srm.window, i_tr), refit_every=p.srm.refit_every, mask=panel.member),
        "DRM": full_exposures(run, panel.shape[0]).astype(float),
    }
    # row t of the ground truth is the law of day t's returns given t-1, so the true exposures that
    # explain day t+1 (functions of day-t characteristics) are known at the close of t
    true_next = np.full(market.exposures[..., :n_factors].shape, np.nan)
    true_next[:-1] = market.exposures[1:, :, :n_factors]
    exposures["True exposures"] = true_next
    rand = random_portfolios(panel.shape[1], 50, seed=seed)
    rows = {}
    series = {name: factor_risk_models(panel, X, window.rows, factor_names=[f"f{j}" for j in range(X.shape[-1])], risk=p.risk)[1]
              for name, X in exposures.items()}
    for name in ["Oracle", *exposures]:
        gmv_var, log_err = [], []
        for t in window.test:
            t_abs = window.rows.start + t
            if name == "Oracle":
                assets = np.flatnonzero(panel.member[t_abs] & np.isfinite(market.specific_var[t_abs + 1]))
                m = _true_model(market, t_abs + 1, assets)
            else:
                m = series[name].model(t)
                if m is None:
                    continue
            truth = _true_model(market, t_abs + 1, m.assets)
            w = m.gmv_weights()
            gmv_var.append(truth.portfolio_variance(w))
            wr = restrict_portfolios(rand, m.assets)
            log_err.append(np.mean(np.abs(0.5 * np.log(m.portfolio_variance(wr) / truth.portfolio_variance(wr)))))
        rows[name] = {"gmv_true_vol": float(np.sqrt(252 * np.mean(gmv_var))), "random_log_vol_error": float(np.mean(log_err)),
                      "n_days": len(gmv_var)}
    return pd.DataFrame(rows).T
