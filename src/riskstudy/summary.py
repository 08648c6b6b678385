"""``reports/SUMMARY.md``: every study section contributes its own part, from the metrics files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from riskstudy.reporting import markdown_table, read_meta, read_metrics


def _table_from_metrics(d: dict, *, pct: list[str] | None = None, floatfmt: str = ".3f", index_name: str = "") -> str:
    df = pd.DataFrame(d).T
    df.index.name = index_name
    for c in df.columns[df.dtypes == object]:
        try:
            df[c] = pd.to_numeric(df[c])
        except (TypeError, ValueError):
            pass  # text column (e.g. a verdict): keep as is
    return markdown_table(df, pct=pct, floatfmt=floatfmt)


def _num(d: dict, key: str, fmt: str = ".3f") -> str:
    """``d[key]`` formatted, or "n/a" when it is missing or null (a one-seed interval is written as null)."""
    v = d.get(key)
    return "n/a" if v is None else format(v, fmt)


def _per_k(values: dict[str, float]) -> str:
    """``{"10": 0.31, "20": 0.37}`` as ``K=10: 31.00%, K=20: 37.00%``."""
    return ", ".join(f"K={k}: {v:.2%}" for k, v in values.items())


class _Current:
    """The metrics files of one run: a file written with other params is refused and listed."""

    def __init__(self, directory: Path, params: Any) -> None:
        self.directory, self.params, self.stale = directory, params, {}

    def exists(self, name: str) -> bool:
        from riskstudy.provenance import stale_reason

        f = self.directory / name
        if not f.exists():
            return False
        why = stale_reason(read_meta(f), self.params)
        if why is not None:
            self.stale[name] = why
            return False
        return True

    def __truediv__(self, name: str) -> Path:
        return self.directory / name


#: A section of ``SUMMARY.md`` for one market: ``(metrics, reports_dir, market) -> markdown lines``.
MarketSection = Callable[["_Current", Path, str], list[str]]


def data_section(m: "_Current", rd: Path, mk: str) -> list[str]:
    """Section 10 (data): panel size, members, cleaning actions."""
    if not m.exists(f"data_{mk}.json"):
        return []
    d = read_metrics(m / f"data_{mk}.json")
    return [
        f"Data: {d['n_days']} days x {d['n_instruments']} instruments ({d['first_date']} .. {d['last_date']}), "
        f"{d['members_mean']:.0f} members per day on average; cleaning actions: {d['cleaning_actions']}. "
        + (f"Benchmark vs the Fama-French market return: daily correlation {ff['corr']:.3f} over {ff['n_days']} days, "
           f"annualised volatility {ff['ann_vol_benchmark']:.1%} vs {ff['ann_vol_ff_market']:.1%}. "
           if (ff := d.get("benchmark_vs_ff_market")) else "")
        + f"[notebook](notebooks/10_data_{mk}.ipynb)",
        "",
    ]


def drm_section(m: "_Current", rd: Path, mk: str) -> list[str]:
    """Section 20 (DRM training): runs, time, validation R^2 trained and untrained, memory."""
    if not m.exists(f"drm_training_{mk}.json"):
        return []
    tr = read_metrics(m / f"drm_training_{mk}.json")
    tf = rd / "timings" / f"drm_training_{mk}.json"
    tm = read_metrics(tf) if tf.exists() else {}
    rss, secs = tm.get("peak_rss_mb"), tm.get("train_seconds_total")
    return [
        f"DRM training: {sum(r.get('variant', 'network') == 'network' for r in tr['runs'].values())} runs"
        + (f" and {n_probe} linear probes" if (n_probe := sum(r.get("variant") == "linear probe" for r in tr["runs"].values())) else "")
        + (f" in {secs / 60:.1f} min" if secs is not None else "")
        + ", validation R^2 (mean over seeds) "
        + _per_k(tr["valid_r2_mean"])
        + ("; the same networks before training: " + _per_k(tr["valid_r2_init_mean"]) if "valid_r2_init_mean" in tr else "")
        + ("; smallest gain over a seed's own untrained network: " + ", ".join(
            f"K={k}: {100 * v:+.2f} points" for k, v in tr["gain_min"].items()) if "gain_min" in tr else "")
        + ("; their linear probes (same inputs, head, loss and recipe): " + _per_k(tr["probe_valid_r2_mean"])
           if "probe_valid_r2_mean" in tr else "")
        + (f"; peak memory of the stage {rss / 1024:.2f} GiB" if rss is not None else "")
        + f". [notebook](notebooks/20_deep_risk_model_{mk}.ipynb)",
        "",
    ]


def evaluation_section(m: "_Current", rd: Path, mk: str) -> list[str]:
    """Section 21 (risk-model evaluation): Tables 1 and 2, forecast quality, figures."""
    from riskstudy.evaluation import paper

    out: list[str] = []
    if m.exists(f"table1_{mk}.json"):
        t1 = pd.DataFrame(read_metrics(m / f"table1_{mk}.json")).T[["r2", "gmv_vol", "gmv_long_vol"]].astype(float)
        t1 = t1.join(paper.TABLE1.add_prefix("paper_"), how="left")
        t1.index.name = "model"
        out += ["### Table 1: R^2 and annualised volatility of GMV / GMV+ (test window)", "",
                markdown_table(t1, pct=list(t1.columns)), "",
                "Paper columns: CSI300 (all A-shares universe), 2017-01 .. 2020-02. DRM rows: mean over seeds "
                f"(per-seed values in `metrics/forecast_{mk}.json`); \"untrained\" rows: the first seed's network "
                f"before any gradient step (the control for what training added). [notebook](notebooks/21_risk_model_evaluation_{mk}.ipynb)", ""]
    if m.exists(f"table2_{mk}.json"):
        out += ["### Table 2: DRM factor statistics (K = drm.n_factors, first seed)", "",
                _table_from_metrics(read_metrics(m / f"table2_{mk}.json"), pct=["pct_abs_t_gt_2"], floatfmt=".2f", index_name="factor"), ""]
    if m.exists(f"forecast_{mk}.json"):
        fc = read_metrics(m / f"forecast_{mk}.json")["models"]
        out += ["### Risk-forecast quality (bias statistic: 1 = calibrated; QLIKE: lower is better)", "",
                _table_from_metrics(fc, index_name="model"), ""]
    if m.exists(f"claims_{mk}.json"):
        cl = read_metrics(m / f"claims_{mk}.json")
        for key, title in (("paper", "The paper's Table 1 claims"), ("training", "Did training help? (trained vs untrained network)"),
                           ("linear", "Does the network beat a linear model of the same data?")):
            if cl.get(key):
                out += [f"### {title} (test window; 95% seed intervals, one verdict rule)", "",
                        _table_from_metrics(cl[key], index_name="claim"), ""]
    return out + _figures(rd, f"evaluation_{mk}/r2.png", f"evaluation_{mk}/factor_returns.png")


def ablations_section(m: "_Current", rd: Path, mk: str) -> list[str]:
    """Section 30 (ablations): GAT x K, the lambda sweep, single- vs multi-task."""
    if not m.exists(f"ablations_{mk}.json"):
        return []
    ab = read_metrics(m / f"ablations_{mk}.json")
    g = {k: {"with": v["with"]["mean"], "with_lo": v["with"]["lo"], "with_hi": v["with"]["hi"],
             "without": v["without"]["mean"], "without_lo": v["without"]["lo"], "without_hi": v["without"]["hi"],
             "verdict": v["verdict"]} for k, v in ab["gat"].items()}
    lam = {k: {"vif_mean": v["vif_mean"], "r2": v["r2"], "gmv_vol": v["gmv_vol"]} for k, v in ab["lambda"].items()}
    mt = ab["multitask"]
    learned = ab.get("learning", {})
    learn = ("Did the ablation runs learn? Validation R^2 gain over each run's own untrained network, "
             + "; ".join(f"{g}: {100 * v['gain']['mean']:+.2f} points on average, smallest {100 * v['min_gain']:+.2f}, "
                         f"{v['n_gain_gt_0']} of {v['n_runs']} runs above 0" for g, v in learned.items()) + "."
             if learned else "")
    return ["### Ablations (mean over seeds, 95% interval; overlapping intervals = tie)", "",
            *([learn, ""] if learn else []),
            "RQ1, R^2 with / without GAT by K:", "",
            _table_from_metrics(g, pct=["with", "with_lo", "with_hi", "without", "without_lo", "without_hi"], index_name="K"), "",
            "RQ2, lambda sweep (K = 10):", "", _table_from_metrics(lam, pct=["r2", "gmv_vol"], index_name="lambda"), "",
            f"RQ3, lag-1 autocorrelation of exposures: multi-task {mt['multi']['autocorr']:.3f}, "
            f"single-task {mt['single']['autocorr']:.3f} ({mt['verdict']}). "
            f"[notebook](notebooks/30_ablations_{mk}.ipynb)", ""] + _figures(rd, f"ablations_{mk}/vif.png", f"ablations_{mk}/autocorr.png")


def cae_section(m: "_Current", rd: Path, mk: str) -> list[str]:
    """Section 40 (conditional autoencoder): out-of-sample R^2 by model and K, verdicts against IPCA and PCA."""
    if not m.exists(f"cae_{mk}.json"):
        return []
    cae = {k: v for k, v in read_metrics(m / f"cae_{mk}.json").items() if not k.startswith("_")}
    out = ["### Conditional autoencoder: out-of-sample R^2 (%, monthly, expanding-window refits)", ""]
    for metric, label in (("r2_total", "total R^2, individual stocks"), ("r2_pred", "predictive R^2, individual stocks"),
                          ("r2_total_portfolios", "total R^2, managed portfolios")):
        table = pd.DataFrame({model: {f"K={k}": row[metric] for k, row in by_k.items()} for model, by_k in cae.items()}).T
        table = table.reindex(columns=sorted(table.columns, key=lambda c: int(c[2:])))
        table.index.name = label
        out += [markdown_table(table, pct=list(table.columns)), ""]
    if m.exists(f"cae_claims_{mk}.json"):
        cl = read_metrics(m / f"cae_claims_{mk}.json")
        for key, title in (("r2_total", "total"), ("r2_pred", "predictive")):
            if cl.get(key):
                out += [f"Does a beta network beat the linear baselines ({title} R^2; K counted where its seeds' 95% "
                        "interval and every seed lie above / below the baseline):", "",
                        _table_from_metrics(cl[key], index_name="network vs baseline"), ""]
    out += [f"CA0-CA3: ensembles of `cae.n_seeds` seeds (seed-mean predictions); \"(untrained)\" rows: the same seeds' "
            f"initial weights on the same refits (zero epochs). [notebook](notebooks/40_conditional_autoencoder_{mk}.ipynb)", ""]
    return out + _figures(rd, f"cae_{mk}/r2_by_k.png")


def sharpe_section(m: "_Current", rd: Path, mk: str) -> list[str]:
    """Sections 50-52 (Sharpe ratio): networks' validation gains, the covariance network's forecasts, test-window
    backtests, verdicts."""
    out: list[str] = []
    if m.exists(f"sharpe_nets_{mk}.json"):
        nets = {k: v for k, v in read_metrics(m / f"sharpe_nets_{mk}.json").items() if not k.startswith("_")}
        cols = ["valid_sharpe", "lo", "hi", "untrained", "gain", "gain_lo", "gain_hi", "best_epochs"]
        out += ["### Sharpe-ratio networks: validation Sharpe (2015-01 .. 2017-03), trained vs untrained", "",
                _table_from_metrics({k: {c: v.get(c) for c in cols} for k, v in nets.items()}, floatfmt=".2f",
                                    index_name="network"), "",
                f"[notebook](notebooks/50_sharpe_networks_{mk}.ipynb)", ""]
    if m.exists(f"sharpe_covnet_{mk}.json"):
        cov = read_metrics(m / f"sharpe_covnet_{mk}.json")
        tr = cov.get("training", {})
        cols = ["gmv_vol", "gmv_long_vol", "bias_gmv", "qlike_gmv", "bias_random_mean", "qlike_random"]
        out += ["### Covariance-prediction network: daily forecasts on the test window (the section's 50 stocks)", "",
                f"Validation score (-loss) trained {_num(tr, 'valid_score')} vs untrained {_num(tr, 'untrained')} (gain "
                f"{_num(tr, 'gain')}, seed interval {_num(tr, 'gain_lo')} .. {_num(tr, 'gain_hi')}; best epochs "
                f"{tr.get('best_epochs', '')}).", "",
                _table_from_metrics({k: {c: v.get(c) for c in cols} for k, v in cov.get("forecast", {}).items()},
                                    floatfmt=".3f", pct=["gmv_vol", "gmv_long_vol"], index_name="route (daily GMV, held 1 day)"),
                "", f"[notebook](notebooks/51_covariance_network_{mk}.ipynb)", ""]
    if m.exists(f"sharpe_{mk}.json"):
        bt = {k: v for k, v in read_metrics(m / f"sharpe_{mk}.json").items() if not k.startswith("_")}
        cols = ["cum_return", "ann_return", "vol", "max_drawdown", "sharpe", "sharpe_lo", "sharpe_hi", "calmar", "sortino",
                "turnover"]
        out += ["### Sharpe-ratio section: test-window backtests (2017-04-11 .. 2020-02-08; 21-day rebalancing, "
                "10% weight-change cap, costs)", "",
                _table_from_metrics({k: {c: v.get(c) for c in cols} for k, v in bt.items()}, floatfmt=".2f",
                                    pct=["cum_return", "ann_return", "vol", "max_drawdown", "turnover"], index_name="strategy"),
                ""]
    if m.exists(f"sharpe_claims_{mk}.json"):
        cl = read_metrics(m / f"sharpe_claims_{mk}.json")
        out += ["Verdicts (seed intervals; a deterministic reference has none):", ""]
        out += [f"- {q} **{a}**" for q, a in cl.get("answers", {}).items()] + [""]
        out += [f"[notebook](notebooks/52_portfolio_backtests_{mk}.ipynb)", ""]
    return out + _figures(rd, f"sharpe_{mk}/equity.png")


def diagnostics_section(m: "_Current", rd: Path, mk: str) -> list[str]:
    """Section 60 (factor diagnostics): one line per model, the transforms scored like Table 1, the findings."""
    if not m.exists(f"diagnostics_{mk}.json"):
        return []
    d = read_metrics(m / f"diagnostics_{mk}.json")
    overview = d.get("overview", {})
    test = d.get("windows", {}).get("test", ["", ""])
    out = [f"### Factor diagnostics over the test window ({test[0]} .. {test[1]})", "",
           _table_from_metrics(overview, floatfmt=".3f", pct=["share_ic_t_gt_2", "share_vif_gt_max", "evr_sum", "evr_country_sectors"],
                               index_name="model"), ""]
    tr = {f"{row} ({v})": vals for row, variants in d.get("transforms", {}).items() for v, vals in variants.items()}
    if tr:
        cols = ["n_factors", "r2", "gmv_vol", "gmv_long_vol", "bias_gmv", "qlike_gmv", "mean_vif", "mean_abs_t"]
        dec = d.get("windows", {}).get("decision", ["", ""])
        out += [f"Gram-Schmidt and adaptive selection (decided on {dec[0]} .. {dec[1]}), scored like Table 1:", "",
                _table_from_metrics({k: {c: v.get(c) for c in cols} for k, v in tr.items()}, floatfmt=".3f",
                                    pct=["r2", "gmv_vol", "gmv_long_vol"], index_name="model (variant)"), ""]
    out += [f"- {line}" for line in d.get("findings", [])] + [""]
    out += [f"[notebook](notebooks/60_factor_diagnostics_{mk}.ipynb)", ""]
    return out + _figures(rd, f"diagnostics_{mk}/factors.png")


def _figures(rd: Path, *names: str) -> list[str]:
    out: list[str] = []
    for fig in names:
        if (rd / "figures" / fig).exists():
            out += [f"![{fig}](figures/{fig})", ""]
    return out


#: Per-market sections of the summary, in study order; a new study section appends its own.
MARKET_SECTIONS: list[MarketSection] = [data_section, drm_section, evaluation_section, ablations_section, cae_section,
                                        sharpe_section, diagnostics_section]


def build_summary(*, params: Any, reports_dir: str | Path = "reports") -> str:
    """``reports/SUMMARY.md``: every table of the study from the metrics files, small figures and links.

    Each study section contributes its own part (:data:`MARKET_SECTIONS` per market, then the
    planted-factor check). Only files stamped with the current profile and params are used
    (:func:`riskstudy.provenance.stale_reason`); any other is left out and named at the top, with
    the reason, so results of two runs never mix.

    Parameters
    ----------
    params : riskstudy.config.Params
        The params of the run being summarised (markets, profile, and the stamps to match).
    reports_dir : path-like
        Holds ``metrics/``, ``timings/``, ``figures/`` and ``notebooks/``.
    """
    markets, profile = list(params.markets), params.profile
    rd = Path(reports_dir)
    m = _Current(rd / "metrics", params)
    out = [
        "# Study summary",
        "",
        f"Generated by the `summary` stage from `reports/metrics/*.json` (profile **{profile}**). "
        "Executed notebooks (with outputs) are committed under `reports/notebooks/*.ipynb`; "
        "their HTML renders are DVC outputs (`dvc repro`).",
        "",
    ]
    head = len(out)
    names = {"us": "US (S&P 500 constituents of 2021, survivorship-biased)", "cn": "China (CSI300, point-in-time)"}
    for mk in markets:
        out += [f"## {names.get(mk, mk)}", ""]
        for section in MARKET_SECTIONS:
            out += section(m, rd, mk)
    if m.exists("planted.json"):
        out.append(planted_section(rd))
    if m.stale:
        out[head:head] = ["**Left out: results written by another run** (rerun `dvc repro` to bring them up to date):", ""] + [
            f"- `metrics/{name}`: {why}" for name, why in sorted(m.stale.items())] + [""]
    return "\n".join(out) + "\n"


def planted_section(reports_dir: str | Path = "reports") -> str:
    """The planted-factor check as a markdown section (empty if not run)."""
    f = Path(reports_dir) / "metrics" / "planted.json"
    if not f.exists():
        return ""
    return "\n".join(["## Planted-factor check (synthetic market with known covariance)", "",
                      _table_from_metrics(read_metrics(f), floatfmt=".4f", index_name="model"), "",
                      "[notebook](notebooks/22_planted_factor_check.ipynb)", ""])
