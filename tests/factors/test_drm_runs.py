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
