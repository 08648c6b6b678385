"""The ``score_<model>`` stages: one registered model on one market through the one pipeline.

    python -m riskstudy.studies.score --params params.yaml --market us --model frm

writes ``<scores_dir>/<market>/<model>.pkl`` (:func:`~riskstudy.evaluation.pipeline.scores_path`) and
the model's exposures to ``<exposures_dir>/<market>/<model>/`` (models trained in their own
stage, like the DRM, are read from that stage's store instead).
"""

from __future__ import annotations

import argparse
import logging
import time

from riskstudy.config import MARKETS, load_params
from riskstudy.data.market import load_market
from riskstudy.evaluation.pipeline import save_scores, score_model, scores_path
from riskstudy.evaluation.registry import get

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Score one registered model on one market (a DVC stage).")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--market", required=True, choices=list(MARKETS))
    ap.add_argument("--model", required=True, help="a registered model key (evaluation.models)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    params = load_params(args.params)
    spec = get(args.model)
    t0 = time.perf_counter()
    md = load_market(params, args.market)
    scores = score_model(spec, params, md, market=args.market)
    out = save_scores(scores, scores_path(params, args.market, args.model))
    for s in scores:
        r2 = "-" if s.table1["r2"] is None else f"{100 * s.table1['r2']:.2f}%"
        log.info("%s %s: R2 %s, GMV vol %.2f%%, GMV+ vol %.2f%%", args.market, s.label, r2,
                 100 * s.table1["gmv_vol"], 100 * s.table1["gmv_long_vol"])
    log.info("wrote %s (%d runs, %.0f s)", out, len(scores), time.perf_counter() - t0)


if __name__ == "__main__":
    main()
