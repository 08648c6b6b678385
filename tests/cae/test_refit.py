"""Expanding-window out-of-sample evaluation: the schedule, no look-ahead (fit windows and corrupted futures),
the R^2 table's schema and seed spread."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from riskstudy.cae.planted import planted_panel
from riskstudy.cae.refit import (METRICS, complete_periods, earliest_first_oos, expanding_window_oos,
                                 periods_per_refit, prefix, refit_schedule, score_table)
from riskstudy.cae.config import CAEConfig
from riskstudy.stats import mean_ci

CONFIG = CAEConfig(n_seeds=2, max_epochs=2, patience=2, batch_periods=6, lr=0.01, device="cpu", pca_min_periods=6)
FIRST, EVERY, NVALID = 20, 6, 4


@pytest.fixture(scope="module")
def panel():
    ch, _ = planted_panel(n_periods=34, n_stocks=30, n_chars=3, n_factors=2, kind="linear", seed=3)
    ch.mask[-1], ch.R[-1] = False, np.nan  # as in real data: the last period end has no label
    return ch


def _run(ch):
    return expanding_window_oos(ch, config=CONFIG, first_oos=FIRST, refit_every=EVERY, n_valid=NVALID,
                                models=["CA0", "CA1"], ks=[1, 2])


@pytest.fixture(scope="module")
def result(panel):
    return _run(panel)


def test_schedule_fits_only_the_past(panel):
    ws = refit_schedule(panel, first_oos=FIRST, refit_every=EVERY, n_valid=NVALID)
    assert [(w.start, w.stop) for w in ws] == [(20, 26), (26, 32), (32, 33)]  # period 33 has no label
    for w in ws:
        assert w.fitted.max() < w.start and len(w.valid) == NVALID and w.valid.min() > w.train.max()
        np.testing.assert_array_equal(w.fitted, np.arange(w.start))  # expanding: every earlier period
    with pytest.raises(ValueError, match="min_train"):
        refit_schedule(panel, first_oos=8, n_valid=4, min_train=6)
    assert periods_per_refit(12, "monthly") == 12 and periods_per_refit(12, "weekly") == 52


def test_periods_with_a_missing_characteristic_are_not_fitted(panel):
    ch = replace(panel, missing=panel.missing.copy())
    ch.missing[:5, 1] = ch.member[:5].sum(1)  # characteristic 1 missing for every member of periods 0..4
    ch.missing[5, 2] = ch.member[5].sum() // 2  # half of them in period 5: still fitted
    assert (complete_periods(ch) == (np.arange(34) >= 5)).all() and complete_periods(ch, max_missing=None).all()
    ws = refit_schedule(ch, first_oos=FIRST, refit_every=EVERY, n_valid=NVALID, min_train=6)
    np.testing.assert_array_equal(ws[0].fitted, np.arange(5, FIRST))
    assert earliest_first_oos(ch, n_valid=4, min_train=6) == 15  # 5 + 6 + 4
    refit_schedule(ch, first_oos=15, n_valid=4, min_train=6)
    with pytest.raises(ValueError, match="min_train"):
        refit_schedule(ch, first_oos=14, n_valid=4, min_train=6)


def test_prefix_keeps_indices(panel):
    p = prefix(panel, 10)
    assert p.Z.shape == (10, 30, 3) and len(p.dates) == 10
    np.testing.assert_array_equal(p.R[:9], panel.R[:9])


def test_table_schema_and_seed_spread(panel, result):
    assert list(result.periods) == list(range(20, 33))
    assert set(result.table) == {"CA0", "CA1", "IPCA", "PCA"}
    for name, by_k in result.table.items():
        assert set(by_k) == {1, 2}
        assert result.total[name][1].shape == ((2 if name.startswith("CA") else 1), 13, 30)
        for row in by_k.values():
            assert all(np.isfinite(row[m]) and row[m] <= 1.0 for m in METRICS)
            if name.startswith("CA"):
                assert set(row["seeds"]) == set(METRICS)
                s = row["seeds"]["r2_total"]
                assert s["n"] == 2 and s["min"] <= s["mean"] <= s["max"] and s["lo"] <= s["mean"] <= s["hi"]
            else:
                assert "seeds" not in row
    assert result.table["IPCA"][2]["r2_total"] > 0.5  # the planted model is IPCA's; true K = 2
    # the table is the seed-mean predictions' score
    again = score_table(panel, result.periods, {"CA1": {2: result.total["CA1"][2].mean(0)}},
                        {"CA1": {2: result.predictive["CA1"][2].mean(0)}})
    assert again["CA1"][2]["r2_total"] == pytest.approx(result.table["CA1"][2]["r2_total"])
    assert set(result.timings) == {"CA0", "CA1", "IPCA", "PCA"}


def test_no_prediction_uses_data_at_or_after_its_period(panel, result):
    t = 23  # inside the first refit's out-of-sample window (20..25)
    rng = np.random.default_rng(9)
    bad = replace(panel, Z=panel.Z.copy(), R=panel.R.copy())
    bad.Z[t + 1:] = rng.uniform(-1, 1, bad.Z[t + 1:].shape)
    bad.R[t + 1:] = np.where(panel.mask[t + 1:], 10 * rng.standard_normal(bad.R[t + 1:].shape), np.nan)
    bad.R[t] = np.where(panel.mask[t], 10 * rng.standard_normal(panel.shape[1]), np.nan)  # only f_t sees R[t]
    other = _run(bad)
    i = t - FIRST
    for name in result.total:
        for k in (1, 2):
            a, b = result.total[name][k], other.total[name][k]
            np.testing.assert_allclose(a[:, :i], b[:, :i], rtol=1e-6, atol=1e-9)  # every period before t
            pa, pb = result.predictive[name][k], other.predictive[name][k]
            np.testing.assert_allclose(pa[:, :i + 1], pb[:, :i + 1], rtol=1e-6, atol=1e-9)  # predictive at t too
            assert not np.allclose(a[:, i + 1:], b[:, i + 1:])  # later periods did change


