"""The ``sharpe_data`` stage: the Sharpe section's 50-stock inputs of one market.

    python -m riskstudy.studies.sharpe_data --params params.yaml --market us

reads the market through the study's own builder (:func:`riskstudy.data.prepare.build_market`) with
``sharpe.start``/``sharpe.end`` (and, in the US, ``sharpe.panel_top_n``) in place of the data
section's, and writes ``<sharpe.data_dir>/<market>/inputs_<rule>.npz`` for both universe rules
(:func:`riskstudy.sharpe.inputs.inputs_of`).
"""

from __future__ import annotations

import argparse
import logging
import time

from riskstudy.config import MARKETS, Params, load_params
from riskstudy.data.prepare import build_market
from riskstudy.sharpe.data import SharpeInputs
from riskstudy.sharpe.inputs import inputs_of, market_dir, section

log = logging.getLogger(__name__)


def prepare(params: Params, market: str) -> dict[str, SharpeInputs]:
    """Build and save the inputs of both universe rules of ``market`` (module docstring)."""
    cfg = section(params)
    data = params.data
    if market == "us":
        data = data.model_copy(update={"us": data.us.model_copy(update={"start": cfg.start["us"], "end": cfg.end,
                                                                         "top_n": cfg.panel_top_n})})
    else:
        data = data.model_copy(update={"cn": data.cn.model_copy(update={"start": cfg.start["cn"], "end": cfg.end})})
    md = build_market(params.model_copy(update={"data": data}), market)
    out = inputs_of(cfg, md.panel, md.benchmark)
    for rule, x in out.items():
        x.save(market_dir(params, market) / f"inputs_{rule}.npz")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build the Sharpe section's inputs of one market (a DVC stage).")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--market", required=True, choices=list(MARKETS))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    t0 = time.perf_counter()
    for rule, x in prepare(load_params(args.params), args.market).items():
        log.info("%s %s: %d stocks x %d days (%s .. %s): %s", args.market, rule, x.shape[1], x.shape[0],
                 x.dates[0].date(), x.dates[-1].date(), ", ".join(x.instruments[:10]) + " ...")
    log.info("sharpe inputs of %s written in %.0f s", args.market, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
