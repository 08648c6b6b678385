"""The one pipeline that scores every registered model, and the assembly of Table 1.

A registered model (:class:`ModelSpec`, :mod:`riskstudy.evaluation.registry`) contributes one or
more :class:`Run` s: a Table-1 row, or one seed of a row. :func:`score_model` takes every run of
one model through the same steps on the same days (:mod:`riskstudy.evaluation.scoring`):

1. exposures ``X_t`` from the model's :class:`~riskstudy.factors.base.FactorModel` (fitted on the
   training rows), written to the exposure store (one file per market, model and run);
2. cross-sectional regression of the next day's returns, factor covariance and specific risk,
   ``Sigma_t = X F X' + D`` (:mod:`riskstudy.risk.factor_model`); dense estimators skip to 3;
3. GMV and long-only GMV+ re-solved every test day and held for the next day; bias statistics
   and QLIKE; turnover;
4. per-factor statistics over the test days: mean ``|t|``, share ``|t| > 2``, VIF, lag-1 rank
   autocorrelation (Table 2 for the row ``evaluation.table2_model``).

Each model is its own DVC stage per market (``python -m riskstudy.studies.score``), writing
``<scores_dir>/<market>/<model>.pkl``; :func:`assemble` turns the score files of
``evaluation.models`` into a :class:`MarketReport` (notebook 21), so adding a model runs only
that model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskstudy import paths
from riskstudy.config import Params
from riskstudy.data.market import MarketData
from riskstudy.evaluation.factor_stats import factor_diagnostics
from riskstudy.evaluation.scoring import (
    EvalWindow,
    ModelEvaluation,
    evaluate_dense_estimator,
    evaluate_factor_model,
    market_row,
    one_blas_thread,
)
from riskstudy.factors.base import ModelSpec, Run, StoredExposures
from riskstudy.factors.store import save_exposures

log = logging.getLogger(__name__)

TABLE1_COLUMNS = ("r2", "gmv_vol", "gmv_long_vol")


@dataclass
class RunScore:
    """The scores of one :class:`Run` (JSON-ready dicts and test-window series).

    Attributes
    ----------
    model, label, group : str
        Registry key, run label and Table-1 row.
    seed : int or None
    table1 : dict
        ``r2`` (None for dense estimators), ``gmv_vol``, ``gmv_long_vol`` (annualised).
    forecast : dict
        Bias statistics (with their 95% ``bias_band``), QLIKE and ``turnover_gmv``, ``turnover_gmv_long``.
    r2 : Series or None
        Daily R^2 of the returns of ``t + 1`` on the exposures at ``t``, indexed by ``t`` (test days).
    factor_returns : DataFrame or None
        ``(T_test, K)`` returns of the model's own factors (the intercept and sectors left out).
    diagnostics : DataFrame or None
        Per factor: ``mean_abs_t``, ``pct_abs_t_gt_2`` (fraction), ``vif``, ``autocorr``.
    """

    model: str
    label: str
    group: str
    seed: int | None
    table1: dict
    forecast: dict
    r2: pd.Series | None = None
    factor_returns: pd.DataFrame | None = None
    diagnostics: pd.DataFrame | None = None


def eval_window(params: Params, md: MarketData) -> EvalWindow:
    """History from the validation start (the risk model's burn-in), test decision days in ``split.test_*``."""
    s = params.split
    return EvalWindow.from_dates(md.panel, history_start=s.valid_start, test_start=s.test_start, test_end=s.test_end)


def _split_rows(params: Params, md: MarketData, name: str) -> np.ndarray:
    return np.arange(md.panel.shape[0])[md.panel.date_slice(*params.split.window(name))]


def exposures_path(params: Params, market: str, model: str, label: str) -> Path:
    """The exposure-store file of a run: ``<exposures_dir>/<market>/<model>/<label>.npz`` (spaces -> ``_``)."""
    return paths.resolve(params.paths.exposures_dir) / market / model / f"{label.replace(' ', '_')}.npz"


def scores_path(params: Params, market: str, model: str) -> Path:
    """``<scores_dir>/<market>/<model>.pkl``: what the ``score_<model>`` stage writes."""
    return paths.resolve(params.paths.scores_dir) / market / f"{model}.pkl"


def _factor_statistics(ev: ModelEvaluation, md: MarketData, exposures: np.ndarray, window: EvalWindow,
                       names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-factor statistics and factor returns of the model's own ``K`` factors over the test days."""
    k = len(names)
    rows_t = window.rows.start + window.test  # decision days t (panel rows)
    cs_rows = window.test + 1  # regression rows: returns of t + 1 on exposures at t
    diag = factor_diagnostics(ev.cs.t_stats[cs_rows][:, -k:], exposures[rows_t], names, mask=md.panel.member[rows_t])
    diag["pct_abs_t_gt_2"] /= 100.0  # fractions, as every metrics file
    diag = diag.rename(columns={"rank_autocorr": "autocorr"})[["mean_abs_t", "pct_abs_t_gt_2", "vif", "autocorr"]]
    dates = md.panel.dates[window.rows]
    fr = pd.DataFrame(ev.cs.factor_returns[cs_rows][:, -k:], index=dates[cs_rows], columns=names)
    return diag, fr


def score_run(run: Run, *, model: str, params: Params, md: MarketData, window: EvalWindow,
              store: Callable[[Run], Path | None] | None = None) -> RunScore:
    """Score one run (steps 1-4 of the module docstring); ``store(run)`` gives its exposure-store file (or None)."""
    panel = md.panel
    if run.dense_method is not None:
        ev = evaluate_dense_estimator(run.label, panel, window, method=run.dense_method, dense=params.dense, risk=params.risk)
        return RunScore(model, run.label, run.group, run.seed, ev.table1_row(), _forecast_row(ev))
    fm = run.factor_model()
    with one_blas_thread():
        fm.fit(md, train_rows=_split_rows(params, md, "train"), valid_rows=_split_rows(params, md, "valid"))
        rows = np.arange(window.rows.start, panel.shape[0])
        expo = fm.full_exposures(md, rows=rows)
    if expo.shape[-1] != fm.n_factors:
        raise ValueError(f"{run.label}: exposures have {expo.shape[-1]} factors but {fm.n_factors} names")
    target = None if store is None or isinstance(fm, StoredExposures) else store(run)
    if target is not None:
        save_exposures(target, expo[rows], rows=rows, dates=panel.dates, instruments=panel.instruments, names=fm.names_)
    ev = evaluate_factor_model(run.label, panel, expo, window, factor_names=fm.names_, risk=params.risk)
    diag, fr = _factor_statistics(ev, md, expo, window, fm.names_)
    return RunScore(model, run.label, run.group, run.seed, ev.table1_row(), _forecast_row(ev), ev.r2, fr, diag)


def _forecast_row(ev: ModelEvaluation) -> dict:
    return {**ev.forecast, **{f"turnover_{k}": v for k, v in ev.turnover.items()}}


def check_required(spec: ModelSpec, params: Params, market: str) -> None:
    """Raise ``FileNotFoundError`` naming every missing input of ``spec`` and the stage that writes it."""
    if spec.required is None:
        return
    missing = [f for f in spec.required(params, market) if not Path(f).is_file()]
    if missing:
        where = Path(missing[0]).parent
        raise FileNotFoundError(
            f"score {spec.key!r} ({market}): {len(missing)} input(s) missing in {where}: "
            f"{', '.join(Path(f).name for f in missing)}; run `dvc repro {spec.trained_by}@{market}` first"
        )


def score_model(spec: ModelSpec, params: Params, md: MarketData, *, market: str, write_exposures: bool = True) -> list[RunScore]:
    """Every run of ``spec`` on ``market`` through the one pipeline (missing inputs fail first, in seconds)."""
    check_required(spec, params, market)
    window = eval_window(params, md)
    store = (lambda run: exposures_path(params, market, spec.key, run.label)) if write_exposures else None
    runs = spec.runs(params, market)
    log.info("scoring %s on %s: %d run(s)", spec.key, market, len(runs))
    return [score_run(run, model=spec.key, params=params, md=md, window=window, store=store) for run in runs]


def save_scores(scores: list[RunScore], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.to_pickle(scores, path)
    return path


def load_scores(path: str | Path, *, model: str) -> list[RunScore]:
    """The score file of ``model``; ``FileNotFoundError`` names the stage to run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no scores of {model!r} at {path}: run its stage (`dvc repro score_{model}`)")
    return pd.read_pickle(path)


@dataclass
class MarketReport:
    """Everything notebook 21 shows for one market.

    Attributes
    ----------
    table1 : DataFrame
        Rows: Market, then every group of the scored models in ``evaluation.models`` order;
        columns ``r2``, ``gmv_vol``, ``gmv_long_vol``. Rows with several seeds hold the mean over
        seeds and ``*_sd`` spreads.
    seeds : DataFrame
        One row per seed run of a multi-seed row (``model`` = the row), Table-1 and forecast columns.
    table2 : DataFrame
        Per-factor statistics of ``evaluation.table2_model`` (its first seed).
    r2_daily : DataFrame
        Daily test R^2 per factor-model row (first seed).
    factor_returns : DataFrame
        Daily test factor returns of ``evaluation.table2_model`` (first seed).
    forecast : DataFrame
        Bias statistics, QLIKE and turnover per row (first seed).
    """

    table1: pd.DataFrame
    seeds: pd.DataFrame
    table2: pd.DataFrame
    r2_daily: pd.DataFrame
    factor_returns: pd.DataFrame
    forecast: pd.DataFrame
    runs: list[RunScore] = field(default_factory=list)


def assemble(scores: list[RunScore], *, md: MarketData, params: Params) -> MarketReport:
    """Table 1, the seed table, Table 2, daily R^2, factor returns and forecast quality from run scores.

    ``scores`` are in display order (model by model, runs in their registered order).
    """
    window = eval_window(params, md)
    groups: dict[str, list[RunScore]] = {}
    for s in scores:
        groups.setdefault(s.group, []).append(s)
    seeded = {g: runs for g, runs in groups.items() if any(s.seed is not None for s in runs)}
    seeds = pd.DataFrame([{"model": g, "seed": s.seed, **s.table1, **s.forecast} for g, runs in seeded.items() for s in runs])
    rows: dict[str, dict] = {"Market": market_row(md.benchmark, md.panel, window)}
    for g, runs in groups.items():
        rows[g] = dict(runs[0].table1)
        if g in seeded:
            grp = seeds[seeds.model == g]
            for col in TABLE1_COLUMNS:
                rows[g][col] = float(grp[col].mean())
                rows[g][f"{col}_sd"] = float(grp[col].std(ddof=1)) if len(grp) > 1 else float("nan")
    table1 = pd.DataFrame(rows).T
    first = {g: runs[0] for g, runs in groups.items()}
    target = params.evaluation.table2_model
    t2 = first.get(target)
    table2 = t2.diagnostics if t2 is not None and t2.diagnostics is not None else pd.DataFrame()
    factor_returns = t2.factor_returns if t2 is not None and t2.factor_returns is not None else pd.DataFrame()
    r2_daily = pd.DataFrame({g: s.r2 for g, s in first.items() if s.r2 is not None})
    forecast = pd.DataFrame({g: s.forecast for g, s in first.items()}).T.drop(columns=["bias_band"], errors="ignore")
    return MarketReport(table1, seeds, table2, r2_daily, factor_returns, forecast, list(scores))


def market_report(params: Params, md: MarketData, *, market: str) -> MarketReport:
    """:func:`assemble` of the score files of ``evaluation.models`` for ``market``."""
    from riskstudy.evaluation.registry import get

    scores: list[RunScore] = []
    for key in params.evaluation.models:
        get(key)  # unknown keys fail here, naming evaluation.models
        scores += load_scores(scores_path(params, market, key), model=key)
    return assemble(scores, md=md, params=params)
