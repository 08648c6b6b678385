import pytest

from riskstudy.config import ConfigError, DRMParams
from riskstudy.studies.drm_protocol import RECIPES


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_is_a_valid_drm_section(name):
    cfg = DRMParams().with_overrides(**RECIPES[name])
    assert cfg.burn_in_days == 250


def test_a_bad_recipe_names_the_key():
    with pytest.raises(ConfigError, match="drm.rho_train"):
        DRMParams().with_overrides(rho_train=1.5)
