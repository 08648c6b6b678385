"""Seed statistics shared by every layer: the Student-t interval and the verdict rule."""

from __future__ import annotations

import numpy as np
from scipy import stats as st

from riskstudy.stats import mean_ci, point, verdict


def test_mean_ci_matches_the_t_interval():
    v = [1.0, 2.0, 4.0]
    ci = mean_ci(v)
    half = st.t.ppf(0.975, 2) * np.std(v, ddof=1) / np.sqrt(3)
    np.testing.assert_allclose([ci["mean"], ci["lo"], ci["hi"]], [7 / 3, 7 / 3 - half, 7 / 3 + half])
    assert (ci["n"], ci["min"], ci["max"]) == (3, 1.0, 4.0)


def test_mean_ci_drops_non_finite_and_needs_two_values():
    assert mean_ci([1.0, np.nan, 3.0])["n"] == 2
    one = mean_ci([0.5])
    assert one["mean"] == 0.5 and np.isnan(one["lo"]) and np.isnan(one["hi"])
    assert np.isnan(mean_ci([])["mean"])


def test_verdict_rule():
    assert verdict(mean_ci([3.0, 3.1, 3.2]), point(2.0)) == "win"
    assert verdict(mean_ci([3.0, 3.1, 3.2]), point(2.0), higher_is_better=False) == "loss"
    assert verdict(mean_ci([1.0, 3.1, 5.2]), point(2.0)) == "tie"
    assert verdict(mean_ci([3.0]), point(2.0)) == "tie (too few seeds)"
