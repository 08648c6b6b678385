"""Tests for riskstudy.factors.drm_runs: one run's validated config from the params."""

from pathlib import Path

import pytest

from riskstudy.config import ConfigError, DRMParams, render_profile, validate_params
from riskstudy.factors.drm_runs import config_tag, model_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def params():
    return validate_params(render_profile("default", ROOT / "profiles"))


def test_model_config_is_the_drm_section_with_the_run_settings(params) -> None:
    cfg = model_config(params, n_factors=4, seed=2, gat=False, lambda_=0.1, horizon=1)
    assert isinstance(cfg, DRMParams)
    assert (cfg.n_factors, cfg.seed, cfg.gat, cfg.lambda_, cfg.horizon) == (4, 2, False, 0.1, 1)
    same = {k: v for k, v in cfg.model_dump().items() if k not in {"n_factors", "seed", "gat", "lambda_", "horizon"}}
    assert same == {k: v for k, v in params.drm.model_dump().items() if k in same}
    assert model_config(params, n_factors=10, seed=0).horizon is None  # all label horizons of features.horizon
    assert config_tag(model_config(params, n_factors=10, seed=0)) != config_tag(model_config(params, n_factors=10, seed=1))


@pytest.mark.parametrize(("overrides", "key"), [
    ({"n_factors": 5}, "drm.n_factors"), ({"horizon": 21}, "drm.horizon"), ({"lambda_": -1.0}, "drm.lambda"),
    ({"bogus": 1}, "drm.bogus"),
])
def test_model_config_validates_the_overrides_once(params, overrides, key) -> None:
    kw = {"n_factors": 4, "seed": 0, **overrides}
    with pytest.raises(ConfigError, match=key):
        model_config(params, **kw)


def test_deep_risk_factor_model_is_the_study_run_behind_the_interface() -> None:
    """fit/exposures give exactly the exposures of the study's own path (build_dataset, split_days, train_and_predict)."""
    import numpy as np

    from riskstudy.data.synthetic import make_synthetic_market
    from riskstudy.factors.drm_runs import DeepRiskFactorModel, build_dataset, split_days, train_and_predict, untrained_run

    market = make_synthetic_market(n_days=620, n_stocks=24, n_factors=2, n_sectors=2, seed=1)
    panel, d = market.panel, market.panel.dates
    raw = render_profile("smoke", ROOT / "profiles")
    raw["split"] = market.split(train_end=349, valid_end=479).model_dump()
    raw["drm"] = {**raw["drm"], "train_start": None, "train_days_per_epoch": 32}
    params = validate_params(raw)
    md = market.market_data()
    rows = {n: np.arange(len(d))[panel.date_slice(*params.split.window(n))] for n in ("train", "valid")}
    ds = build_dataset(md, params)
    days = split_days(ds, params)
    ref = train_and_predict(ds, days, model_config(params, n_factors=4, seed=0))
    model = DeepRiskFactorModel(params, n_factors=4, seed=0).fit(md, train_rows=rows["train"], valid_rows=rows["valid"])
    assert model.names_ == ["drm_1", "drm_2", "drm_3", "drm_4"]
    pred = np.arange(rows["valid"][0], len(d))
    x = model.exposures(md, rows=pred)
    assert x.shape == (len(pred), panel.shape[1], 4)
    np.testing.assert_array_equal(x[np.searchsorted(pred, days.predict)], ref.exposures)
    control = DeepRiskFactorModel(params, n_factors=4, seed=0, trained=False).fit(md, train_rows=rows["train"], valid_rows=rows["valid"])
    np.testing.assert_array_equal(control.exposures(md, rows=pred)[np.searchsorted(pred, days.predict)],
                                  untrained_run(ds, days, model_config(params, n_factors=4, seed=0)).exposures)
    with pytest.raises(ValueError, match="valid_rows"):
        DeepRiskFactorModel(params, n_factors=4, seed=0).fit(md, train_rows=rows["train"])
