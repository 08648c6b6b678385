"""Tests for riskstudy.reporting: metrics files, their provenance stamps and the study summary."""

from __future__ import annotations

import math
import re
from pathlib import Path

from riskstudy.config import render_profile, validate_params
from riskstudy.reporting import read_meta, read_metrics, write_metrics, write_timings
from riskstudy.summary import build_summary

ROOT = Path(__file__).resolve().parents[1]


def _params(profile: str = "default", **drm):
    raw = render_profile(profile, ROOT / "profiles")
    raw["drm"].update(drm)
    return validate_params(raw)


def test_metrics_round_trip_turns_nan_into_null(tmp_path) -> None:
    path = write_metrics(tmp_path / "m" / "x.json", {"a": float("nan"), 1: [math.inf, 0.5]})
    assert read_metrics(path) == {"a": None, "1": [None, 0.5]}
    assert read_meta(path) is None


def _write_market(m: Path, mk: str, params) -> None:
    write_metrics(m / f"drm_training_{mk}.json", {
        "runs": {"drm_k10_s0": {}}, "valid_r2_mean": {10: 0.31}, "valid_r2_init_mean": {10: 0.30},
        "probe_valid_r2_mean": {10: 0.305}, "gain_min": {10: 0.004}}, params=params)
    write_timings(m.parent / "timings" / f"drm_training_{mk}.json", {"train_seconds_total": 60.0, "peak_rss_mb": 1024.0})
    write_metrics(m / f"table1_{mk}.json", {
        "Market": {"r2": None, "gmv_vol": 0.15, "gmv_long_vol": 0.15},
        "DRM": {"r2": 0.38, "gmv_vol": 0.09, "gmv_long_vol": 0.094},
        "DRM untrained": {"r2": 0.37, "gmv_vol": 0.092, "gmv_long_vol": 0.095}}, params=params)
    write_metrics(m / f"claims_{mk}.json", {
        "paper": {"DRM explains more variance than FRM": {"ours": "38.00% vs 30.00%", "verdict": "holds (3 seeds)"}},
        "training": {}, "linear": {"DRM explains more variance than its linear probe": {
            "ours": "38.00% vs 37.50%", "verdict": "within seed noise (3 seeds)"}}}, params=params)


def test_summary_fills_every_market_link_and_the_untrained_control(tmp_path) -> None:
    params = _params()
    for mk in ("us", "cn"):
        _write_market(tmp_path / "reports" / "metrics", mk, params)
    text = build_summary(params=params, reports_dir=tmp_path / "reports")
    assert not re.search(r"\{\w+\}", text), "an unformatted placeholder is left in the summary"
    for mk in ("us", "cn"):
        assert f"(notebooks/21_risk_model_evaluation_{mk}.ipynb)" in text
        assert f"(notebooks/20_deep_risk_model_{mk}.ipynb)" in text
    assert text.count("the same networks before training: K=10: 30.00%") == 2
    assert text.count("smallest gain over a seed's own untrained network: K=10: +0.40 points") == 2
    assert text.count("their linear probes (same inputs, head, loss and recipe): K=10: 30.50%") == 2
    assert text.count("runs in 1.0 min") == 2 and text.count("peak memory of the stage 1.00 GiB") == 2
    assert text.count("| DRM untrained | 37.0% | 9.2% | 9.5% |") == 2
    assert text.count("| DRM explains more variance than FRM | 38.00% vs 30.00% | holds (3 seeds) |") == 2
    assert text.count("| DRM explains more variance than its linear probe | 38.00% vs 37.50% | within seed noise (3 seeds) |") == 2
    assert "Did training help?" not in text  # an empty claim list is left out
    assert "Left out" not in text


def test_summary_refuses_files_of_another_profile_or_changed_params(tmp_path) -> None:
    smoke, default = _params("smoke"), _params()
    _write_market(tmp_path / "reports" / "metrics", "us", smoke)
    _write_market(tmp_path / "reports" / "metrics", "cn", default)
    text = build_summary(params=default, reports_dir=tmp_path / "reports")
    assert "`metrics/table1_us.json`: written by profile 'smoke'" in text
    assert text.count("| DRM untrained |") == 1  # only China's table is shown
    # a parameter the DRM stage reads changed: its metrics are stale, the evaluation's are not
    text = build_summary(params=_params(lr=0.005), reports_dir=tmp_path / "reports")
    assert "`metrics/drm_training_cn.json`: params changed since it was written: drm" in text
    assert "table1_cn.json" not in text.split("## ")[1]  # Left-out list is before the first market section


def test_summary_cae_section_renders_r2_by_k_and_verdict_counts(tmp_path) -> None:
    params = _params()
    m = tmp_path / "reports" / "metrics"
    row = {"r2_total": 0.2, "r2_pred": 0.01, "r2_total_portfolios": 0.5, "r2_pred_portfolios": 0.02}
    write_metrics(m / "cae_us.json", {"CA1": {"1": row, "2": row | {"r2_total": 0.25}}, "IPCA": {"1": row, "2": row}}, params=params)
    write_metrics(m / "cae_claims_us.json", {"r2_total": {"CA1 vs IPCA": {"win": 1, "tie": 1, "loss": 0}}, "r2_pred": {}},
                  params=params)
    text = build_summary(params=params, reports_dir=tmp_path / "reports")
    assert "| CA1 | 20.0% | 25.0% |" in text and "| IPCA | 20.0% | 20.0% |" in text
    assert "| CA1 vs IPCA | 1 | 1 | 0 |" in text
    assert "(notebooks/40_conditional_autoencoder_us.ipynb)" in text and "Left out" not in text
