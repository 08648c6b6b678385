"""Table 1 for one market: every model of the study scored by one pipeline, and the paper's claims checked.

:func:`evaluate_market` runs Market, FRM (style factors), SRM (PCA, K and 2K), DRM (K and 2K, every
seed), the untrained-DRM controls and the dense estimators through
:mod:`riskstudy.evaluation.scoring` (factor risk models from
:mod:`riskstudy.risk.factor_model`; GMV and GMV+ re-solved every test day and held for the next
day; bias statistics and QLIKE), then builds Table 2 and the daily series of notebook 21.
:func:`paper_claims` checks the paper's Table 1 claims (:data:`PAPER_CLAIMS`) and training
against the untrained control (:data:`TRAINING_CLAIMS`) on those numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskstudy.evaluation.scoring import (
    ModelEvaluation,
    evaluate_dense_estimator,
    evaluate_factor_model,
    market_row,
    one_blas_thread,
)
from riskstudy.risk.factor_model import EvalWindow


@dataclass
class MarketReport:
    """Everything notebook 21 shows for one market.

    Attributes
    ----------
    table1 : DataFrame
        Rows Market, FRM, SRM, SRM x2, DRM, DRM x2, DRM untrained, DRM x2 untrained (the first
        seed's network at initialisation: the control for training) and the dense estimators; columns ``r2``,
        ``gmv_vol``, ``gmv_long_vol`` (DRM rows: mean over seeds, with ``*_sd`` spreads).
    drm_seeds : DataFrame
        The DRM rows per seed.
    table2 : DataFrame
        Per DRM factor (K = ``drm.n_factors``, first seed): mean |t|, share of days |t| > 2, VIF, lag-1 autocorrelation.
    r2_daily : DataFrame
        Daily test R^2 per factor model (columns).
    factor_returns : DataFrame
        Daily factor returns of the DRM factors over the test window (first seed).
    forecast : DataFrame
        Bias statistics, QLIKE and turnover per model.
    """

    table1: pd.DataFrame
    drm_seeds: pd.DataFrame
    table2: pd.DataFrame
    r2_daily: pd.DataFrame
    factor_returns: pd.DataFrame
    forecast: pd.DataFrame


def drm_input_files(params, models_dir: str | Path) -> list[Path]:
    """The DRM-stage outputs :func:`evaluate_market` reads, in the order it reads them.

    One ``.npz`` of exposures per trained run (K = ``drm.n_factors`` and ``drm.k_double``, every
    seed of ``drm.seeds``), then the untrained control of each K.
    """
    from riskstudy.models.study import run_name, untrained_name

    d, root = params.drm, Path(models_dir)
    ks = (d.n_factors, d.k_double)
    return [root / f"{run_name(k, seed)}.npz" for k in ks for seed in d.seeds] + [root / f"{untrained_name(k)}.npz" for k in ks]


def check_drm_inputs(params, models_dir: str | Path, *, market: str) -> None:
    """Raise ``FileNotFoundError`` naming every missing DRM-stage output and the stage that writes them.

    Called by :func:`evaluate_market` before any computation, so a missing model costs seconds, not
    the FRM and SRM evaluations.
    """
    missing = [f for f in drm_input_files(params, models_dir) if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"evaluate_market({market!r}): {len(missing)} DRM-stage output(s) missing in {Path(models_dir)}: "
            f"{', '.join(f.name for f in missing)}; run `dvc repro drm@{market}` first"
        )


def evaluate_market(params, md, *, models_dir) -> MarketReport:
    """Evaluate Market, FRM, SRM (K and 2K), DRM (K and 2K, every seed), the untrained-DRM controls and the dense estimators.

    Parameters
    ----------
    params : riskstudy.config.Params
    md : riskstudy.data.prepare.MarketData
    models_dir : path of the DRM stage outputs of this market

    Raises
    ------
    FileNotFoundError
        Before any computation, if a trained run or untrained control of the DRM stage is missing
        (:func:`check_drm_inputs`).
    """
    from riskstudy.evaluation.factor_stats import factor_diagnostics
    from riskstudy.features.style import STYLE_FACTORS, style_factors
    from riskstudy.models.study import load_exposures, run_name, untrained_name
    from riskstudy.risk.estimators import pca_exposures

    check_drm_inputs(params, models_dir, market=md.panel.market)
    panel, s, risk, d = md.panel, params.split, params.risk, params.drm
    window = EvalWindow.from_dates(panel, history_start=s.valid_start, test_start=s.test_start, test_end=s.test_end)
    evals: dict[str, ModelEvaluation] = {}
    style = style_factors(panel, md.benchmark, **params.style.model_dump())
    evals["FRM"] = evaluate_factor_model("FRM", panel, style, window, factor_names=list(STYLE_FACTORS), risk=risk)
    for label, k in (("SRM", d.n_factors), ("SRM x2", d.k_double)):
        with one_blas_thread():
            pca = pca_exposures(panel["ret"], k=k, window=risk.srm_window, refit_every=risk.srm_refit_every, mask=panel.member)
        evals[label] = evaluate_factor_model(label, panel, pca, window, factor_names=[f"pc{i + 1}" for i in range(k)], risk=risk)
    seed_rows, drm_first = [], {}
    for label, k in (("DRM", d.n_factors), ("DRM x2", d.k_double)):
        for seed in d.seeds:
            expo = load_exposures(Path(models_dir) / f"{run_name(k, seed)}.npz", panel.dates, panel.instruments)
            names = [f"drm_{i + 1}" for i in range(k)]
            ev = evaluate_factor_model(f"{label} s{seed}", panel, expo, window, factor_names=names, risk=risk)
            seed_rows.append({"model": label, "seed": seed, **ev.table1_row(), **ev.forecast, **{f"turnover_{k_}": v for k_, v in ev.turnover.items()}})
            if seed == d.seeds[0]:
                evals[label] = ev
                drm_first[label] = expo
    for label, k in (("DRM untrained", d.n_factors), ("DRM x2 untrained", d.k_double)):
        expo = load_exposures(Path(models_dir) / f"{untrained_name(k)}.npz", panel.dates, panel.instruments)
        evals[label] = evaluate_factor_model(label, panel, expo, window, factor_names=[f"drm_{i + 1}" for i in range(k)], risk=risk)
    for method in risk.estimators:
        label = {"sample": "Sample cov", "ledoit_wolf": "Ledoit-Wolf", "poet": "POET"}[method]
        evals[label] = evaluate_dense_estimator(label, panel, window, method=method, risk=risk)

    drm_seeds = pd.DataFrame(seed_rows)
    rows = {"Market": market_row(md.benchmark, panel, window)}
    for name, ev in evals.items():
        rows[name] = ev.table1_row()
        if name in ("DRM", "DRM x2"):
            grp = drm_seeds[drm_seeds.model == name]
            for col in ("r2", "gmv_vol", "gmv_long_vol"):
                rows[name][col] = float(grp[col].mean())
                rows[name][f"{col}_sd"] = float(grp[col].std(ddof=1)) if len(grp) > 1 else float("nan")
    table1 = pd.DataFrame(rows).T
    order = ["Market", "FRM", "SRM", "SRM x2", "DRM", "DRM x2"] + [n for n in rows if n not in ("Market", "FRM", "SRM", "SRM x2", "DRM", "DRM x2")]
    table1 = table1.loc[order]

    # Table 2 and Figure 3: the first seed's K-factor DRM
    drm = evals["DRM"]
    k = d.n_factors
    rows_t = window.rows.start + window.test
    test_cs_rows = window.test + 1  # regression rows: returns of t+1 on exposures at t
    names = [f"drm_{i + 1}" for i in range(k)]
    table2 = factor_diagnostics(drm.cs.t_stats[test_cs_rows][:, -k:], drm_first["DRM"][rows_t], names, mask=panel.member[rows_t])
    table2["pct_abs_t_gt_2"] /= 100.0  # fractions, as every metrics file
    table2 = table2.rename(columns={"rank_autocorr": "autocorr"})[["mean_abs_t", "pct_abs_t_gt_2", "vif", "autocorr"]]
    dates = panel.dates[window.rows]
    factor_returns = pd.DataFrame(drm.cs.factor_returns[test_cs_rows][:, -k:], index=dates[test_cs_rows], columns=names)
    r2_daily = pd.DataFrame({n: ev.r2 for n, ev in evals.items() if ev.r2 is not None})
    forecast = pd.DataFrame({n: {**ev.forecast, **{f"turnover_{k_}": v for k_, v in ev.turnover.items()}} for n, ev in evals.items()}).T
    forecast = forecast.drop(columns=["bias_band"])
    return MarketReport(table1, drm_seeds, table2, r2_daily, factor_returns, forecast)


PAPER_CLAIMS: list[tuple[str, str, str, str, str]] = [
    ("DRM explains more variance than FRM", "DRM", "r2", "FRM", "higher"),
    ("DRM explains more variance than SRM", "DRM", "r2", "SRM", "higher"),
    ("DRM x2 explains more variance than DRM", "DRM x2", "r2", "DRM", "higher"),
    ("DRM GMV is less volatile than FRM's", "DRM", "gmv_vol", "FRM", "lower"),
    ("DRM GMV is less volatile than SRM's", "DRM", "gmv_vol", "SRM", "lower"),
    ("DRM x2 GMV is less volatile than DRM's", "DRM x2", "gmv_vol", "DRM", "lower"),
    ("DRM GMV+ is less volatile than SRM's", "DRM", "gmv_long_vol", "SRM", "lower"),
    ("DRM GMV+ is no more volatile than FRM's", "DRM", "gmv_long_vol", "FRM", "lower"),
]

#: Does training beat the network's own initialisation? (trained seeds vs the untrained control)
TRAINING_CLAIMS: list[tuple[str, str, str, str, str]] = [
    (f"{m} explains more variance than its untrained network", m, "r2", f"{m} untrained", "higher")
    for m in ("DRM", "DRM x2")
] + [
    (f"{m} {what} is less volatile than its untrained network's", m, col, f"{m} untrained", "lower")
    for m in ("DRM", "DRM x2") for what, col in (("GMV", "gmv_vol"), ("GMV+", "gmv_long_vol"))
]


def paper_claims(report: MarketReport, claims: list[tuple[str, str, str, str, str]] | None = None) -> pd.DataFrame:
    """Claims about the DRM rows checked on our numbers, seed by seed (default: the paper's Table 1 claims).

    Each claim is ``(text, model, column, other row, "higher" | "lower")``. It *holds* if it
    holds for every DRM seed, *does not hold* if it fails for every seed, and is *mixed*
    otherwise (the difference is within the seed noise). :data:`TRAINING_CLAIMS` checks
    trained DRM against its untrained control.
    """
    t1, seeds = report.table1, report.drm_seeds
    rows = []
    for text, model, col, other, better in PAPER_CLAIMS if claims is None else claims:
        ours = seeds.loc[seeds.model == model, col].to_numpy(dtype=float)
        ref = float(t1.loc[other, col])
        ok = ours > ref if better == "higher" else ours < ref
        verdict = "holds" if ok.all() else ("does not hold" if not ok.any() else f"mixed ({ok.sum()}/{len(ok)} seeds)")
        rows.append({"claim": text, "ours": f"{100 * np.mean(ours):.2f}% vs {100 * ref:.2f}%", "verdict": verdict})
    return pd.DataFrame(rows).set_index("claim")
