"""The Sharpe section's backtests (notebook 52), after the steps that feed them:

* :func:`riskstudy.studies.sharpe_data.prepare` (stage ``sharpe_data``): the inputs of each universe rule;
* :func:`riskstudy.sharpe.nets.train_networks` (notebook 50): the direct networks' decisions;
* :mod:`riskstudy.sharpe.routes` (notebook 51): the covariance routes' daily forecasts;
* here, :func:`run_backtests`: every strategy through :func:`riskstudy.sharpe.backtest.run_strategy`,
  then the metrics, Sharpe-difference tests against equal weight, verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskstudy.config import Params
from riskstudy.portfolio.sharpe_test import sharpe_diff_bootstrap, sharpe_diff_hac
from riskstudy.sharpe.backtest import StrategyRun, metrics, run_strategy
from riskstudy.sharpe.config import SharpeConfig
from riskstudy.sharpe.data import Rows, SharpeInputs
from riskstudy.sharpe.inputs import rows_of, section
from riskstudy.sharpe.nets import LABELS, NetRun
from riskstudy.sharpe.routes import COVNET, COVNET_UNTRAINED, DRM, DRM_UNTRAINED, SEEDED_ROUTES, RiskTable
from riskstudy.sharpe.strategies import (ModelAt, equal_weight, from_models, from_table, ledoit_wolf_model,
                                         max_sharpe_portfolio, min_variance)
from riskstudy.stats import mean_ci, point, verdict

#: The two portfolio rules every covariance route feeds (strategy ``"<rule> (<route>)"``).
ROUTE_RULES = ("Max-Sharpe", "Min-variance")


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


def run_backtests(params: Params, inputs: dict[str, SharpeInputs], runs: list[NetRun], *,
                  routes: Mapping[str, Sequence[RiskTable]] | None = None) -> Backtests:
    """Every strategy in one backtester (:func:`run_strategy`) over the test rows of its universe.

    The direct networks' decisions (trained and untrained, per seed); equal weight; max-Sharpe and
    min-variance on each covariance route (``routes``: ``{route: [daily forecasts per seed]}``,
    :func:`riskstudy.sharpe.routes.route_tables`; the routes of
    :data:`~riskstudy.sharpe.routes.SEEDED_ROUTES` are seeded), plus the trailing Ledoit-Wolf
    covariance when ``routes`` has none (:func:`~riskstudy.sharpe.strategies.ledoit_wolf_model`);
    equal weight on the hindsight universe.
    """
    cfg = section(params)
    base = inputs[cfg.universe_rule]
    rows = rows_of(cfg, base)
    kw = dict(start=rows.test_start, end=rows.test_end, rebalance_every=cfg.rebalance_every, max_change=cfg.max_change,
              lower=cfg.lower, upper=cfg.upper, cost_bps=cfg.cost_bps)
    out: dict[str, list[StrategyRun]] = {}
    universe: dict[str, str] = {}
    days = rows.test
    for r in runs:
        x = inputs[r.rule]
        for name, w in ((r.strategy, r.weights), (f"{r.strategy} (untrained)", r.weights_untrained)):
            table = dict(zip(days.tolist(), w))
            out.setdefault(name, []).append(run_strategy(from_table(table), x.returns, **kw))
            universe[name] = r.rule
    seeded = set(out)
    getters: dict[str, list[ModelAt]] = {name: [from_models(t) for t in tables] for name, tables in (routes or {}).items()}
    getters.setdefault("Ledoit-Wolf", [ledoit_wolf_model(cfg.cov_window)])
    out["Equal weight"] = [run_strategy(equal_weight, base.returns, **kw)]
    universe["Equal weight"] = cfg.universe_rule
    for name, gs in getters.items():
        for rule in ROUTE_RULES:
            label = f"{rule} ({name})"
            make = (lambda g: max_sharpe_portfolio(g, cfg.mu_window, risk_free=cfg.risk_free)) if rule == "Max-Sharpe" \
                else min_variance
            out[label] = [run_strategy(make(g), base.returns, **kw) for g in gs]
            universe[label] = cfg.universe_rule
            if name in SEEDED_ROUTES:
                seeded.add(label)
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


def seed_metric(bt: Backtests, cfg: SharpeConfig, name: str, metric: str = "sharpe") -> dict:
    """:func:`mean_ci` of ``name``'s test ``metric`` (annualised Sharpe by default) over seeds (:func:`point` for a
    deterministic rule)."""
    s = bt.returns_rows
    v = [metrics(r.result.returns[s], risk_free=cfg.risk_free)[metric] for r in bt.runs[name]]
    return mean_ci(v) if name in bt.seeded else point(v[0])


def verdicts(bt: Backtests, cfg: SharpeConfig, tests: pd.DataFrame) -> pd.DataFrame:
    """The section's questions, each answered from seed intervals (Sharpe; volatility for the minimum-variance
    questions, lower is better) and, against equal weight, the Sharpe-difference bootstrap."""
    rows = []

    def add(question: str, a: str, b: str, metric: str = "sharpe") -> None:
        if a not in bt.runs or b not in bt.runs:
            return
        va, vb = seed_metric(bt, cfg, a, metric), seed_metric(bt, cfg, b, metric)
        p = tests.loc[a, "bootstrap p"] if b == "Equal weight" and a in tests.index else float("nan")
        rows.append({"question": question, "metric": metric, "a": a, "b": b, "a value": va["mean"], "a lo": va["lo"],
                     "a hi": va["hi"], "b value": vb["mean"], "b lo": vb["lo"], "b hi": vb["hi"],
                     "verdict (seeds)": verdict(va, vb, higher_is_better=metric != "vol"), "bootstrap p vs EW": p})

    nets = [LABELS[n] for n in cfg.nets.networks]
    cov = f"Max-Sharpe ({COVNET})"
    for n in nets:
        add(f"does {n} beat equal weight?", n, "Equal weight")
        add(f"does {n} beat the covariance network route (CovNet max-Sharpe)?", n, cov)
        add(f"does {n} beat the classical covariance route (Ledoit-Wolf max-Sharpe)?", n, "Max-Sharpe (Ledoit-Wolf)")
        add(f"does training help {n}?", n, f"{n} (untrained)")
    for n in nets:
        if n != "Linear":
            add(f"does {n} beat the linear reference?", n, "Linear")
    add("does CovNet max-Sharpe beat equal weight?", cov, "Equal weight")
    add("does training help CovNet max-Sharpe?", cov, f"Max-Sharpe ({COVNET_UNTRAINED})")
    for ref in ("Ledoit-Wolf", "FRM", "SRM", DRM):
        add(f"is CovNet's min-variance portfolio less volatile than {ref}'s?", f"Min-variance ({COVNET})",
            f"Min-variance ({ref})", "vol")
    for ref in ("Ledoit-Wolf", "FRM", "SRM"):
        add(f"is the DRM's min-variance portfolio less volatile than {ref}'s?", f"Min-variance ({DRM})",
            f"Min-variance ({ref})", "vol")
    for net, control in ((COVNET, COVNET_UNTRAINED), (DRM, DRM_UNTRAINED)):
        add(f"does training make the {net} min-variance portfolio less volatile?", f"Min-variance ({net})",
            f"Min-variance ({control})", "vol")
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


