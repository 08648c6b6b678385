"""One evaluation pipeline for every factor model (Market, FRM, SRM, DRM, and later sections).

For a model given by daily exposures ``X_t`` (known at the close of ``t``):

1. cross-sectional WLS of the returns of ``t + 1`` on ``[country, sectors, X_t]``
   (:func:`riskstudy.risk.regression.cross_sectional_regression`) -> factor
   returns, t-statistics, R^2;
2. factor covariance (EWMA, VRA) and specific variance -> ``Sigma_t = X F X' + D``
   forecasting day ``t + 1`` (kept in factor form);
3. GMV (closed form through Woodbury) and long-only GMV+ (CVXPY, compiled once
   per universe) portfolios decided at ``t`` and held over ``t + 1``;
4. risk-forecast quality: bias statistics and QLIKE.

Dense estimators (Ledoit-Wolf, POET; the sample covariance only where its window is longer
than the universe, since otherwise it is singular) go through the same portfolio and forecast
steps with an ``N x N`` covariance (unavoidable for them). Every row of Table 1 uses one
rebalancing rule: GMV and GMV+ are re-solved every test day and held for the next day only.

All linear algebra here is on ``N ~ 300`` matrices, where multi-threaded OpenBLAS costs more
than it gains (measured 2.5-3x slower on 2 cores for the dense estimators), so the evaluation
functions run with one BLAS thread (:func:`one_blas_thread`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from riskstudy.config import RiskConfig
from riskstudy.data.panel import Panel
from riskstudy.evaluation.forecast import bias_band, bias_statistic, qlike, random_portfolios
from riskstudy.features.drm_inputs import trailing_mean
from riskstudy.portfolio.backtest import backtest, embed
from riskstudy.portfolio.metrics import portfolio_metrics
from riskstudy.risk.covariance import RiskModelSeries, build_risk_models
from riskstudy.risk.estimators import trailing_covariance
from riskstudy.risk.regression import CrossSectionResult, cross_sectional_regression, design_matrix, lagged, regression_weights

log = logging.getLogger(__name__)

ANN = np.sqrt(252.0)


def one_blas_thread() -> threadpool_limits:
    """Context manager limiting BLAS (OpenBLAS/MKL used by NumPy/SciPy) to one thread."""
    return threadpool_limits(limits=1, user_api="blas")


@dataclass
class EvalWindow:
    """Rows of the panel used by the evaluation: ``rows`` (history for factor returns and
    covariance burn-in) and the test rows ``test`` (decision days; returns realised the next day)."""

    rows: slice
    test: np.ndarray

    @classmethod
    def from_dates(cls, panel: Panel, *, history_start, test_start, test_end) -> "EvalWindow":
        rows = panel.date_slice(history_start, None)
        d = panel.dates[rows]
        # decision days t in [test_start, test_end) so that t + 1 <= test_end
        test = np.flatnonzero((d >= pd.Timestamp(test_start)) & (d < pd.Timestamp(test_end)))
        test = test[test + 1 < len(d)]
        return cls(rows, test)


@dataclass
class ModelEvaluation:
    """Evaluation of one model over an :class:`EvalWindow` (arrays are window-relative)."""

    name: str
    r2: pd.Series | None  # daily R^2 of the regression of day t+1 returns on exposures at t
    cs: CrossSectionResult | None
    gmv_returns: pd.Series
    gmv_long_returns: pd.Series
    forecast: dict  # bias statistics and QLIKE (see _portfolio_runs)
    turnover: dict[str, float] = field(default_factory=dict)

    def table1_row(self) -> dict:
        return {
            "r2": None if self.r2 is None else float(self.r2.mean()),
            "gmv_vol": float(self.gmv_returns.std() * ANN),
            "gmv_long_vol": float(self.gmv_long_returns.std() * ANN),
        }


def size_and_weights(panel: Panel, *, size_window: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Size proxy (trailing mean dollar volume, ``(T, N)``) and regression weights ``sqrt(size)`` clipped at q95."""
    size = trailing_mean(panel["dollar_volume"], size_window, min_periods=1)
    return size, regression_weights(size, panel.member & np.isfinite(size))


