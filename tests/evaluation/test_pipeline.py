"""The one pipeline: any registered factor model is scored and shown beside the built-in ones
without touching the pipeline code (issue 10), inputs are checked first, and the assembly
reproduces what each model's stage scored."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pydantic import Field

from riskstudy.config import ConfigError, Params, _Strict, render_profile, validate_params
from riskstudy.data.synthetic import make_synthetic_market
from riskstudy.evaluation.pipeline import (
    assemble,
    check_required,
    exposures_path,
    market_report,
    save_scores,
    score_model,
    scores_path,
)
from riskstudy.evaluation.registry import BUILTIN, get, register, registered, unregister
from riskstudy.factors.base import FactorModel, ModelSpec, Run
from riskstudy.factors.drm import input_files

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- a toy model, added as a reader would
class ToyConfig(_Strict):
    """The toy's config section: how many days the exposures lag the truth."""

    lag: int = Field(0, ge=0)


class ToyParams(Params):
    toy: ToyConfig = ToyConfig()


class TrueExposures(FactorModel):
    """The synthetic market's planted style exposures (known at the close of t for the returns of t + 1;
    its sector dummies are the pipeline's own sector columns)."""

    def __init__(self, market, config: ToyConfig, *, n_style: int = 2) -> None:
        self.market, self.config, self.n_style = market, config, n_style

    def fit(self, md, *, train_rows, valid_rows=None):
        self.names_ = [f"true_{i}" for i in range(self.n_style)]
        return self

    def exposures(self, md, *, rows):
        x = self.market.exposures[..., : self.n_style]
        nxt = np.full(x.shape, np.nan)
        nxt[:-1 - self.config.lag] = x[1 + self.config.lag:]
        return nxt[rows]


@pytest.fixture(scope="module")
def synthetic():
    market = make_synthetic_market(n_days=420, n_stocks=40, n_factors=2, n_sectors=2, seed=3)
    raw = render_profile("smoke", ROOT / "profiles")
    raw["split"] = market.split(train_end=199, valid_end=299).model_dump()
    raw["srm"] = {"window": 60, "refit_every": 21}
    raw["dense"] = {"window": 80, "estimators": ["ledoit_wolf"], "poet_k": 2}
    raw["risk"] = {**raw["risk"], "min_history": 20, "n_random_portfolios": 3}
    raw["evaluation"] = {"models": ["srm", "toy", "dense"], "table2_model": "Toy"}
    raw["toy"] = {"lag": 0}
    params = ToyParams.model_validate(raw)
    return market, market.market_data(), params


@pytest.fixture
def toy(synthetic):
    market, _, _ = synthetic
    spec = register(ModelSpec("toy", runs=lambda params, mk: [Run("Toy", "Toy", factor_model=lambda: TrueExposures(market, params.toy))]))
    yield spec
    unregister("toy")


def test_a_registered_toy_model_appears_in_table1_and_the_forecast_table(synthetic, toy, tmp_path):
    """Issue 10: one module, one config section, one registration; the pipeline is untouched."""
    _, md, params = synthetic
    params = params.model_copy(update={"paths": params.paths.model_copy(update={
        "scores_dir": str(tmp_path / "scores"), "exposures_dir": str(tmp_path / "expo")})})
    for key in params.evaluation.models:
        save_scores(score_model(get(key), params, md, market="us"), scores_path(params, "us", key))
    report = market_report(params, md, market="us")
    assert list(report.table1.index) == ["Market", "SRM", "SRM x2", "PCA static", "PCA static x2", "Toy", "Ledoit-Wolf"]
    assert list(report.forecast.index) == ["SRM", "SRM x2", "PCA static", "PCA static x2", "Toy", "Ledoit-Wolf"]
    t1 = report.table1.astype(float)
    assert np.isfinite(t1.loc["Toy", ["r2", "gmv_vol", "gmv_long_vol"]]).all()
    # the planted exposures explain the returns better than PCA with as many factors
    assert t1.loc["Toy", "r2"] > t1.loc["SRM", "r2"]
    assert 0 < report.forecast.loc["Toy", "bias_gmv"] < 5
    assert list(report.table2.index) == ["true_0", "true_1"]  # evaluation.table2_model = "Toy"
    assert report.r2_daily.columns.tolist() == ["SRM", "SRM x2", "PCA static", "PCA static x2", "Toy"]
    # the exposure store holds exactly what was scored
    z = np.load(exposures_path(params, "us", "toy", "Toy"))
    rows = z["rows"]
    np.testing.assert_array_equal(z["exposures"], TrueExposures(synthetic[0], params.toy).fit(md, train_rows=rows).exposures(md, rows=rows))
    # assembling again from the score files gives the same report (the evaluation stage only assembles)
    again = assemble([s for k in params.evaluation.models for s in pd.read_pickle(scores_path(params, "us", k))], md=md, params=params)
    pd.testing.assert_frame_equal(again.table1, report.table1)


