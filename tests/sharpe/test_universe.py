"""The 50-stock universe: point-in-time (nothing at or after the first test day moves it) vs the hindsight rule."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.data.synthetic import make_synthetic_market
from riskstudy.sharpe.universe import select_universe


@pytest.fixture(scope="module")
def panel():
    return make_synthetic_market(n_days=400, n_stocks=60, n_factors=2, n_sectors=3, seed=2).panel


def test_point_in_time_rule_ignores_the_test_window(panel):
    day = panel.dates[300]
    u = select_universe(panel, first_test_day=day, n=10, window=200)
    assert len(u) == 10 and len(set(u)) == 10
    dv = np.nanmean(panel["dollar_volume"][100:300], axis=0)
    eligible = panel.member[299] & np.isfinite(panel["ret"][100:300]).all(axis=0)  # members with full history
    assert 10 < eligible.sum() < 60
    expected = panel.instruments[np.argsort(-np.where(eligible, dv, -np.inf), kind="stable")[:10]]
    assert list(u) == list(expected)
    changed = panel.subset()
    changed.fields["dollar_volume"] = panel["dollar_volume"].copy()
    changed.fields["dollar_volume"][300:] *= np.random.default_rng(0).uniform(0, 100, (100, 60))
    assert list(select_universe(changed, first_test_day=day, n=10, window=200)) == list(u)


def test_hindsight_rule_picks_the_best_performers_and_errors(panel):
    day = panel.dates[300]
    u = select_universe(panel, first_test_day=day, n=5, rule="ex_post_return")
    total = np.expm1(np.nansum(np.log1p(panel["ret"][300:]), axis=0))
    assert set(u) == set(panel.instruments[np.argsort(-total)[:5]])
    with pytest.raises(ValueError, match="trading days before"):
        select_universe(panel, first_test_day=panel.dates[10], n=5, window=200)
    with pytest.raises(ValueError, match="only"):
        select_universe(panel, first_test_day=day, n=500, window=200)