def regress(
    panel: Panel, exposures: np.ndarray, window: EvalWindow, *, names: list[str], use_sectors: bool = True
) -> tuple[CrossSectionResult, np.ndarray, np.ndarray]:
    """Regression of returns on the previous day's exposures, restricted to the window rows.

    Returns the regression, the unlagged full design ``(T_w, N, P)`` and the sector codes used.
    """
    r = window.rows
    codes, labels = panel.sector_codes()
    sectors = codes if (use_sectors and labels) else None
    _, w = size_and_weights(panel)
    X = exposures[r]
    Xl = lagged(X)
    mask = panel.member[r] & lagged(panel.member[r].astype(float)).astype(bool) & np.isfinite(panel["ret"][r])
    mask &= np.isfinite(Xl).all(-1)
    cs = cross_sectional_regression(
        panel["ret"][r], np.nan_to_num(Xl), weights=lagged(w[r]) * mask, mask=mask, sectors=sectors,
        factor_names=names, sector_names=labels if sectors is not None else None,
    )
    n_sec = len(labels) if sectors is not None else None
    design = design_matrix(X, sectors, n_sectors=n_sec)
    design[~np.isfinite(X).all(-1)] = np.nan
    return cs, design, sectors


def _portfolio_runs(
    window: EvalWindow,
    returns: np.ndarray,
    model_at: Callable[[int], object],
    *,
    long_solver: Callable[[object], np.ndarray] | None,
    n_random: int,
    seed: int,
    desc: str,
) -> tuple[pd.Series, pd.Series, dict, dict]:
    """GMV / GMV+ backtests and forecast quality for the daily models ``model_at(t)``.

    Portfolios (GMV and, with ``long_solver``, GMV+) are re-solved every test day ``t``
    and earn the returns of ``t + 1`` only: one rule for every model. Forecast
    quality compares each day's predicted variance ``w' Sigma_t w`` of the GMV
    portfolio and of ``n_random`` fixed random long-only portfolios with the realised
    ``(w' r_{t+1})^2``.
    """
    T, N = returns.shape
    test = window.test
    rand = random_portfolios(N, n_random, seed=seed) if n_random else np.zeros((N, 0))
    w_gmv: dict[int, np.ndarray] = {}
    w_long: dict[int, np.ndarray] = {}
    realised = np.full((T, 1 + n_random), np.nan)
    variance = np.full((T, 1 + n_random), np.nan)
    for t in tqdm(test, desc=desc, leave=False, disable=None):
        m = model_at(t)
        if m is None:
            continue
        w = m.gmv_weights()
        w_gmv[t] = embed(w, m.assets, N)
        if long_solver is not None:
            w_long[t] = embed(long_solver(m), m.assets, N)
        wr = rand[m.assets]
        W = np.column_stack([w, wr / np.maximum(wr.sum(0, keepdims=True), 1e-12)])
        realised[t] = np.nan_to_num(returns[t + 1, m.assets]) @ W
        variance[t] = m.portfolio_variance(W)
    start, end = int(test[0]), int(test[-1]) + 1
    bt = backtest(lambda t: w_gmv.get(t, np.zeros(N)), returns, start=start, end=end)
    bt_long = backtest(lambda t: w_long.get(t, np.zeros(N)), returns, start=start, end=end)
    days = test[np.isin(test, list(w_gmv))]
    g = pd.Series(bt.returns[days + 1])
    gl = pd.Series(bt_long.returns[days + 1] if long_solver is not None else np.nan, index=g.index)
    bias = bias_statistic(realised[days], variance[days])
    lo, hi = bias_band(len(days))
    forecast = {
        "bias_gmv": float(bias[0]),
        "bias_random_mean": float(np.nanmean(bias[1:])) if n_random else float("nan"),
        "random_in_band": float(np.mean((bias[1:] >= lo) & (bias[1:] <= hi))) if n_random else float("nan"),
        "qlike_gmv": float(qlike(realised[days, 0], variance[days, 0])),
        "qlike_random": float(np.nanmean(qlike(realised[days, 1:], variance[days, 1:]))) if n_random else float("nan"),
        "bias_band": [lo, hi],
        "n_days": int(len(days)),
    }
    turnover = {"gmv": float(bt.turnover[test].mean()), "gmv_long": float(bt_long.turnover[test].mean())}
    return g, gl, forecast, turnover


