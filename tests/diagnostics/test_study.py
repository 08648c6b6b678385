"""The diagnostics section for one market on a synthetic panel: it reads what the scoring stage stored,
its transforms go through the one pipeline, and Gram-Schmidt keeps R^2 while making the factors orthogonal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from riskstudy.config import ConfigError, Params, render_profile
from riskstudy.data.synthetic import make_synthetic_market
from riskstudy.diagnostics.quality import Selected
from riskstudy.diagnostics.study import diagnosed_rows, findings, market_diagnostics
from riskstudy.evaluation.pipeline import save_scores, score_model, scores_path
from riskstudy.evaluation.registry import get, register, unregister
from riskstudy.factors.base import FactorModel, ModelSpec, Run
from riskstudy.reporting import _clean

ROOT = Path(__file__).resolve().parents[2]


class Planted(FactorModel):
    """The planted style exposures known at the close of t, a noise factor and a near-copy of the first."""

    def __init__(self, market) -> None:
        x = market.exposures[..., :2]
        nxt = np.full(x.shape, np.nan)
        nxt[:-1] = x[1:]
        rng = np.random.default_rng(1)
        noise = rng.normal(size=x.shape[:2])
        dup = nxt[..., 0] + 0.05 * rng.normal(size=x.shape[:2])
        self.x = np.concatenate([nxt, noise[..., None], dup[..., None]], axis=2)

    def fit(self, md, *, train_rows, valid_rows=None):
        self.names_ = ["p0", "p1", "noise", "p0_copy"]
        return self

    def exposures(self, md, *, rows):
        return self.x[rows]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diag")
    market = make_synthetic_market(n_days=420, n_stocks=40, n_factors=2, n_sectors=2, seed=3)
    raw = render_profile("smoke", ROOT / "profiles")
    raw["split"] = market.split(train_end=199, valid_end=299).model_dump()
    raw["srm"] = {"window": 60, "refit_every": 21}
    raw["risk"] = {**raw["risk"], "min_history": 20, "n_random_portfolios": 3}
    raw["evaluation"] = {"models": ["srm", "planted"], "table2_model": "Planted"}
    raw["diagnostics"] = {"rows": ["SRM", "Planted"], "transform_rows": ["SRM", "Planted"], "min_stocks": 10,
                          "min_evr": 0.0, "min_t": 0.0}
    raw["paths"] = {**raw["paths"], "scores_dir": str(tmp / "scores"), "exposures_dir": str(tmp / "expo")}
    params = Params.model_validate(raw)
    md = market.market_data()
    register(ModelSpec("planted", runs=lambda p, mk: [Run("Planted", "Planted", factor_model=lambda: Planted(market))]))
    try:
        for key in params.evaluation.models:
            save_scores(score_model(get(key), params, md, market="us"), scores_path(params, "us", key))
        report = market_diagnostics(params, md, market="us")
        yield params, md, report
    finally:
        unregister("planted")


def test_metrics_schema_every_row_and_factor(scored):
    _, _, report = scored
    m = json.loads(json.dumps(_clean(report.metrics())))
    assert list(report.factors) == ["SRM", "Planted"]
    assert set(m["Planted"]) == {"p0", "p1", "noise", "p0_copy"}
    for row in ("SRM", "Planted"):
        for stats in m[row].values():
            assert {"ic", "ic_t", "icir", "vif", "t", "evr", "ic_20d", "ic_pearson", "mean_abs_t"} <= set(stats)
    assert set(m["transforms"]["Planted"]) == {"full", "gram_schmidt", "selected"}
    assert set(m["selection"]["Planted"]) == {"kept", "passed", "decision"}


def test_diagnostics_see_the_planted_structure(scored):
    _, _, report = scored
    t = report.factors["Planted"]
    assert t.loc["p0", "vif"] > 5 and t.loc["p0_copy", "vif"] > 5 and t.loc["p1", "vif"] < 2
    assert t.loc["noise", "mean_abs_t"] < t.loc["p1", "mean_abs_t"] and t.loc["noise", "evr"] < t.loc["p1", "evr"]
    assert report.summary.loc["Planted", "share_vif_gt_max"] == 0.5


def test_gram_schmidt_keeps_r2_and_makes_vif_one(scored):
    _, _, report = scored
    tr = report.transforms.astype(float)
    for row in ("SRM", "Planted"):
        full, gs = tr.loc[(row, "full")], tr.loc[(row, "gram_schmidt")]
        assert gs.r2 == pytest.approx(full.r2, rel=1e-7, abs=1e-9)  # same span with the intercept: same fit
        assert gs.mean_vif == pytest.approx(1.0, abs=1e-6)
    assert tr.loc[("Planted", "full"), "mean_vif"] > 5
    # the covariance is estimated on rotated factors: GMV may move, but stays a sane volatility
    assert 0 < tr.loc[("Planted", "gram_schmidt"), "gmv_vol"] < 2


def test_selection_drops_the_collinear_pair_and_is_scored(scored):
    _, _, report = scored
    kept = report.selection["Planted"]["kept"]
    assert "p1" in kept and not {"p0", "p0_copy"} <= set(kept)  # VIF > 5 on the decision window
    sel = report.transforms.loc[("Planted", "selected")]
    assert int(sel.n_factors) == len(kept) < 4 and np.isfinite(float(sel.r2))
    assert any("Gram-Schmidt keeps R^2" in line for line in findings(report))


def test_selected_decides_on_validation_rows_when_asked(scored):
    params, md, _ = scored
    market_x = diagnosed_rows(params, "us")[1].exposures
    market_x.fit(md, train_rows=np.arange(0))
    x = market_x.exposures_.copy()

    class Fixed(FactorModel):
        def __init__(self, x):
            self.x = x

        def fit(self, md, *, train_rows, valid_rows=None):
            self.names_ = ["p0", "p1", "noise", "p0_copy"]
            return self

        def exposures(self, md, *, rows):
            return self.x[rows]

    valid = np.arange(200, 300)
    a = Selected(Fixed(x), min_evr=0.0, min_t=0.0, decide_on="valid").fit(md, train_rows=np.arange(200), valid_rows=valid)
    y = x.copy()
    y[:200] = np.nan  # nothing outside the validation rows decides
    y[300:] = 0.0
    b = Selected(Fixed(y), min_evr=0.0, min_t=0.0, decide_on="valid").fit(md, train_rows=np.arange(200), valid_rows=valid)
    assert a.names_ == b.names_
    with pytest.raises(ValueError, match="no exposures on its train rows"):
        Selected(Fixed(y), decide_on="train").fit(md, train_rows=np.arange(150), valid_rows=valid)


def test_unknown_row_names_the_key(scored):
    params, _, _ = scored
    bad = params.model_copy(update={"diagnostics": params.diagnostics.model_copy(update={"rows": ["SRM", "Nope"]})})
    with pytest.raises(ConfigError, match=r"diagnostics\.rows.*\['Nope'\]"):
        diagnosed_rows(bad, "us")


def test_summary_section_reads_the_metrics_file(scored, tmp_path):
    from riskstudy.reporting import write_metrics
    from riskstudy.summary import _Current, diagnostics_section

    params, _, report = scored
    write_metrics(tmp_path / "metrics" / "diagnostics_us.json", report.metrics() | {"findings": findings(report)}, params=params)
    text = "\n".join(diagnostics_section(_Current(tmp_path / "metrics", params), tmp_path, "us"))
    assert "Factor diagnostics over the test window" in text and "Planted (gram_schmidt)" in text
    assert "Gram-Schmidt keeps R^2" in text
    assert diagnostics_section(_Current(tmp_path / "none", params), tmp_path, "us") == []
