"""The section for one market: the metrics dict's schema (JSON-able, every model and K, seed spread), timings,
and the Fama-French rows, on a small synthetic market."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from riskstudy.cae.refit import METRICS
from riskstudy.cae.study import (first_oos_period, is_control, metrics_frame, run_market, untrained, verdict_counts,
                                 verdict_text, verdicts)
from riskstudy.cae.config import CAEConfig
from riskstudy.data.synthetic import make_synthetic_market

CONFIG = CAEConfig(models=["CA0", "CA1"], ks=[1, 2], n_seeds=2, max_epochs=2, patience=2, batch_periods=6,
                   lr=0.01, device="cpu", beta_window=42, idio_window=42, pca_min_periods=6, n_valid=4,
                   refit_every_months=6, ff_window=42, max_missing=None)


@pytest.fixture(scope="module")
def out():
    md = make_synthetic_market(n_days=700, n_stocks=30, n_factors=2, n_sectors=2, seed=5).market_data()
    rng = np.random.default_rng(0)
    cols = ["Mkt-RF", "SMB", "HML", "RMW", "CMA"]
    f = pd.DataFrame(0.01 * rng.standard_normal((700, 5)), index=md.panel.dates, columns=cols)
    params = SimpleNamespace(cae=CONFIG, split=SimpleNamespace(valid_start=md.panel.dates[480].date()))
    # 33 months: mom36m never exists, so every period would fail the default max_missing
    return run_market(params, md, ff={"FF3": f[cols[:3]], "FF5": f})


def test_metrics_schema(out):
    m = out["metrics"]
    json.dumps(out)  # the whole result is JSON-able
    assert set(m) == {"CA0", "CA1", "CA0 (untrained)", "CA1 (untrained)", "IPCA", "PCA", "FF3", "FF5"}
    assert set(m["CA1"]) == set(m["IPCA"]) == set(m["CA1 (untrained)"]) == {"1", "2"}
    assert set(m["FF3"]) == {"3"} and set(m["FF5"]) == {"5"}
    for name, by_k in m.items():
        for row in by_k.values():
            assert all(isinstance(row[x], float) and row[x] <= 1.0 for x in METRICS)
            assert ("seeds" in row) == name.startswith("CA")
    assert m["CA0"]["2"]["seeds"]["r2_total"]["n"] == 2
    frame = metrics_frame(m)
    assert len(frame) == 2 * 6 + 2 and {"r2_total_min", "r2_pred_max"} <= set(frame.columns)


def test_untrained_controls_are_the_initial_weights(out):
    """The control is a different model from the trained one (it never took a step) and is scored on the same
    stock-periods with the same seeds; without ``controls`` it is absent."""
    m = out["metrics"]
    assert untrained("CA1") == "CA1 (untrained)" and is_control("CA1 (untrained)") and not is_control("CA1")
    for k in ("1", "2"):
        assert m["CA1 (untrained)"][k]["seeds"]["r2_total"]["n"] == 2
        assert m["CA1 (untrained)"][k]["r2_total"] != m["CA1"][k]["r2_total"]
    assert out["info"]["controls"] and out["timings"]["untrained"] > 0


def test_timings_and_info(out):
    t, info = out["timings"], out["info"]
    assert {"characteristics", "CA0", "CA1", "IPCA", "PCA", "FF", "untrained", "total"} <= set(t)
    assert t["total"] >= sum(v for k, v in t.items() if k != "total") - 1e-6
    assert info["n_oos_periods"] == sum(r["n_predicted"] for r in info["refits"])
    assert info["first_oos_period_end"] == info["refits"][0]["period_end"]  # the period ending then is the first scored
    assert all(0 < c <= 1 for c in info["ff_coverage"].values())
    assert set(info["epochs"]["CA1"]) == {"1", "2"} and all(1 <= e <= 2 for e in info["epochs"]["CA1"]["1"])


def test_first_oos_period():
    ch = SimpleNamespace(dates=pd.DatetimeIndex(["2014-11-28", "2014-12-31", "2015-01-30"]))
    assert first_oos_period(ch, "2015-01-01") == 1  # December's end: its label is January
    assert first_oos_period(ch, "2015-01-30") == 1
    with pytest.raises(ValueError):
        first_oos_period(ch, "2014-01-01")


def _metrics(seed_values, baseline):
    """A minimal metrics dict: CA1 with seeds at K = 1, IPCA and PCA as points."""
    from riskstudy.stats import mean_ci

    row = {m: float(np.mean(seed_values)) for m in METRICS} | {"seeds": {m: mean_ci(seed_values) for m in METRICS}}
    return {"CA1": {"1": row}, "IPCA": {"1": {m: baseline for m in METRICS}}, "PCA": {"1": {m: baseline - 1 for m in METRICS}}}


def test_verdicts_need_every_seed_above_the_baseline():
    v = verdicts(_metrics([0.30, 0.31, 0.32], 0.25)).set_index("vs")
    assert v.loc["IPCA", "outcome"] == "win" and v.loc["PCA", "outcome"] == "win"
    v = verdicts(_metrics([0.20, 0.31, 0.40], 0.25)).set_index("vs")  # one seed below: not a win
    assert v.loc["IPCA", "outcome"] == "tie"
    v = verdicts(_metrics([0.10, 0.11, 0.12], 0.25)).set_index("vs")
    assert v.loc["IPCA", "outcome"] == "loss" and v.loc["IPCA", "claim"] == "does not hold"


def test_verdicts_against_the_untrained_control_use_its_seed_interval():
    from riskstudy.stats import mean_ci

    m = _metrics([0.30, 0.31, 0.32], 0.25)
    ctl = lambda vals: {"1": {x: float(np.mean(vals)) for x in METRICS} | {"seeds": {x: mean_ci(vals) for x in METRICS}}}
    v = verdicts(m | {"CA1 (untrained)": ctl([0.20, 0.21, 0.22])}).set_index("vs")
    assert v.loc["CA1 (untrained)", "outcome"] == "win" and v.loc["CA1 (untrained)", "baseline"] == pytest.approx(0.21)
    # the control's own seeds overlap the network's: its mean alone (0.27) would call this a win
    v = verdicts(m | {"CA1 (untrained)": ctl([0.22, 0.27, 0.32])}).set_index("vs")
    assert v.loc["CA1 (untrained)", "outcome"] == "tie"


def test_verdict_counts_and_text():
    v = pd.concat([verdicts(_metrics([0.30, 0.31, 0.32], 0.25)), verdicts(_metrics([0.10, 0.11, 0.12], 0.25))])
    counts = verdict_counts(v).set_index("vs")
    assert counts.loc["IPCA", ["win", "tie", "loss"]].tolist() == [1, 0, 1]
    text = verdict_text(counts.reset_index(), market="US", metric="total R^2")
    assert "CA1 vs IPCA: above by more than seed noise at 1 of 2 K, within noise at 0, below at 1" in text
    assert verdict_counts(verdicts({})).empty


def test_verdicts_on_the_run(out):
    v = verdicts(out["metrics"])
    assert set(v.model) == {"CA0", "CA1"} and set(v.vs) == {"IPCA", "PCA", "CA0 (untrained)", "CA1 (untrained)"}
    assert len(v) == 2 * 2 * 3 and (v[v.vs.map(is_control)].vs == v[v.vs.map(is_control)].model.map(untrained)).all()
    assert (v.seed_lo <= v.seed_mean).all() and (v.seed_mean <= v.seed_hi).all()
