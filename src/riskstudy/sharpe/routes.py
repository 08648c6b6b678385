r"""The covariance route of the Sharpe section: the covariance network and the classical risk models, as daily forecasts.

* :func:`train_covnets` (notebook 51): the covariance-prediction network
  (:class:`~riskstudy.sharpe.covnet_task.CovNetTask`) for every seed of ``sharpe.covnet.seeds``
  through the one training loop, each beside its untrained self (same seed, no step); their daily
  :class:`~riskstudy.risk.covariance.FactorRiskModel` :math:`V_t = X_t F_t X_t' + \mathrm{diag}(\Delta_t)`
  on every test row.
* :func:`classical_models`: the same rows' forecasts of the study's other risk models on the
  section's 50 stocks, each as exposures through the harness's factor regression and covariance
  (:func:`riskstudy.risk.factor_model.factor_risk_models`, ``params.risk``; no sectors): FRM (the
  style exposures), SRM (PCA of trailing returns, ``params.srm``) and the Deep Risk Model
  (:class:`~riskstudy.factors.drm_runs.DeepRiskFactorModel` with the ``drm`` section, trained on the
  section's training rows with early stopping on its validation rows, one network per seed of
  ``drm.seeds``, each beside its untrained self), all with K = ``sharpe.covnet.n_factors``; and the
  trailing Ledoit-Wolf covariance of the backtests (:func:`riskstudy.sharpe.strategies.ledoit_wolf_model`).
* :func:`route_tables`: every route's daily forecasts, the input of the harness's scoring of
  forecast tables (:func:`riskstudy.evaluation.tables.score_risk_tables`: daily GMV / GMV+ and
  the bias statistic and QLIKE; notebook 51).

A forecast at row ``t`` uses data up to the close of ``t`` only; the returns of ``t + 1`` are its outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskstudy.config import Params, RiskConfig
from riskstudy.data.market import MarketData
from riskstudy.data.panel import Panel
from riskstudy.factors.drm import factor_names
from riskstudy.factors.drm_runs import DeepRiskFactorModel
from riskstudy.factors.srm import pca_exposures
from riskstudy.features.drm_inputs import DRMDataset
from riskstudy.features.style import STYLE_FACTORS
from riskstudy.nn.drm_train import members_per_day
from riskstudy.nn.loop import fit, seed_all
from riskstudy.nn.parallel import map_fits, resolve_workers
from riskstudy.risk.factor_model import factor_risk_models
from riskstudy.risk.model import RiskModel
from riskstudy.sharpe.covnet_task import CovNetTask, panel_of, prior_exposures, risk_models
from riskstudy.sharpe.data import SharpeInputs
from riskstudy.sharpe.inputs import market_dir, rows_of, section
from riskstudy.sharpe.strategies import ledoit_wolf_model
from riskstudy.stats import mean_ci

log = logging.getLogger(__name__)

#: Route names of the covariance network, the Deep Risk Model and their untrained controls.
COVNET, COVNET_UNTRAINED = "CovNet", "untrained CovNet"
DRM, DRM_UNTRAINED = "DRM", "untrained DRM"
#: Routes with one table per seed (reported as seed mean and interval).
SEEDED_ROUTES = frozenset({COVNET, COVNET_UNTRAINED, DRM, DRM_UNTRAINED})

RiskTable = dict[int, RiskModel | None]
#: ``{route: [table per seed]}``.
Routes = dict[str, list[RiskTable]]


@dataclass
class CovNetRun:
    """One trained covariance network and its untrained self: daily risk models on the test rows.

    ``valid_score``: the negative validation loss (ZCA-whitening plus specific-variance terms,
    higher is better) of the best epoch; ``valid_score_untrained`` the same seed's initial weights.
    """

    seed: int
    best_epoch: int
    history: pd.DataFrame
    valid_score: float
    valid_score_untrained: float
    models: RiskTable
    models_untrained: RiskTable
    seconds: float
    environment: dict = field(default_factory=dict)

    @property
    def strategy(self) -> str:
        """The route's name (for the figures shared with the direct networks)."""
        return COVNET


