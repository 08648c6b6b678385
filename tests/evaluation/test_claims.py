"""One verdict rule for the study (issue 10): interval-level and seed-level readings agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskstudy.evaluation.claims import PAPER_CLAIMS, mean_ci, paper_claims, point, verdict


def test_an_interval_win_means_every_seed_beats_every_reference_seed():
    rng = np.random.default_rng(0)
    wins = 0
    for _ in range(2000):
        n = int(rng.integers(2, 6))
        a, b = rng.normal(rng.normal(0, 1), 1, n), rng.normal(0, 1, int(rng.integers(2, 6)))
        v = verdict(mean_ci(a), mean_ci(b))
        if v == "win":
            wins += 1
            assert a.min() > b.max()
        if v == "loss":
            assert a.max() < b.min()
        vp = verdict(mean_ci(a), point(b[0]))
        if vp == "win":
            assert a.min() > b[0]
    assert wins > 20  # the check above was exercised


def test_points_and_single_seeds():
    assert verdict(point(2.0), point(1.0)) == "win"
    assert verdict(point(1.0), point(1.0)) == "tie"
    assert verdict(point(1.0), point(2.0), higher_is_better=False) == "win"
    assert verdict(mean_ci([1.0]), point(0.0)) == "tie (too few seeds)"
    ci = mean_ci([1.0, 2.0, 3.0])
    assert ci["lo"] < 2.0 < ci["hi"] and ci["n"] == 3


def test_paper_claims_use_seed_intervals_for_seeded_rows():
    t1 = pd.DataFrame({"r2": {"FRM": 0.30, "SRM": 0.35, "DRM": 0.40, "DRM x2": 0.41},
                       "gmv_vol": {"FRM": 0.12, "SRM": 0.11, "DRM": 0.10, "DRM x2": 0.10},
                       "gmv_long_vol": {"FRM": 0.12, "SRM": 0.11, "DRM": 0.10, "DRM x2": 0.10}})
    seeds = pd.DataFrame({"model": ["DRM"] * 3 + ["DRM x2"] * 3, "seed": [0, 1, 2] * 2,
                          "r2": [0.399, 0.400, 0.401, 0.30, 0.50, 0.43],
                          "gmv_vol": [0.10] * 6, "gmv_long_vol": [0.10] * 6})
    out = paper_claims(type("R", (), {"table1": t1, "seeds": seeds})())
    assert len(out) == len(PAPER_CLAIMS)
    assert out.loc["DRM explains more variance than FRM", "verdict"] == "holds (3 seeds)"
    assert out.loc["DRM x2 explains more variance than DRM", "verdict"].startswith("within seed noise")
    assert out.loc["DRM GMV is less volatile than FRM's", "verdict"].startswith("holds")


def test_linear_claims_compare_with_seeded_probes_and_skip_rows_not_in_table1():
    from riskstudy.evaluation.claims import LINEAR_CLAIMS

    t1 = pd.DataFrame({"r2": {"DRM": 0.32, "DRM linear probe": 0.31, "DRM x2": 0.37, "DRM x2 linear probe": 0.36,
                              "PCA static": 0.35}})
    seeds = pd.DataFrame({"model": ["DRM"] * 3 + ["DRM linear probe"] * 3, "seed": [0, 1, 2] * 2,
                          "r2": [0.320, 0.321, 0.319, 0.310, 0.311, 0.309]})
    out = paper_claims(type("R", (), {"table1": t1, "seeds": seeds})(), LINEAR_CLAIMS)
    assert out.loc["DRM explains more variance than its linear probe", "verdict"] == "holds (3 seeds)"
    assert out.loc["DRM explains more variance than static training-window PCA", "verdict"] == "does not hold (3 seeds)"
    assert "DRM x2 explains more variance than static training-window PCA" not in out.index  # no "PCA static x2" row
    assert len(out) == 3
