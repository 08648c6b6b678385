"""The direct networks of the Sharpe section (notebook 50): every network x seed through the one training loop.

* :func:`run_plan`: the fits of a market -- each network of ``sharpe.nets.networks`` with the
  configured optimizer, the GRU with the ablation optimizer, and the GRU on the paper's hindsight
  universe where ``sharpe.nets.hindsight_markets`` has the market;
* :func:`train_networks`: each fit beside its untrained self (same seed, no step), and their
  decisions on every test row (:class:`NetRun`), saved for the backtests (:mod:`riskstudy.sharpe.study`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskstudy.config import Params
from riskstudy.nn.loop import fit, seed_all
from riskstudy.nn.parallel import map_fits, resolve_workers
from riskstudy.sharpe.data import SharpeInputs
from riskstudy.sharpe.direct import DirectTask, predict_weights
from riskstudy.sharpe.inputs import market_dir, rows_of, rules, section
from riskstudy.stats import mean_ci

log = logging.getLogger(__name__)

LABELS = {"gru": "GRU", "transformer": "Transformer", "tcn": "TCN", "linear": "Linear"}


@dataclass
class NetRun:
    """One trained direct network and its untrained self: decisions on the test rows ``(D, N)``."""

    strategy: str
    network: str
    optimizer: str
    rule: str
    seed: int
    best_epoch: int
    history: pd.DataFrame
    valid_sharpe: float
    valid_sharpe_untrained: float
    weights: np.ndarray
    weights_untrained: np.ndarray
    seconds: float
    environment: dict = field(default_factory=dict)


def run_plan(params: Params, market: str) -> list[tuple[str, str, str, str]]:
    """``(strategy, network, optimizer, rule)`` of every seeded network fit of ``market``."""
    cfg = section(params)
    n = cfg.nets
    plan = [(LABELS[net], net, n.optimizer, cfg.universe_rule) for net in n.networks]
    if "gru" in n.networks and n.ablation_optimizer not in ("none", n.optimizer):
        plan.append((f"GRU ({n.ablation_optimizer})", "gru", n.ablation_optimizer, cfg.universe_rule))
    if "gru" in n.networks and "ex_post_return" in rules(params, market) and cfg.universe_rule != "ex_post_return":
        plan.append(("GRU (hindsight universe)", "gru", n.optimizer, "ex_post_return"))
    return plan


def train_networks(params: Params, market: str, inputs: dict[str, SharpeInputs], *,
                   progress: Callable[[str], object] = log.info) -> list[NetRun]:
    """Every fit of :func:`run_plan` x ``sharpe.nets.seeds`` (module docstring); checkpoints under the data dir.

    The fits are independent and run on ``sharpe.workers`` processes, one thread each
    (:func:`riskstudy.nn.parallel.map_fits`: the result does not depend on the number of workers).
    """
    cfg = section(params)
    jobs = [(params, market, inputs[rule], strategy, net, opt, rule, seed)
            for strategy, net, opt, rule in run_plan(params, market) for seed in cfg.nets.seeds]
    workers = resolve_workers(cfg.workers, len(jobs), cfg.resolved_device())

    def done(_: int, r: NetRun) -> None:
        progress(f"{market} {r.strategy} seed {r.seed}: best epoch {r.best_epoch}, validation Sharpe "
                 f"{r.valid_sharpe:.2f} (untrained {r.valid_sharpe_untrained:.2f}), {r.seconds:.0f} s")

    return map_fits(fit_network, jobs, workers=workers, on_done=done)


def fit_network(params: Params, market: str, x: SharpeInputs, strategy: str, net: str, opt: str, rule: str,
                seed: int) -> NetRun:
    """One fit of :func:`train_networks`: the network ``net`` with optimizer ``opt`` on the universe ``rule``."""
    cfg = section(params)
    rows = rows_of(cfg, x)
    days = rows.test
    t0 = time.perf_counter()
    task = DirectTask(x, train_days=rows.train, valid_days=rows.valid, network=net, cfg=cfg, optimizer=opt,
                      device=cfg.resolved_device())
    seed_all(seed)
    untrained = task.build_model()
    valid0 = task.validate(untrained, None)["sharpe"]
    w0 = predict_weights(untrained, x, days)
    ck = market_dir(params, market) / "checkpoints" / f"{strategy.replace(' ', '_')}_{seed}.pt"
    res = fit(task, max_epochs=cfg.nets.max_epochs, patience=cfg.nets.patience, seed=seed, checkpoint_path=ck)
    valid = task.validate(res.model, None)["sharpe"]
    w = predict_weights(res.model, x, days)
    return NetRun(strategy, net, opt, rule, seed, res.best_epoch, res.history, valid, valid0, w, w0,
                  time.perf_counter() - t0, res.environment or {})


def save_runs(runs: list[NetRun], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.to_pickle(runs, path)


def load_runs(path: str | Path) -> list[NetRun]:
    return pd.read_pickle(path)


def training_table(runs: list[NetRun]) -> pd.DataFrame:
    """Per strategy: validation Sharpe trained and untrained (mean and interval over seeds), best epochs, seconds."""
    rows = []
    for s in dict.fromkeys(r.strategy for r in runs):
        rs = [r for r in runs if r.strategy == s]
        tr, un = mean_ci([r.valid_sharpe for r in rs]), mean_ci([r.valid_sharpe_untrained for r in rs])
        gain = mean_ci([r.valid_sharpe - r.valid_sharpe_untrained for r in rs])
        rows.append({"strategy": s, "seeds": len(rs), "valid Sharpe": tr["mean"], "lo": tr["lo"], "hi": tr["hi"],
                     "untrained": un["mean"], "gain": gain["mean"], "gain lo": gain["lo"], "gain hi": gain["hi"],
                     "best epochs": ", ".join(str(r.best_epoch) for r in rs),
                     "seconds": float(np.sum([r.seconds for r in rs]))})
    return pd.DataFrame(rows).set_index("strategy")


def nets_metrics(runs: list[NetRun]) -> dict:
    """:func:`training_table` as ``{strategy: {...}}`` (the ``sharpe_nets_<market>.json`` metrics; no timings)."""
    t = training_table(runs).drop(columns=["seconds"])
    return {s: {k.lower().replace(" ", "_"): v for k, v in row.items()} for s, row in t.to_dict(orient="index").items()}