def covnet_task(params: Params, x: SharpeInputs, *, prior: np.ndarray, size: np.ndarray) -> CovNetTask:
    """The :class:`CovNetTask` of ``sharpe.covnet`` on ``x``'s training and validation rows."""
    cfg = section(params)
    c, rows = cfg.covnet, rows_of(cfg, x)
    return CovNetTask(x, prior, size, train_days=rows.train, valid_days=rows.valid, n_factors=c.n_factors,
                      hidden_size=c.hidden_size, num_layers=c.num_layers, lr=c.lr, batch_days=c.batch_days,
                      day_stride=c.day_stride, device=cfg.resolved_device())


def train_covnets(params: Params, market: str, x: SharpeInputs, *,
                  progress: Callable[[str], object] = log.info) -> list[CovNetRun]:
    """Every seed of ``sharpe.covnet`` (module docstring), on ``sharpe.workers`` processes of one thread each
    (:func:`riskstudy.nn.parallel.map_fits`); checkpoints under the market's data dir."""
    cfg = section(params)
    jobs = [(params, market, x, seed) for seed in cfg.covnet.seeds]

    def done(_: int, r: CovNetRun) -> None:
        progress(f"{market} CovNet seed {r.seed}: best epoch {r.best_epoch}, validation score {r.valid_score:.3f} "
                 f"(untrained {r.valid_score_untrained:.3f}), {r.seconds:.0f} s")

    return map_fits(fit_covnet, jobs, workers=resolve_workers(cfg.workers, len(jobs), cfg.resolved_device()),
                    on_done=done)


def fit_covnet(params: Params, market: str, x: SharpeInputs, seed: int) -> CovNetRun:
    """One seed of :func:`train_covnets`: the trained network and its untrained self, as daily risk models."""
    cfg = section(params)
    c = cfg.covnet
    prior, size = prior_exposures(x)
    days = rows_of(cfg, x).test
    t0 = time.perf_counter()
    task = covnet_task(params, x, prior=prior, size=size)
    seed_all(seed)
    untrained = task.build_model()
    valid0 = task.validate(untrained, None)["score"]
    models0 = risk_models(untrained, task, days)
    ck = market_dir(params, market) / "checkpoints" / f"CovNet_{seed}.pt"
    res = fit(task, max_epochs=c.max_epochs, patience=c.patience, seed=seed, checkpoint_path=ck)
    valid = task.validate(res.model, None)["score"]
    return CovNetRun(seed, res.best_epoch, res.history, valid, valid0, risk_models(res.model, task, days),
                     models0, time.perf_counter() - t0, res.environment or {})


def covnet_table(runs: list[CovNetRun]) -> pd.DataFrame:
    """Validation score trained and untrained (mean and interval over seeds), the gain, best epochs, seconds."""
    tr, un = mean_ci([r.valid_score for r in runs]), mean_ci([r.valid_score_untrained for r in runs])
    gain = mean_ci([r.valid_score - r.valid_score_untrained for r in runs])
    return pd.DataFrame([{"route": COVNET, "seeds": len(runs), "valid score": tr["mean"], "lo": tr["lo"], "hi": tr["hi"],
                          "untrained": un["mean"], "gain": gain["mean"], "gain lo": gain["lo"], "gain hi": gain["hi"],
                          "best epochs": ", ".join(str(r.best_epoch) for r in runs),
                          "seconds": float(np.sum([r.seconds for r in runs]))}]).set_index("route")


def market_of(x: SharpeInputs) -> MarketData:
    """The inputs as the harness's :class:`~riskstudy.data.market.MarketData` (the index proxy as benchmark)."""
    return MarketData(panel=panel_of(x), benchmark=pd.Series(x.benchmark, index=x.dates), benchmark_name="index proxy")


