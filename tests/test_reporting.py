"""Tests for riskstudy.reporting: metrics files and the study summary."""

from __future__ import annotations

import math
import re

from riskstudy.reporting import build_summary, read_metrics, write_metrics


def test_metrics_round_trip_turns_nan_into_null(tmp_path) -> None:
    path = write_metrics(tmp_path / "m" / "x.json", {"a": float("nan"), 1: [math.inf, 0.5]})
    assert read_metrics(path) == {"a": None, "1": [None, 0.5]}


def test_summary_fills_every_market_link_and_the_untrained_control(tmp_path) -> None:
    m = tmp_path / "metrics"
    for mk in ("us", "cn"):
        write_metrics(m / f"drm_training_{mk}.json", {
            "runs": {"drm_k10_s0": {}}, "train_seconds_total": 60.0, "peak_rss_mb": 1024.0,
            "valid_r2_mean": {10: 0.31}, "valid_r2_init_mean": {10: 0.30}})
        write_metrics(m / f"table1_{mk}.json", {
            "Market": {"r2": None, "gmv_vol": 0.15, "gmv_long_vol": 0.15},
            "DRM": {"r2": 0.38, "gmv_vol": 0.09, "gmv_long_vol": 0.094},
            "DRM untrained": {"r2": 0.37, "gmv_vol": 0.092, "gmv_long_vol": 0.095}})
    text = build_summary(markets=["us", "cn"], profile="default", reports_dir=tmp_path)
    assert not re.search(r"\{\w+\}", text), "an unformatted placeholder is left in the summary"
    for mk in ("us", "cn"):
        assert f"(notebooks/21_risk_model_evaluation_{mk}.html)" in text
        assert f"(notebooks/20_deep_risk_model_{mk}.html)" in text
    assert text.count("the same networks before training: K=10: 30.00%") == 2
    assert text.count("| DRM untrained | 37.0% | 9.2% | 9.5% |") == 2
