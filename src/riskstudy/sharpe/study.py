"""The Sharpe section's steps, called by its stages and notebooks.

* :func:`riskstudy.studies.sharpe_data.prepare` (stage ``sharpe_data``): the inputs of each universe rule.
* :func:`train_networks` (notebook 50): every direct network x seed through the one training loop,
  each beside its untrained self (same seed, no step), plus the GRU with the ablation optimizer and
  on the hindsight universe; their decisions on every test row.
* :func:`run_backtests` (notebook 52): every strategy through :func:`riskstudy.sharpe.backtest.run_strategy`,
  the metrics, Sharpe-difference tests against equal weight, verdicts.
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
from riskstudy.portfolio.sharpe_test import sharpe_diff_bootstrap, sharpe_diff_hac
from riskstudy.sharpe.backtest import StrategyRun, metrics, run_strategy
from riskstudy.sharpe.config import SharpeConfig
from riskstudy.sharpe.data import Rows, SharpeInputs
from riskstudy.sharpe.direct import DirectTask, predict_weights
from riskstudy.sharpe.inputs import market_dir, rows_of, rules, section
from riskstudy.sharpe.strategies import equal_weight, from_table, ledoit_wolf_max_sharpe, ledoit_wolf_min_variance
from riskstudy.stats import mean_ci, point, verdict

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


def test_rows(rows: Rows) -> np.ndarray:
    return np.arange(rows.test_start, rows.test_end)


def train_networks(params: Params, market: str, inputs: dict[str, SharpeInputs], *,
                   progress: Callable[[str], object] = log.info) -> list[NetRun]:
    """Every fit of :func:`run_plan` x ``sharpe.nets.seeds`` (module docstring); checkpoints under the data dir."""
    cfg = section(params)
    device = cfg.resolved_device()
    out = []
    for strategy, net, opt, rule in run_plan(params, market):
        x = inputs[rule]
        rows = rows_of(cfg, x)
        days = test_rows(rows)
        for seed in cfg.nets.seeds:
            t0 = time.perf_counter()
            task = DirectTask(x, train_days=rows.train, valid_days=rows.valid, network=net, cfg=cfg, optimizer=opt,
                              device=device)
            seed_all(seed)
            untrained = task.build_model()
            valid0 = task.validate(untrained, None)["sharpe"]
            w0 = predict_weights(untrained, x, days)
            ck = market_dir(params, market) / "checkpoints" / f"{strategy.replace(' ', '_')}_{seed}.pt"
            res = fit(task, max_epochs=cfg.nets.max_epochs, patience=cfg.nets.patience, seed=seed, checkpoint_path=ck)
            valid = task.validate(res.model, None)["sharpe"]
            w = predict_weights(res.model, x, days)
            sec = time.perf_counter() - t0
            progress(f"{market} {strategy} seed {seed}: best epoch {res.best_epoch}, validation Sharpe {valid:.2f} "
                     f"(untrained {valid0:.2f}), {sec:.0f} s")
            out.append(NetRun(strategy, net, opt, rule, seed, res.best_epoch, res.history, valid, valid0, w, w0, sec,
                              res.environment or {}))
    return out


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


# ---------------------------------------------------------------- backtests


@dataclass
class Backtests:
    """Per strategy, its runs (one per seed; one for a deterministic rule), and the rows/dates they span."""

    runs: dict[str, list[StrategyRun]]
    seeded: set[str]
    rows: Rows
    dates: pd.DatetimeIndex
    benchmark: np.ndarray
    universe: dict[str, str]  # strategy -> universe rule

    @property
    def returns_rows(self) -> slice:
        """The rows of the returns the test decisions earn (``test_start + 1 .. test_end``)."""
        return slice(self.rows.test_start + 1, self.rows.test_end + 1)


def run_backtests(params: Params, inputs: dict[str, SharpeInputs], runs: list[NetRun]) -> Backtests:
    """Every strategy in one backtester (:func:`run_strategy`) over the test rows of its universe."""
    cfg = section(params)
    base = inputs[cfg.universe_rule]
    rows = rows_of(cfg, base)
    kw = dict(start=rows.test_start, end=rows.test_end, rebalance_every=cfg.rebalance_every, max_change=cfg.max_change,
              lower=cfg.lower, upper=cfg.upper, cost_bps=cfg.cost_bps)
    out: dict[str, list[StrategyRun]] = {}
    universe: dict[str, str] = {}
    days = test_rows(rows)
    for r in runs:
        x = inputs[r.rule]
        for name, w in ((r.strategy, r.weights), (f"{r.strategy} (untrained)", r.weights_untrained)):
            table = dict(zip(days.tolist(), w))
            out.setdefault(name, []).append(run_strategy(from_table(table), x.returns, **kw))
            universe[name] = r.rule
    seeded = set(out)
    classical = {"Equal weight": equal_weight,
                 "Max-Sharpe (Ledoit-Wolf)": ledoit_wolf_max_sharpe(cfg.cov_window, cfg.mu_window, risk_free=cfg.risk_free),
                 "Min-variance (Ledoit-Wolf)": ledoit_wolf_min_variance(cfg.cov_window)}
    for name, fn in classical.items():
        out[name] = [run_strategy(fn, base.returns, **kw)]
        universe[name] = cfg.universe_rule
    for rule, x in inputs.items():
        if rule != cfg.universe_rule:
            name = "Equal weight (hindsight universe)"
            out[name] = [run_strategy(equal_weight, x.returns, **kw)]
            universe[name] = rule
    return Backtests(out, seeded, rows, base.dates, base.benchmark, universe)


def strategy_returns(bt: Backtests, name: str) -> np.ndarray:
    """Daily returns of ``name`` on the test rows; the mean over seeds for a seeded strategy (``(D,)``)."""
    s = bt.returns_rows
    return np.mean([r.result.returns[s] for r in bt.runs[name]], axis=0)


def index_returns(bt: Backtests) -> np.ndarray:
    return bt.benchmark[bt.returns_rows]


def metrics_json(bt: Backtests, cfg: SharpeConfig) -> dict:
    """``{strategy: {metric: mean over seeds, metric_lo/_hi: interval, "seeds": n}}`` (issue 13's schema) + the index."""
    s = bt.returns_rows
    out = {}
    for name, runs in bt.runs.items():
        per = [metrics(r.result.returns[s], turnover=r.result.turnover[bt.rows.test_start:bt.rows.test_end],
                       risk_free=cfg.risk_free) for r in runs]
        entry: dict[str, float] = {}
        for k in per[0]:
            ci = mean_ci([p[k] for p in per])
            entry[k] = ci["mean"]
            if name in bt.seeded:
                entry[f"{k}_lo"], entry[f"{k}_hi"] = ci["lo"], ci["hi"]
        entry["seeds"] = len(runs)
        entry["n_capped_rebalances"] = float(np.mean([r.n_capped for r in runs]))
        out[name] = entry
    idx = metrics(index_returns(bt), risk_free=cfg.risk_free)
    out["Index"] = {**idx, "seeds": 1}
    return out


def sharpe_tests(bt: Backtests, cfg: SharpeConfig, *, against: str = "Equal weight") -> pd.DataFrame:
    """Each strategy's daily excess returns (seed mean) against ``against``'s: HAC (Ledoit-Wolf 2008) and block bootstrap."""
    rf = cfg.risk_free / 252
    b = strategy_returns(bt, against) - rf
    rows = []
    for name in bt.runs:
        if name == against:
            continue
        a = strategy_returns(bt, name) - rf
        hac = sharpe_diff_hac(a, b)
        boot = sharpe_diff_bootstrap(a, b, block=cfg.boot_block, n_boot=cfg.n_boot)
        root = np.sqrt(252)
        rows.append({"strategy": name, "Sharpe diff (ann.)": hac["diff"] * root, "HAC p": hac["p_value"],
                     "bootstrap lo": boot["lo"] * root, "bootstrap hi": boot["hi"] * root, "bootstrap p": boot["p_value"]})
    return pd.DataFrame(rows).set_index("strategy")


def seed_sharpe(bt: Backtests, cfg: SharpeConfig, name: str) -> dict:
    """:func:`mean_ci` of ``name``'s annualised Sharpe over seeds (:func:`point` for a deterministic rule)."""
    s = bt.returns_rows
    v = [metrics(r.result.returns[s], risk_free=cfg.risk_free)["sharpe"] for r in bt.runs[name]]
    return mean_ci(v) if name in bt.seeded else point(v[0])


def verdicts(bt: Backtests, cfg: SharpeConfig, tests: pd.DataFrame) -> pd.DataFrame:
    """The section's questions, each answered from seed intervals and the Sharpe-difference tests."""
    rows = []

    def add(question: str, a: str, b: str) -> None:
        if a not in bt.runs or b not in bt.runs:
            return
        va, vb = seed_sharpe(bt, cfg, a), seed_sharpe(bt, cfg, b)
        p = tests.loc[a, "bootstrap p"] if b == "Equal weight" and a in tests.index else float("nan")
        rows.append({"question": question, "a": a, "b": b, "Sharpe a": va["mean"], "a lo": va["lo"], "a hi": va["hi"],
                     "Sharpe b": vb["mean"], "verdict (seeds)": verdict(va, vb), "bootstrap p vs EW": p})

    nets = [LABELS[n] for n in cfg.nets.networks]
    for n in nets:
        add(f"does {n} beat equal weight?", n, "Equal weight")
        add(f"does {n} beat the covariance route (Ledoit-Wolf max-Sharpe)?", n, "Max-Sharpe (Ledoit-Wolf)")
        add(f"does training help {n}?", n, f"{n} (untrained)")
    for n in nets:
        if n != "Linear":
            add(f"does {n} beat the linear reference?", n, "Linear")
    add("does SAM help the GRU (vs the ablation optimizer)?", "GRU", f"GRU ({cfg.nets.ablation_optimizer})")
    add("does the hindsight universe inflate the GRU?", "GRU (hindsight universe)", "GRU")
    add("does the hindsight universe inflate equal weight?", "Equal weight (hindsight universe)", "Equal weight")
    return pd.DataFrame(rows)


def verdict_counts(v: pd.DataFrame) -> dict:
    """``{question: verdict}`` plus the counts of each verdict word (the ``sharpe_claims_<market>.json`` metrics)."""
    answers = dict(zip(v["question"], v["verdict (seeds)"]))
    counts = {w: int(sum(a.startswith(w) for a in answers.values())) for w in ("win", "tie", "loss")}
    return {"answers": answers, "counts": counts}


def weights_path(bt: Backtests, name: str, seed_index: int = 0) -> pd.DataFrame:
    """The weights held each test day by ``name`` (one seed), as a frame of dates x stocks."""
    r = bt.runs[name][seed_index].result
    s = slice(bt.rows.test_start, bt.rows.test_end)
    return pd.DataFrame(r.weights[s], index=bt.dates[s])