def _tables(panel: Panel, exposures: np.ndarray, days: np.ndarray, *, names: list[str], risk: RiskConfig) -> RiskTable:
    """Daily factor risk models of ``exposures`` (T, N, K) through the harness's regression and covariance."""
    _, series = factor_risk_models(panel, exposures, slice(0, panel.shape[0]), factor_names=names, risk=risk,
                                   use_sectors=False)
    return {int(t): series.model(int(t)) for t in days}


def dense_start(counts: np.ndarray, rows: np.ndarray, *, least: int, tolerance: float = 0.02) -> int:
    """The first of ``rows`` with ``least`` stocks from which at most ``tolerance`` of the remaining rows have fewer.

    ``counts (len(rows),)``: stocks usable on each of ``rows``. The DRM refuses a training window in which more
    than 5% of the days cannot carry a regression on K factors; a universe picked in 2016 thins out
    going back in time (China: stocks listed or added later), so its DRM trains from here on.
    """
    bad = (np.asarray(counts) < least).astype(float)
    tail_share = np.cumsum(bad[::-1])[::-1] / np.arange(len(rows), 0, -1)
    ok = (tail_share <= tolerance) & (bad == 0)
    if not ok.any():
        raise ValueError(f"no training row from which {1 - tolerance:.0%} of the days have {least} stocks")
    return int(rows[np.argmax(ok)])


def drm_routes(params: Params, x: SharpeInputs, days: np.ndarray, *,
               progress: Callable[[str], object] = log.info) -> tuple[Routes, pd.DataFrame]:
    """The Deep Risk Model's daily forecasts on the rows ``days``, trained and untrained, per seed of ``drm.seeds``.

    Training starts at :func:`dense_start` (at least K + 2 stocks a day); exposures are predicted
    from ``drm_history`` rows before ``days[0]`` (the smoothing burn-in and the history of the
    factor covariance) and go through :func:`factor_risk_models`.

    Returns
    -------
    routes : dict
        ``{"DRM": [table per seed], "untrained DRM": [...]}``.
    fits : DataFrame
        Per seed: first training day, best epoch, validation R^2 of the best epoch and of the
        initialisation, seconds.
    """
    cfg = section(params)
    rows = rows_of(cfg, x)
    md = market_of(x)
    k = cfg.covnet.n_factors
    start = max(0, int(days[0]) - cfg.drm_history)
    predict = np.arange(start, x.shape[0])
    f = params.features  # the DRM's own inputs on these stocks, to count the stocks it can use each day
    ds = DRMDataset(md.panel, lags=f.lags, ma_window=f.ma_window, horizon=f.horizon, size_window=f.size_window, clip=f.clip,
                    norm_days=rows.train)
    usable = members_per_day(ds, rows.train, batch_days=params.drm.batch_days)
    first = dense_start(usable, rows.train, least=k + 2)
    train = rows.train[rows.train >= first]
    jobs = [(params, md, train, rows.valid, predict, days, seed) for seed in params.drm.seeds]

    def done(_: int, r: tuple[RiskTable, RiskTable, dict]) -> None:
        rec = r[2]
        progress(f"DRM seed {rec['seed']}: best epoch {rec['best_epoch']}, validation R^2 {rec['valid_r2']:.4f} "
                 f"(untrained {rec['valid_r2_untrained']:.4f}), {rec['seconds']:.0f} s")

    res = map_fits(fit_drm_route, jobs, workers=resolve_workers(cfg.workers, len(jobs), params.drm.resolved_device()),
                   on_done=done)
    out: Routes = {DRM: [r[0] for r in res], DRM_UNTRAINED: [r[1] for r in res]}
    fits = [dict(r[2], train_start=str(x.dates[first].date())) for r in res]
    return out, pd.DataFrame(fits)[["seed", "train_start", "best_epoch", "valid_r2", "valid_r2_untrained",
                                    "seconds"]].set_index("seed")


