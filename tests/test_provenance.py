"""Tests for riskstudy.provenance: stamps name the writing stage's params, so staleness is exact."""

from pathlib import Path

import pytest

from riskstudy.config import render_profile, validate_params
from riskstudy.provenance import section_hash, stage_params, stale_reason, stamp

ROOT = Path(__file__).resolve().parents[1]
#: The network settings every ablation run reads from ``drm`` (the rest of a run is set by its matrix or ``ablations``).
ABL_NET = ["drm.hidden_size", "drm.num_layers", "drm.attn_dropout", "drm.rho", "drm.lr", "drm.batch_days",
           "drm.patience", "drm.gat_chunk_days", "drm.device"]


@pytest.fixture
def raw() -> dict:
    return validate_params(render_profile("default", ROOT / "profiles")).model_dump(mode="json", by_alias=True)


@pytest.mark.parametrize(("path", "expected"), [
    ("reports/metrics/data_us.json", ["paths", "split", "data.us"]),
    ("reports/metrics/table1_cn.json", ["split", "risk", "style", "srm", "dense", "drm.n_factors", "drm.k_double", "drm.seeds", "cae",
                                        "evaluation"]),
    ("reports/metrics/drm_training_us.json", ["split", "features", "drm"]),
    ("reports/metrics/planted.json", ["features", "drm", "risk", "srm", "planted"]),
    ("reports/metrics/ablations_us.json", ["ablations", "drm.lambda"]),
    ("data/ablations/us/lambda/lam0.1_s2.json", ["split", "features", "risk", "ablations", *ABL_NET, "drm.gat", "drm.horizon"]),
    ("data/ablations/cn/gat/nogat_k12_s0.json", ["split", "features", "risk", "ablations", *ABL_NET, "drm.lambda", "drm.horizon"]),
])
def test_a_results_file_maps_to_the_params_its_stage_reads(raw, path, expected):
    assert stage_params(path, raw, root=ROOT) == expected
    assert stage_params(f"/tmp/x/{path}", raw, root=ROOT) == expected  # a scratch tree laid out like the project


def test_an_undeclared_file_is_stamped_with_all_params(raw):
    assert stage_params("reports/metrics/nothing_declares_me.json", raw, root=ROOT) is None
    assert set(stamp("reports/metrics/nothing_declares_me.json", raw, root=ROOT)["params"]) == {"*"}


def test_only_a_change_the_stage_reads_makes_its_file_stale(raw):
    meta = stamp("reports/metrics/data_us.json", raw, root=ROOT)
    assert meta["profile"] == "default" and stale_reason(meta, raw) is None
    other = {**raw, "drm": {**raw["drm"], "lambda": 0.5}}
    assert stale_reason(meta, other) is None  # the data stage does not read drm
    other = {**raw, "data": {**raw["data"], "us": {**raw["data"]["us"], "top_n": 10}}}
    assert stale_reason(meta, other) == "params changed since it was written: data.us"
    assert "profile 'smoke'" in stale_reason({**meta, "profile": "smoke"}, raw)
    assert "no provenance stamp" in stale_reason(None, raw)


def test_section_hash_is_order_free_and_value_sensitive(raw):
    assert section_hash({"a": {"x": 1, "y": 2}}, "a") == section_hash({"a": {"y": 2, "x": 1}}, "a")
    assert section_hash({"a": {"x": 1}}, "a.x") != section_hash({"a": {"x": 2}}, "a.x")
