"""Factor quality through the harness's regression, and the adaptive selection rule, on a planted market."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskstudy.data.synthetic import make_synthetic_market
from riskstudy.diagnostics.quality import Selected, factor_quality, select
from riskstudy.factors.base import FactorModel


@pytest.fixture(scope="module")
def market():
    sm = make_synthetic_market(n_days=300, n_stocks=80, n_factors=2, n_sectors=3, seed=4)
    style = [i for i, n in enumerate(sm.factor_names) if n.startswith("style")]
    x = np.full(sm.exposures[..., style].shape, np.nan)
    x[:-1] = sm.exposures[1:, :, style]  # B_{t+1} is known at the close of t (a function of characteristics[t])
    rng = np.random.default_rng(0)
    noise = rng.normal(size=x.shape[:2])
    dup = x[..., 0] + 1e-3 * rng.normal(size=x.shape[:2])
    return sm.market_data(), np.concatenate([x, noise[..., None], dup[..., None]], axis=2)


def test_quality_ranks_planted_factors_above_noise_and_flags_the_duplicate(market):
    md, x = market
    q = factor_quality(md.panel, x, slice(0, 300), names=["s0", "s1", "noise", "dup"])
    assert set(q.columns) >= {"evr", "vif", "t", "mean_abs_t", "pct_abs_t_gt_2"}
    assert q.loc["noise", "mean_abs_t"] < q.loc["s1", "mean_abs_t"]
    assert q.loc["noise", "evr"] < q.loc["s1", "evr"]
    assert q.loc["dup", "vif"] > 100 and q.loc["s0", "vif"] > 100 and q.loc["s1", "vif"] < 5
    assert (q.evr >= 0).all() and 0 <= q.attrs["evr_other"] <= 1


def test_select_rule_and_fallback():
    q = pd.DataFrame({"evr": [0.2, 0.05, 0.3, 0.15], "vif": [1.2, 1.0, 9.0, 2.0], "t": [2.5, 3.0, 4.0, -2.1]},
                     index=["a", "b", "c", "d"])
    assert select(q) == ["a", "d"]  # b: EVR too small, c: VIF too large; d: |t| counts
    assert select(q, min_t=5.0) == ["c"]  # none passes: the largest EVR is kept
    assert select(q, min_evr=0.0, max_vif=10.0, min_t=0.0) == ["a", "b", "c", "d"]


class _Fixed(FactorModel):
    def __init__(self, x, names):
        self.x, self.names = x, names

    def fit(self, md, *, train_rows, valid_rows=None):
        self.names_ = list(self.names)
        return self

    def exposures(self, md, *, rows):
        return self.x[rows]


def test_selected_decides_on_training_rows_only(market):
    md, x = market
    m = Selected(_Fixed(x, ["s0", "s1", "noise", "dup"]), min_evr=0.0, max_vif=50.0, min_t=0.0).fit(md, train_rows=np.arange(150))
    assert "dup" not in m.names_ and "s0" not in m.names_ and "s1" in m.names_  # collinear pair fails max_vif
    assert m.exposures(md, rows=np.arange(200, 210)).shape == (10, 80, len(m.names_))
    y = x.copy()
    y[150:, :, 2] = np.nan  # whatever happens after the training rows cannot change the decision
    m2 = Selected(_Fixed(y, ["s0", "s1", "noise", "dup"]), min_evr=0.0, max_vif=50.0, min_t=0.0).fit(md, train_rows=np.arange(150))
    assert m2.names_ == m.names_
    pd.testing.assert_frame_equal(m2.quality_, m.quality_)