def fit_drm_route(params: Params, md: MarketData, train: np.ndarray, valid: np.ndarray, predict: np.ndarray,
                  days: np.ndarray, seed: int) -> tuple[RiskTable, RiskTable, dict]:
    """One seed of :func:`drm_routes`: the trained and the untrained DRM's daily risk models and the fit's record."""
    k = section(params).covnet.n_factors
    t0 = time.perf_counter()
    tables, fit_row = [], {"seed": seed}
    for trained in (True, False):
        m = DeepRiskFactorModel(params, n_factors=k, seed=seed, trained=trained).fit(md, train_rows=train,
                                                                                      valid_rows=valid)
        expo = np.full((*md.panel.shape, k), np.nan)
        expo[predict] = m.exposures(md, rows=predict)
        tables.append(_tables(md.panel, expo, days, names=factor_names(k), risk=params.risk))
        h = m.fit_.history
        if trained:
            fit_row.update(best_epoch=m.fit_.best_epoch,
                           valid_r2=float(h.loc[h.epoch == m.fit_.best_epoch, "valid_r2"].iloc[0]))
        else:
            fit_row["valid_r2_untrained"] = float(h["valid_r2"].iloc[0])
    fit_row["seconds"] = time.perf_counter() - t0
    return tables[0], tables[1], fit_row


def classical_models(params: Params, x: SharpeInputs, days: np.ndarray) -> Routes:
    """FRM, SRM and Ledoit-Wolf forecasts ``{name: [{row: RiskModel or None}]}`` of the rows ``days`` (module docstring)."""
    cfg = section(params)
    panel = panel_of(x)
    prior, _ = prior_exposures(x)
    k = cfg.covnet.n_factors
    srm_x = pca_exposures(x.returns, k=k, window=params.srm.window, refit_every=params.srm.refit_every, mask=panel.member)
    lw = ledoit_wolf_model(cfg.cov_window)
    return {"FRM": [_tables(panel, prior, days, names=list(STYLE_FACTORS), risk=params.risk)],
            "SRM": [_tables(panel, srm_x, days, names=[f"PC{j + 1}" for j in range(k)], risk=params.risk)],
            "Ledoit-Wolf": [{int(t): lw(int(t), x.returns[: int(t) + 1]) for t in days}]}


def route_tables(runs: list[CovNetRun], others: Mapping[str, list[RiskTable]]) -> Routes:
    """Every route's daily forecasts, one table per seed: CovNet, its untrained self, then ``others`` (DRM, FRM, ...)."""
    return {COVNET: [r.models for r in runs], COVNET_UNTRAINED: [r.models_untrained for r in runs], **others}


def covnet_metrics(runs: list[CovNetRun], drm_fits: pd.DataFrame, quality: pd.DataFrame) -> dict:
    """``sharpe_covnet_<market>.json``: ``{"training": {...}, "drm": {seed: {...}}, "forecast": {route: {metric: value}}}``
    (no timings)."""
    t = covnet_table(runs).drop(columns=["seconds"]).iloc[0]
    drm = {str(s): _clean(r.drop("seconds").to_dict()) for s, r in drm_fits.iterrows()}
    return {"training": _clean(t.to_dict()), "drm": drm,
            "forecast": {r: _clean(row.dropna().to_dict()) for r, row in quality.iterrows()}}


def _clean(d: Mapping) -> dict:
    return {k.lower().replace(" ", "_"): (v if isinstance(v, str) else float(v)) for k, v in d.items()}


def save_routes(path: str | Path, routes: Routes) -> None:
    """Every covariance route of one market (:func:`route_tables`; the ``sharpe_covnet`` stage's output), one pickle."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.to_pickle(dict(routes), path)


def load_routes(path: str | Path) -> Routes:
    """The routes written by :func:`save_routes`."""
    return pd.read_pickle(path)
