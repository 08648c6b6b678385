"""Build, store and reload the prepared panel of one market (the ``data`` stage).

``build_market`` reads raw data from the configured location, cleans it,
selects the universe and prints one console line per market (files read,
skipped, repaired; :func:`stage_line`); ``save_market`` writes
``<prepared_dir>/<market>/`` (panel parquet with its cleaning log, benchmark
returns). Every later stage reads it back with :func:`riskstudy.data.market.load_market`,
which needs none of the builders here.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from riskstudy import paths
from riskstudy.config import Params
from riskstudy.data.cleaning import REPAIR_ACTIONS, SKIP_ACTION, log_summary
from riskstudy.data.market import MarketData, prepared_dir
from riskstudy.data.panel import Panel

log = logging.getLogger(__name__)


def build_market(params: Params, market: str) -> MarketData:
    """Read and clean the raw data of ``market`` (``"us"`` or ``"cn"``) into a :class:`MarketData`.

    Prints :func:`stage_line` to the process's ``stderr`` (shown by ``dvc repro``) and logs it.
    """
    if market == "us":
        from riskstudy.data.us import load_us_panel, us_benchmark_returns, us_csv_files

        cfg = params.data.us
        raw = paths.raw_dir(params.paths.raw_dir, require="sp500_daily")
        panel = load_us_panel(
            raw,
            start=str(cfg.start),
            end=str(cfg.end),
            top_n=cfg.top_n,
            universe_window=cfg.universe_window,
            min_coverage=cfg.min_coverage,
            rebalance_every=cfg.rebalance_every,
            max_ffill=cfg.max_ffill,
            jump_threshold=cfg.jump_threshold,
            max_daily_move=cfg.max_daily_move,
            max_price=cfg.max_price,
            max_tail_gap=cfg.max_tail_gap,
            on_error=cfg.on_error,
            tickers=cfg.tickers,
        )
        n_read = len(us_csv_files(raw, cfg.tickers))
        line = stage_line(market, panel.cleaning_log, n_read=n_read, unit="files",
                          log_path=prepared_dir(params, market) / "cleaning_log.parquet")
        bench = us_benchmark_returns(panel)
        name = "US universe, dollar-volume weighted (index proxy)"
    elif market == "cn":
        from riskstudy.data.cn import cn_benchmark_returns, load_cn_panel

        cfg = params.data.cn
        raw = paths.raw_dir(params.paths.raw_dir, require="cn_qlib_csi300")
        panel = load_cn_panel(
            raw, start=str(cfg.start), end=str(cfg.end), index=cfg.index, benchmark=cfg.benchmark,
            on_error=cfg.on_error, max_daily_move=cfg.max_daily_move, max_price=cfg.max_price,
        )
        n_skipped = log_summary(panel.cleaning_log)["skipped"]
        line = stage_line(market, panel.cleaning_log, n_read=panel.shape[1] + n_skipped, unit="instruments",
                          log_path=prepared_dir(params, market) / "cleaning_log.parquet")
        if cfg.max_instruments is not None and panel.shape[1] > cfg.max_instruments:
            # smoke profile: keep the most frequently listed members (deterministic)
            keep = np.sort(np.argsort(-panel.member.sum(0), kind="stable")[: cfg.max_instruments])
            panel = panel.subset(cols=keep)
        bench = cn_benchmark_returns(raw, start=str(cfg.start), end=str(cfg.end), code=cfg.benchmark,
                                     max_daily_move=cfg.max_daily_move)
        name = f"CSI300 index ({cfg.benchmark})"
    else:
        raise ValueError(f"unknown market {market!r}; expected one of us, cn")
    bench = bench.reindex(panel.dates)
    log.info(line)
    # the process's own stderr: inside a papermill kernel sys.stderr goes to the notebook only,
    # sys.__stderr__ also reaches the console of `dvc repro`
    print(line, file=sys.__stderr__ or sys.stderr, flush=True)
    return MarketData(panel=panel, benchmark=bench.rename("benchmark"), benchmark_name=name)


def stage_line(market: str, cleaning_log: pd.DataFrame, *, n_read: int, unit: str, log_path: str | Path) -> str:
    """The data stage's console line for one market.

    ``data us: 505 files read, 1 skipped [empty_file 1], 6 repaired [bad_split 5, spike 2],
    2 kept with a warning [bad_split 2] (log: <log_path>)``: counts are distinct instruments
    (:func:`~riskstudy.data.cleaning.log_summary`), each followed, when non-zero, by its rules
    with their numbers of log rows (rows of skipped instruments count under "skipped" only).
    """
    counts = log_summary(cleaning_log)
    parts = [f"{n_read} {unit} read"]
    if len(cleaning_log):
        inst = cleaning_log["instrument"].astype(str)
        skipped = inst[cleaning_log["action"] == SKIP_ACTION].unique()
        kept_rows = ~inst.isin(skipped)
    for key, actions, label in ((SKIP_ACTION, (SKIP_ACTION,), "skipped"), ("repaired", REPAIR_ACTIONS, "repaired"),
                                ("kept", ("kept",), "kept with a warning")):
        text = f"{counts[key]} {label}"
        if counts[key]:
            rows = cleaning_log["action"].isin(actions) & (True if key == SKIP_ACTION else kept_rows)
            rules = cleaning_log.loc[rows, "rule"].value_counts().sort_index()
            text += " [" + ", ".join(f"{r} {n}" for r, n in rules.items()) + "]"
        parts.append(text)
    return f"data {market}: " + ", ".join(parts) + f" (log: {log_path})"


def universe_summary(panel: Panel) -> pd.DataFrame:
    """Members per day, instruments with a price, and the cross-sectional return spread."""
    ret = np.where(panel.member, panel["ret"], np.nan)
    return pd.DataFrame(
        {
            "members": panel.member.sum(1),
            "priced": np.isfinite(panel["close"]).sum(1),
            "ret_cs_std": np.nanstd(np.where(np.isfinite(ret).any(1, keepdims=True), ret, 0.0), 1),
        },
        index=panel.dates,
    )


def data_metrics(data: MarketData, params: Params) -> dict:
    """Headline numbers of the data stage (written to ``reports/metrics/data_<market>.json``)."""
    p = data.panel
    members = p.member.sum(1)
    out = {
        "n_days": int(p.shape[0]),
        "n_instruments": int(p.shape[1]),
        "first_date": str(p.dates[0].date()),
        "last_date": str(p.dates[-1].date()),
        "members_mean": float(members.mean()),
        "members_min": int(members.min()),
        "members_max": int(members.max()),
        "cleaning_actions": {str(k): int(v) for k, v in p.cleaning_log.groupby("rule").size().items()},
        "benchmark_ann_vol": float(data.benchmark.std() * np.sqrt(252)),
    }
    for name in ("train", "valid", "test"):
        lo, hi = params.split.window(name)
        rows = p.date_slice(lo, hi)
        out[f"{name}_days"] = int(rows.stop - rows.start)
    if p.market == "us":  # an independent check of the benchmark: Kenneth French's market return
        from riskstudy.data.famafrench import FF_DIR, benchmark_check, read_fama_french

        out["benchmark_vs_ff_market"] = benchmark_check(
            data.benchmark, read_fama_french(paths.raw_dir(params.paths.raw_dir, require=FF_DIR)))
    return out
