"""Config validation: unknown keys and bad values raise errors naming the key; profiles render valid params."""

from pathlib import Path

import pytest
import yaml

from riskstudy.config import ConfigError, deep_merge, load_params, render_profile, validate_params, write_profile

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def base() -> dict:
    return render_profile("default", ROOT / "profiles")


@pytest.mark.parametrize("name", ["default", "paper", "smoke"])
def test_profiles_are_valid(name):
    p = validate_params(render_profile(name, ROOT / "profiles"))
    assert p.profile == name


def test_committed_params_match_a_profile():
    p = load_params(ROOT / "params.yaml")
    assert p.profile in ("default", "paper", "smoke")


def test_unknown_key_is_named(base):
    base["drm"]["n_factor"] = 10
    with pytest.raises(ConfigError, match=r"unknown key 'drm\.n_factor'"):
        validate_params(base)


def test_unknown_section_is_named(base):
    base["trianing"] = {}
    with pytest.raises(ConfigError, match="unknown key 'trianing'"):
        validate_params(base)


@pytest.mark.parametrize(
    "path, value, key",
    [
        (("drm", "n_factors"), 9, "drm.n_factors"),
        (("drm", "lr"), -1.0, "drm.lr"),
        (("drm", "attn_dropout"), 1.5, "drm.attn_dropout"),
        (("data", "us", "top_n"), 0, "data.us.top_n"),
        (("data", "us", "on_error"), "ignore", "data.us.on_error"),
        (("ablations", "ks"), [10, 11], "ablations.ks"),
        (("features", "lags"), [10, 10], "features.lags"),
    ],
)
def test_bad_value_is_named(base, path, value, key):
    d = base
    for p in path[:-1]:
        d = d[p]
    d[path[-1]] = value
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_params(base)


@pytest.mark.parametrize(
    "change, msg",
    [
        ({"valid_start": "2014-06-01"}, "overlap"),
        ({"test_start": "2016-06-01"}, "overlap"),
        ({"train_start": "2015-06-01"}, "empty window"),
        ({"test_end": "2016-12-31"}, "empty window"),
    ],
)
def test_overlapping_or_empty_windows_raise(base, change, msg):
    base["split"].update(change)
    with pytest.raises(ConfigError, match=msg):
        validate_params(base)


def test_default_profile_needs_three_seeds(base):
    base["ablations"]["seeds"] = [0, 1]
    with pytest.raises(ConfigError, match="ablations.seeds needs at least 3 seeds"):
        validate_params(base)


def test_deep_merge_and_write_profile(tmp_path):
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
    out = write_profile("smoke", tmp_path / "params.yaml", ROOT / "profiles")
    raw = yaml.safe_load(out.read_text())
    assert raw["profile"] == "smoke" and raw["drm"]["max_epochs"] == 1
    assert load_params(out).data.us.top_n == 30


def test_ablation_markets_must_be_study_markets(base):
    base["markets"] = ["us"]
    base["ablations"]["markets"] = ["us", "cn"]
    with pytest.raises(ConfigError, match=r"ablations.markets \['cn'\] are not in markets"):
        validate_params(base)


def test_planted_market_size_is_validated(base):
    base["planted"] = {"n_days": 100}
    with pytest.raises(ConfigError, match="planted.n_days"):
        validate_params(base)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("lambdas", [0.01, -1], r"bad value for 'ablations\.lambdas'.*>= 0"),
    ("lambdas", [float("nan")], r"bad value for 'ablations\.lambdas'"),
    ("base_k", 9, r"bad value for 'ablations\.base_k'.*even"),
    ("base_k", 0, r"bad value for 'ablations\.base_k'"),
])
def test_ablation_values_that_cannot_work_are_named(base, key, value, message):
    base["ablations"][key] = value
    with pytest.raises(ConfigError, match=message):
        validate_params(base)


def test_drm_horizon_defaults_to_all_label_horizons_and_may_not_exceed_them(base):
    p = validate_params(base)
    assert p.drm.horizon is None and p.features.horizon == 20  # unset: the loss uses all 20 label horizons
    base["drm"]["horizon"] = 1  # the single-task ablation
    assert validate_params(base).drm.horizon == 1
    base["drm"]["horizon"] = 21
    with pytest.raises(ConfigError, match=r"drm\.horizon \(21\) exceeds features\.horizon \(20\)"):
        validate_params(base)


def test_cae_section_is_optional_and_typed(base):
    assert validate_params(base).cae is not None  # the default profile has one
    base.pop("cae")
    assert validate_params(base).cae is None
    base["cae"] = {"ks": [1, 3], "models": ["CA0", "CA1"], "frequency": "weekly"}
    cae = validate_params(base).cae
    assert cae.ks == [1, 3] and cae.hidden["CA1"] == [32] and cae.frequency == "weekly" and cae.n_seeds == 5


def test_cae_unknown_key_is_named(base):
    base["cae"] = {"n_seed": 5}
    with pytest.raises(ConfigError, match=r"unknown key 'cae\.n_seed'"):
        validate_params(base)


