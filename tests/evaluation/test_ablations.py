"""Ablation aggregation: interval arithmetic, verdicts, schema."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskstudy.config import render_profile, validate_params
from riskstudy.evaluation.ablations import aggregate
from riskstudy.evaluation.claims import mean_ci, verdict

ROOT = Path(__file__).resolve().parents[2]


def test_mean_ci_and_ties():
    ci = mean_ci([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0 and ci["lo"] < 2.0 < ci["hi"]
    half = 4.302652729911275 * 1.0 / np.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    assert ci["hi"] - 2.0 == pytest.approx(half)
    a, b = mean_ci([1.0, 1.1, 0.9]), mean_ci([2.0, 2.1, 1.9])
    assert verdict(b, a) == "win" and verdict(a, b) == "loss"
    assert verdict(mean_ci([1.0, 2.0, 3.0]), mean_ci([1.5, 2.5, 3.5])) == "tie"
    assert verdict(a, b, higher_is_better=False) == "win"


def test_aggregate_schema():
    params = validate_params(render_profile("smoke", ROOT / "profiles"))
    rows = []
    for k in params.ablations.ks:
        for g in (True, False):
            rows.append({"group": "gat", "k": k, "gat": g, "lambda": 0.01, "horizon": 20, "seed": 0, "r2": 0.1,
                         "gmv_vol": 0.1, "vif": [1.0] * k, "autocorr": 0.9, "autocorr_daily": {}, "valid_r2": 0.32, "valid_r2_init": 0.30})
    for lam in params.ablations.lambdas:
        rows.append({"group": "lambda", "k": 4, "gat": True, "lambda": lam, "horizon": 20, "seed": 0, "r2": 0.1,
                     "gmv_vol": 0.1, "vif": [2.0, 1.0, 1.0, 1.0], "autocorr": 0.9, "autocorr_daily": {},
                     "valid_r2": 0.30, "valid_r2_init": 0.31})
    for h in (1, 20):
        rows.append({"group": "task", "k": 4, "gat": True, "lambda": 0.01, "horizon": h, "seed": 0, "r2": 0.1,
                     "gmv_vol": 0.1, "vif": [1.0] * 4, "autocorr": 0.5 + h / 100, "autocorr_daily": {},
                     "valid_r2": 0.30 + h / 1000, "valid_r2_init": 0.30})
    res = aggregate(pd.DataFrame(rows), params)
    assert set(res["gat"]) == set(params.ablations.ks)
    assert res["lambda"][params.ablations.lambdas[0]]["vif_mean"] == pytest.approx(1.25)
    assert res["multitask"]["multi"]["autocorr"] == pytest.approx(0.7)
    assert res["multitask"]["single"]["autocorr"] == pytest.approx(0.51)
    learned = res["learning"]
    assert learned["gat"]["gain"]["mean"] == pytest.approx(0.02) and learned["gat"]["n_gain_gt_0"] == learned["gat"]["n_runs"]
    assert learned["lambda"]["min_gain"] == pytest.approx(-0.01) and learned["lambda"]["n_gain_gt_0"] == 0
    assert learned["task"]["gain"]["min"] == pytest.approx(0.001)