def risk_model_series(
    panel: Panel, exposures: np.ndarray, window: EvalWindow, *, factor_names: list[str], risk: RiskConfig, use_sectors: bool = True
) -> tuple[CrossSectionResult, RiskModelSeries]:
    """Steps 1-2 of the pipeline: the regression and the daily factor-form risk models over the window rows."""
    cs, design, _ = regress(panel, exposures, window, names=factor_names, use_sectors=use_sectors)
    series = build_risk_models(
        cs, design, mask=panel.member[window.rows],
        corr_half_life=risk.corr_half_life, vol_half_life=risk.vol_half_life, vra_half_life=risk.vra_half_life,
        newey_west_lags=risk.newey_west_lags, eigen_adjust_sims=100 if risk.eigen_adjust else 0,
        specific_half_life=risk.specific_half_life, specific_shrinkage=risk.specific_shrinkage,
        min_history=risk.min_history, seed=risk.seed,
    )
    return cs, series


def evaluate_factor_model(
    name: str,
    panel: Panel,
    exposures: np.ndarray,
    window: EvalWindow,
    *,
    factor_names: list[str],
    risk: RiskConfig,
    use_sectors: bool = True,
    long_only: bool = True,
) -> ModelEvaluation:
    """Full pipeline for a factor model with exposures ``(T, N, K)`` on the panel calendar.

    ``long_only=False`` skips the CVXPY GMV+ backtest (its returns are then NaN).
    """
    from riskstudy.portfolio.optimize import GMVLongOnly  # cvxpy is slow to import; long_only=False never needs it

    log.info("evaluating %s (%d factors)", name, exposures.shape[-1])
    r = window.rows
    with one_blas_thread():
        cs, series = risk_model_series(panel, exposures, window, factor_names=factor_names, risk=risk, use_sectors=use_sectors)
        # one compiled GMV+ problem for the whole test window: as many slots as the largest daily universe
        solver = GMVLongOnly(long_only=True, capacity=max(1, int(panel.member[r][window.test].sum(1).max())))
        g, gl, fc, to = _portfolio_runs(
            window, panel["ret"][r], series.model, long_solver=solver.solve if long_only else None,
            n_random=risk.n_random_portfolios, seed=risk.seed, desc=name,
        )
    dates = panel.dates[r]
    # R^2 of day t+1 returns on exposures at t, reported at the decision day t
    r2 = pd.Series(cs.r2[window.test + 1], index=dates[window.test], name=name)
    return ModelEvaluation(name, r2, cs, g, gl, fc, to)


def evaluate_dense_estimator(name: str, panel: Panel, window: EvalWindow, *, method: str, risk: RiskConfig) -> ModelEvaluation:
    """Trailing-window dense covariance estimators through the same portfolio/forecast steps.

    GMV and GMV+ are re-solved every test day, as for the factor models; the dense long-only
    problem (``N x N``) is rebuilt each day (~90-130 ms at ``N ~ 300``, one BLAS thread).
    """
    from riskstudy.portfolio.optimize import gmv_long_only_dense

    r = window.rows
    ret = panel["ret"][r]
    mask = panel.member[r]
    kw = {"n_factors": risk.poet_k} if method == "poet" else {}

    def model_at(t: int):
        return trailing_covariance(ret, t, method=method, window=risk.estimator_window, mask=mask, **kw)

    with one_blas_thread():
        g, gl, fc, to = _portfolio_runs(
            window, ret, model_at,
            long_solver=lambda m: gmv_long_only_dense(m.covariance()), n_random=risk.n_random_portfolios,
            seed=risk.seed, desc=name,
        )
    return ModelEvaluation(name, None, None, g, gl, fc, to)


def market_row(benchmark: pd.Series, panel: Panel, window: EvalWindow) -> dict:
    """The Market row of Table 1: the benchmark's realised volatility over the test days (no R^2)."""
    d = panel.dates[window.rows][window.test + 1]
    vol = float(benchmark.reindex(d).std() * ANN)
    return {"r2": None, "gmv_vol": vol, "gmv_long_vol": vol}


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
    from riskstudy.factors.drm_runs import run_name, untrained_name

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
    from riskstudy.factors.drm_runs import load_exposures, run_name, untrained_name
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