@pytest.mark.parametrize(("cae", "message"), [
    ({"ks": [0, 1]}, r"bad value for 'cae\.ks'"),
    ({"ks": [2, 2]}, r"bad value for 'cae\.ks'.*distinct"),
    ({"models": ["CA4"]}, r"bad value for 'cae\.models\.0'"),
    ({"frequency": "daily"}, r"bad value for 'cae\.frequency'"),
    ({"l1": -1.0}, r"bad value for 'cae\.l1'"),
    ({"hidden": {"CA0": []}}, r"cae\.hidden has no layer spec for models \['CA1', 'CA2', 'CA3'\]"),
    ({"hidden": {"CA0": [4], "CA1": [32], "CA2": [32, 16], "CA3": [32, 16, 8]}}, r"cae\.hidden\.CA0 must be \[\]"),
    ({"n_seeds": 3}, r"cae\.n_seeds needs at least 5"),
    ({"risk_model": "CA3", "hidden": {"CA0": [], "CA1": [32]}, "models": ["CA0", "CA1"]}, r"cae\.risk_model 'CA3' has no"),
    ({"max_missing": 1.5}, r"bad value for 'cae\.max_missing'"),
    ({"risk_k": 0}, r"bad value for 'cae\.risk_k'"),
])
def test_cae_bad_values_are_named(base, cae, message):
    base["cae"] = cae
    with pytest.raises(ConfigError, match=message):
        validate_params(base)


def test_section_classes_live_beside_their_code(base):
    from riskstudy.cae.config import CAEConfig
    from riskstudy.config import SECTIONS, section_class
    from riskstudy.sharpe.config import SharpeConfig

    from riskstudy.diagnostics.config import DiagnosticsConfig

    assert section_class("cae") is CAEConfig and section_class("sharpe") is SharpeConfig
    assert section_class("diagnostics") is DiagnosticsConfig
    assert set(SECTIONS) == {"cae", "sharpe", "diagnostics"}
    assert isinstance(validate_params(base).diagnostics, DiagnosticsConfig)
    base.pop("diagnostics")
    assert validate_params(base).diagnostics is None


@pytest.mark.parametrize("change, message", [
    ({"threshold": 0.1}, r"diagnostics\.threshold"),
    ({"horizons": [1, 1]}, r"diagnostics\.horizons"),
    ({"horizons": [0]}, r"diagnostics\.horizons"),
    ({"max_vif": 0.5}, r"diagnostics\.max_vif"),
    ({"decide_on": "test"}, r"diagnostics\.decide_on"),
    ({"gs_order": "random"}, r"diagnostics\.gs_order"),
    ({"transform_rows": ["Nope"]}, r"transform_rows \['Nope'\] are not in rows"),
])
def test_diagnostics_section_is_validated_by_key(base, change, message):
    base["diagnostics"] = change
    with pytest.raises(ConfigError, match=message):
        validate_params(base)
    base["diagnostics"] = {}
    assert validate_params(base).diagnostics.min_evr == 0.1


@pytest.mark.parametrize("change, message", [
    ({"n_stocks": 50, "typo": 1}, r"sharpe\.typo"),
    ({"test_start": "2014-01-01"}, r"sharpe\.valid_start .* must be before sharpe\.test_start"),
    ({"seq_len": 64}, r"multiple of sharpe\.nets\.patch"),
    ({"upper": 0.01}, r"cannot hold 50 weights"),
    ({"nets": {"networks": ["gru", "gru"]}}, r"sharpe\.nets\.networks"),
    ({"nets": {"seeds": [0, 1]}}, r"at least 3 seeds"),
    ({"nets": {"optimizer": "sgd"}}, r"sharpe\.nets\.optimizer"),
    ({"covnet": {"seeds": [0, 1]}}, r"sharpe\.covnet\.seeds needs at least 3 seeds"),
    ({"covnet": {"seeds": [0, 0, 1]}}, r"sharpe\.covnet\.seeds"),
    ({"covnet": {"n_factor": 6}}, r"sharpe\.covnet\.n_factor"),
    ({"covnet": {"day_stride": 0}}, r"sharpe\.covnet\.day_stride"),
])
def test_sharpe_section_errors_name_the_key(base, change, message):
    base["sharpe"] = {**base.get("sharpe", {}), **change}
    with pytest.raises(ConfigError, match=message):
        validate_params(base)


def test_cae_harness_k(base):
    assert validate_params(base).cae.harness_k() == max(validate_params(base).cae.ks)
    base["cae"]["risk_k"] = 3
    assert validate_params(base).cae.harness_k() == 3


def test_cae_device_resolves(base):
    import torch

    base["cae"] = {"device": "cpu"}
    assert validate_params(base).cae.resolved_device() == torch.device("cpu")
    base["cae"] = {"device": "not-a-device"}
    with pytest.raises(ConfigError, match=r"cae\.device"):
        validate_params(base)
