"""Deep Risk Model runs as the study uses them: dataset, splits, training suites, stored exposures.

One function trains one configuration (:func:`train_and_predict`); the DRM stage
(notebook 20) and every ablation run call it, so they differ only in settings.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskstudy.config import ConfigError, DRMParams, Params, check_horizon
from riskstudy.data.market import MarketData
from riskstudy.factors.base import FactorModel
from riskstudy.factors.drm import factor_names
from riskstudy.factors.store import probe_name, run_name, save_exposures, untrained_name
from riskstudy.features.drm_inputs import DRMDataset, split_rows
from riskstudy.nn.drm_train import (
    HISTORY_COLUMNS,
    FitResult,
    burn_in_rows,
    check_cross_sections,
    environment,
    evaluate,
    fit_drm,
    init_model,
    predict_exposures,
)

log = logging.getLogger(__name__)


@dataclass
class SplitDays:
    """Panel rows of each window. ``train``/``valid`` are purged so no label crosses into the next window."""

    train: np.ndarray
    valid: np.ndarray
    predict: np.ndarray  # valid start .. panel end: exposures for the risk-model evaluation


def restrict_universe(md: MarketData, params: Params, max_stocks: int | None) -> MarketData:
    """Keep the ``max_stocks`` instruments with the largest mean dollar volume over the training
    window (information available before the test period); ``None`` keeps all."""
    p = md.panel
    if max_stocks is None or p.shape[1] <= max_stocks:
        return md
    rows = p.date_slice(*params.split.window("train"))
    dv = np.where(p.member[rows], p["dollar_volume"][rows], np.nan)
    score = np.nan_to_num(np.nanmean(np.where(np.isnan(dv).all(0), 0.0, dv), 0), nan=0.0)
    keep = np.sort(np.argsort(-score, kind="stable")[:max_stocks])
    return MarketData(p.subset(cols=keep), md.benchmark, md.benchmark_name)


def build_dataset(md: MarketData, params: Params) -> DRMDataset:
    """The lazy DRM dataset; the normaliser is fitted on (evenly spaced) training days only."""
    f = params.features
    p = md.panel
    train = split_rows(p.dates, *params.split.window("train"))
    norm_days = train[np.linspace(0, len(train) - 1, min(f.norm_sample_days, len(train))).astype(int)]
    return DRMDataset(
        p, lags=f.lags, ma_window=f.ma_window, horizon=f.horizon, size_window=f.size_window, clip=f.clip, norm_days=norm_days
    )


def split_days(
    ds: DRMDataset, params: Params, *, train_start=None, valid_max_days: int | None = None, history_days: int | None = None
) -> SplitDays:
    """Train/valid rows (with at least one valid stock, purged by the label horizon) and prediction rows.

    ``valid_max_days`` keeps only the last days of the validation window for early stopping;
    exposures are predicted from the validation start (the risk model's burn-in) or, with
    ``history_days``, from that many rows before the test start.
    """
    s = params.split
    dates = ds.panel.dates
    h = params.features.horizon
    lo = max(pd.Timestamp(train_start or s.train_start), pd.Timestamp(s.train_start))
    train = split_rows(dates, lo, s.train_end, valid=ds.valid_, purge=h)
    valid = split_rows(dates, s.valid_start, s.valid_end, valid=ds.valid_, purge=h)
    if valid_max_days is not None:
        valid = valid[-valid_max_days:]
    predict = split_rows(dates, s.valid_start, dates[-1], valid=ds.valid_)
    if history_days is not None:
        first_test = int(dates.searchsorted(pd.Timestamp(s.test_start)))
        predict = predict[predict >= first_test - history_days]
    if len(train) == 0 or len(valid) == 0:
        raise ValueError(f"empty training ({len(train)}) or validation ({len(valid)}) window: check split.* and drm.train_start")
    return SplitDays(train, valid, predict)


def model_config(params: Params, *, n_factors: int, seed: int, **overrides: object) -> DRMParams:
    """The validated ``drm`` section of one run: ``params.drm`` with ``n_factors``, ``seed`` and ``overrides``.

    ``overrides`` are :class:`~riskstudy.config.DRMParams` field names (e.g. ``gat=False``,
    ``lambda_=0.1``, ``horizon=1``); the result is validated again (:meth:`DRMParams.with_overrides`),
    including ``drm.horizon <= features.horizon``.

    Raises
    ------
    ConfigError
        Naming the offending ``drm.<key>``.
    """
    cfg = params.drm.with_overrides(n_factors=n_factors, seed=seed, **overrides)
    try:
        check_horizon(cfg, params.features)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return cfg


@dataclass
class DRMRun:
    """A trained configuration and its exposures on ``days`` (``(len(days), N, K)``)."""

    config: DRMParams
    fit: FitResult
    days: np.ndarray
    exposures: np.ndarray


def train_and_predict(
    ds: DRMDataset, days: SplitDays, config: DRMParams, *, checkpoint: str | Path | None = None, live=None
) -> DRMRun:
    fit = fit_drm(ds, train_days=days.train, valid_days=days.valid, config=config, checkpoint_path=checkpoint, live=live)
    expo = predict_exposures(fit.model, ds, days.predict, n_instruments=ds.n_instruments)
    return DRMRun(config, fit, days.predict, expo)


def untrained_run(ds: DRMDataset, days: SplitDays, config: DRMParams, *, predict: bool = True) -> DRMRun:
    """The control for a trained run: the same network at its initialisation, never trained.

    Same config and seed as the trained run, so it is exactly that run's starting point
    (:func:`~riskstudy.nn.drm_train.init_model`); the per-day normalisation and the exposure
    smoothing apply as in the trained model. Its history is one row, ``epoch = 0``, with the
    validation metrics. ``predict=False``
    skips the exposures (``exposures`` is then empty). Its validation score starts from the same warm
smoothing state as the trained run's (``drm.burn_in_days`` rows predicted first).
    """
    check_cross_sections(ds, days.train, config=config, window="training")  # as fit_drm: fail before any work
    check_cross_sections(ds, days.valid, config=config, window="validation")
    model = init_model(config).to(config.resolved_device()).eval()
    valid = evaluate(model, ds, days.valid, burn_in=burn_in_rows(ds, days.valid, n_days=config.burn_in_days))
    history = pd.DataFrame([{"epoch": 0, "steps": 0, **{f"valid_{k}": v for k, v in valid.items()}}], columns=HISTORY_COLUMNS)
    rows = days.predict if predict else days.predict[:0]
    expo = predict_exposures(model, ds, rows, n_instruments=ds.n_instruments)  # (0, N, K) when not predicting
    fit = FitResult(model=model, history=history, best_epoch=0, environment=environment(config))
    return DRMRun(config, fit, rows, expo)


def full_exposures(run: DRMRun, n_days: int) -> np.ndarray:
    """Exposures on the full panel calendar ``(T, N, K)``, NaN outside the predicted rows."""
    out = np.full((n_days, *run.exposures.shape[1:]), np.nan, dtype=np.float32)
    out[run.days] = run.exposures
    return out


def save_run(run: DRMRun, directory: str | Path, name: str, *, dates: pd.DatetimeIndex, instruments: pd.Index) -> Path:
    """Store exposures in the exposure store (``<name>.npz``), history (``<name>_history.csv``) and config (``<name>.json``)."""
    directory = Path(directory)
    path = save_exposures(directory / f"{name}.npz", run.exposures, rows=run.days, dates=dates, instruments=instruments,
                          names=factor_names(run.exposures.shape[-1]))
    run.fit.history.to_csv(directory / f"{name}_history.csv", index=False)
    meta = {"config": run.config.to_dict(), "best_epoch": run.fit.best_epoch, "environment": run.fit.environment}
    (directory / f"{name}.json").write_text(json.dumps(meta, indent=2))
    return path


def config_tag(config: DRMParams) -> str:
    """Short hash of a configuration (part of the checkpoint name; :func:`~riskstudy.nn.drm_train.fit_drm`
    checks the full run identity before resuming)."""
    import hashlib

    return hashlib.sha1(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:10]


#: The linear reference of every DRM run: the same inputs, head, loss, recipe and loop, with a linear
#: map of the 20 x 5 input window (:class:`~riskstudy.nn.encoders.LinearEncoder`) and no GAT.
LINEAR_PROBE: dict[str, object] = {"encoder": "linear", "gat": False}


def train_suite(
    ds: DRMDataset,
    days: SplitDays,
    params: Params,
    *,
    out_dir: str | Path,
    checkpoint_dir: str | Path | None = None,
    use_dvclive: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train DRM (K = ``drm.n_factors``) and DRM x2 (K = ``drm.k_double``) and their linear probes for every seed.

    Saves each run with :func:`save_run` under ``out_dir`` (dvclive curves in
    ``out_dir/dvclive/<run>``); checkpoints go to ``checkpoint_dir``: a killed run resumes
    from its checkpoint only if it is unfinished and of the same run identity (config, days,
    inputs, code, environment: :func:`~riskstudy.nn.loop.run_identity`), so a rerun never
    reuses a finished or a different run. Every run is
    compared with its own starting point (:func:`untrained_run`): its validation R^2 before
    training is ``valid_r2_init``, and the first seed's untrained exposures are saved as
    :func:`untrained_name` for the evaluation's "untrained" control rows. Every network run has
    a linear probe (:data:`LINEAR_PROBE`, stored as :func:`probe_name`), trained with the same
    recipe on the same days: the linear model of the same data the network must beat.

    Returns
    -------
    summary : DataFrame, one row per run (run, variant, k, seed, best_epoch, best_steps, valid_r2,
        valid_r2_init, train_r2, epochs, seconds)
    history : DataFrame, per-epoch curves of every run (columns ``run``, ``variant``, ``k``, ``seed``)
    """
    out_dir = Path(out_dir)
    rows, histories = [], []
    for k in (params.drm.n_factors, params.drm.k_double):
        for seed in params.drm.seeds:
            for variant, overrides, name in (("network", {}, run_name(k, seed)),
                                             ("linear probe", LINEAR_PROBE, probe_name(k, seed))):
                cfg = model_config(params, n_factors=k, seed=seed, **overrides)
                ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{name}_{config_tag(cfg)}.pt"
                live = None
                if use_dvclive:
                    from dvclive import Live

                    live = Live(dir=str(out_dir / "dvclive" / name), save_dvc_exp=False, dvcyaml=None, report=None)
                first = seed == params.drm.seeds[0] and variant == "network"
                control = untrained_run(ds, days, cfg, predict=first)
                if first:
                    save_run(control, out_dir, untrained_name(k), dates=ds.panel.dates, instruments=ds.panel.instruments)
                t0 = pd.Timestamp.now()
                log.info("training %s (%s) on %d train / %d valid days", name, variant, len(days.train), len(days.valid))
                run = train_and_predict(ds, days, cfg, checkpoint=ckpt, live=live)
                if live is not None:
                    live.end()
                save_run(run, out_dir, name, dates=ds.panel.dates, instruments=ds.panel.instruments)
                h = run.fit.history.assign(run=name, variant=variant, k=k, seed=seed)
                histories.append(h)
                best = h.loc[h.epoch == run.fit.best_epoch].iloc[0]
                rows.append({"run": name, "variant": variant, "k": k, "seed": seed, "best_epoch": run.fit.best_epoch,
                             "best_steps": int(best.steps), "valid_r2": float(best.valid_r2),
                             "valid_r2_init": float(control.fit.history.valid_r2.iloc[0]), "train_r2": float(best.train_r2),
                             "epochs": int(len(h)), "seconds": (pd.Timestamp.now() - t0).total_seconds()})
    return pd.DataFrame(rows), pd.concat(histories, ignore_index=True)


PAPER_SETTINGS = {
    "train window": "2009-04-30 .. 2014-12-31",
    "universe": "all China A-shares (CSI300 members in Table 1)",
    "epochs": "up to 100 (patience 20)",
    "days per epoch": "all training days",
    "learning rate": "2e-4",
    "learning-rate schedule": "constant",
    "batch (days accumulated per step)": "64",
    "smoothing in training (rho)": "0.99",
    "stocks per step": "all members",
    "penalty weight warm-up": "none",
    "validation burn-in (rows)": "not stated",
    "seeds": "1 (not reported)",
}


def reductions(params: Params, *, ablation: bool = False) -> pd.DataFrame:
    """Our settings beside the paper's, so every reduction is stated where results are shown."""
    d, a, s = params.drm, params.ablations, params.split
    start = (a.train_start if ablation else d.train_start) or s.train_start
    ours = {
        "train window": f"{max(pd.Timestamp(start), pd.Timestamp(s.train_start)).date()} .. {s.train_end}",
        "universe": (f"top {a.max_stocks} by training-window dollar volume" if ablation and a.max_stocks else
                     f"US top {params.data.us.top_n} by dollar volume; CSI300 members of the day"),
        "epochs": f"up to {a.max_epochs if ablation else d.max_epochs} (patience {d.patience})",
        "days per epoch": str((a.train_days_per_epoch if ablation else d.train_days_per_epoch) or "all training days"),
        "learning rate": f"{d.lr:g}",
        "learning-rate schedule": d.lr_schedule,
        "batch (days accumulated per step)": str(d.batch_days),
        "smoothing in training (rho)": f"{d.rho if d.rho_train is None else d.rho_train:g}",
        "stocks per step": "all members" if d.train_stocks is None else str(d.train_stocks),
        "penalty weight warm-up": f"{d.lambda_warmup_steps} steps" if d.lambda_warmup_steps else "none",
        "validation burn-in (rows)": str(d.burn_in_days),
        "seeds": str(a.seeds if ablation else d.seeds),
    }
    return pd.DataFrame({"paper": PAPER_SETTINGS, f"this run ({params.profile} profile)": ours})


class DeepRiskFactorModel(FactorModel):
    """The Deep Risk Model behind the :class:`~riskstudy.factors.base.FactorModel` interface.

    :meth:`fit` trains one network (K = ``n_factors``, one seed, the rest from the ``drm`` section)
    on ``train_rows`` with early stopping on ``valid_rows`` -- both restricted to days with a valid
    stock and purged by the label horizon, the input normaliser fitted on evenly spaced training
    days only -- or, with ``trained=False``, keeps the network at its initialisation (the
    untrained control). :meth:`exposures` predicts the smoothed exposures of ``rows`` in time order
    from a cold smoothing state at ``rows[0]`` (so start ``rows`` with a burn-in).

    The study's DRM stage trains through :func:`train_suite` (checkpoints, dvclive) and scoring
    reads its stored exposures (:mod:`riskstudy.factors.drm`); this class is for fitting and
    predicting in one process.

    Parameters
    ----------
    params : Params
        ``features`` (inputs and labels) and ``drm`` (network and training), passed whole.
    n_factors, seed : int
    trained : bool
    """

    def __init__(self, params: Params, *, n_factors: int, seed: int, trained: bool = True) -> None:
        self.params, self.trained = params, trained
        self.config = model_config(params, n_factors=n_factors, seed=seed)

    def fit(self, md: MarketData, *, train_rows: np.ndarray, valid_rows: np.ndarray | None = None) -> "DeepRiskFactorModel":
        if valid_rows is None or len(valid_rows) == 0:
            raise ValueError("DeepRiskFactorModel.fit needs valid_rows (early stopping)")
        f, dates = self.params.features, md.panel.dates
        train_rows = np.asarray(train_rows, dtype=np.int64)
        norm = train_rows[np.linspace(0, len(train_rows) - 1, min(f.norm_sample_days, len(train_rows))).astype(int)]
        self.dataset_ = DRMDataset(md.panel, lags=f.lags, ma_window=f.ma_window, horizon=f.horizon,
                                   size_window=f.size_window, clip=f.clip, norm_days=norm)
        valid = self.dataset_.valid_

        def window(rows: np.ndarray) -> np.ndarray:
            return split_rows(dates, dates[rows[0]], dates[rows[-1]], valid=valid, purge=f.horizon)

        train, val = window(train_rows), window(np.asarray(valid_rows, dtype=np.int64))
        if self.trained:
            self.fit_ = fit_drm(self.dataset_, train_days=train, valid_days=val, config=self.config)
        else:
            empty = SplitDays(train, val, train[:0])
            self.fit_ = untrained_run(self.dataset_, empty, self.config, predict=False).fit
        self.names_ = factor_names(self.config.n_factors)
        return self

    def exposures(self, md: MarketData, *, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        keep = rows[self.dataset_.valid_[rows].any(1)]
        out = np.full((len(rows), md.panel.shape[1], self.config.n_factors), np.nan, dtype=np.float32)
        out[np.searchsorted(rows, keep)] = predict_exposures(self.fit_.model, self.dataset_, keep,
                                                             n_instruments=self.dataset_.n_instruments)
        return out