def test_unknown_model_names_the_config_key():
    with pytest.raises(ConfigError, match="evaluation.models.*'nope'"):
        get("nope")
    assert set(BUILTIN) <= set(registered())
    for key in BUILTIN:
        assert get(key).key == key


def test_a_taken_key_is_not_silently_replaced(toy):
    with pytest.raises(ValueError, match="already registered"):
        register(ModelSpec("toy", runs=lambda p, m: []))
    with pytest.raises(ValueError, match="already registered"):
        register(ModelSpec("frm", runs=lambda p, m: []))


def test_a_run_is_either_a_factor_model_or_a_dense_estimator():
    with pytest.raises(ValueError, match="exactly one"):
        Run("x", "x")
    with pytest.raises(ValueError, match="exactly one"):
        Run("x", "x", factor_model=lambda: None, dense_method="poet")


class _NoData:
    """Stands for MarketData: anything beyond the market tag means computation started."""

    panel = SimpleNamespace(market="us")

    def __getattr__(self, name):  # pragma: no cover - reaching it fails the test
        raise AssertionError(f"score_model touched md.{name} before checking its inputs")


def test_drm_scoring_checks_every_drm_output_first(tmp_path):
    """Issue 9.4c: missing DRM outputs fail at once, naming the files and the stage to run."""
    raw = render_profile("smoke", ROOT / "profiles")
    raw["paths"] = {**raw["paths"], "models_dir": str(tmp_path)}
    params = validate_params(raw)
    d = params.drm
    files = input_files(params, "us")
    assert len(files) == 2 * 2 * len(d.seeds) + 2  # K and 2K: network and linear probe per seed, then the controls
    assert {f.name for f in files} >= {f"drm_k{d.n_factors}_s{d.seeds[0]}_linear.npz"}
    assert {f.name for f in files} >= {f"drm_k{d.n_factors}_untrained.npz", f"drm_k{d.k_double}_untrained.npz"}
    files[0].parent.mkdir(parents=True, exist_ok=True)
    files[0].write_bytes(b"")  # the first trained run exists, the rest (untrained controls included) do not
    with pytest.raises(FileNotFoundError) as err:
        score_model(get("drm"), params, _NoData(), market="us")
    msg = str(err.value)
    assert "dvc repro drm@us" in msg
    assert files[0].name not in msg
    for f in files[1:]:
        assert f.name in msg
    for f in files[1:]:
        f.write_bytes(b"")
    check_required(get("drm"), params, "us")  # all present: no error


def test_seed_rows_are_means_over_seeds_with_spreads(synthetic):
    """Rows with seeds: mean and sample sd over seeds; the first seed stands for the row elsewhere."""
    from riskstudy.evaluation.pipeline import RunScore

    _, md, params = synthetic

    def score(label, group, seed, r2):
        return RunScore("m", label, group, seed, {"r2": r2, "gmv_vol": 0.1 + r2, "gmv_long_vol": 0.2},
                        {"bias_gmv": r2, "bias_band": [0.9, 1.1]}, r2=pd.Series([r2]))

    rep = assemble([score("A", "A", None, 0.3), score("B s0", "B", 0, 0.4), score("B s1", "B", 1, 0.6)], md=md, params=params)
    assert rep.table1.loc["B", "r2"] == pytest.approx(0.5)
    assert rep.table1.loc["B", "r2_sd"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert rep.forecast.loc["B", "bias_gmv"] == pytest.approx(0.4)  # first seed
    assert "bias_band" not in rep.forecast.columns
    assert rep.seeds.model.tolist() == ["B", "B"] and rep.seeds.seed.tolist() == [0, 1]
    assert np.isnan(rep.table1.loc["A"].get("r2_sd", np.nan))
