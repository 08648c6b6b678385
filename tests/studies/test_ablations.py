"""Ablation runs: grid expansion into DVC stages, CLI defaults from the params file."""

import subprocess
import sys
from pathlib import Path

import yaml

from riskstudy.config import render_profile, validate_params
from riskstudy.studies import ablations
from riskstudy.studies.ablations import expected_stages

ROOT = Path(__file__).resolve().parents[2]


def test_grid_expands_to_the_expected_dvc_stages():
    params = validate_params(render_profile("default", ROOT / "profiles"))
    dvc = Path(sys.executable).parent / "dvc"
    out = subprocess.run([str(dvc), "stage", "list", "--name-only"], cwd=ROOT, capture_output=True, text=True, check=True)
    stages = {s for s in out.stdout.split() if s.startswith("abl_")}
    committed = validate_params(__import__("yaml").safe_load((ROOT / "params.yaml").read_text()))
    assert stages == set(expected_stages(committed))
    a = params.ablations
    # complete grid: GAT on/off x K x seeds, every lambda x seeds, both objectives x seeds, per market
    per_market = 2 * len(a.ks) * len(a.seeds) + len(a.lambdas) * len(a.seeds) + 2 * len(a.seeds)
    assert len(expected_stages(params)) == per_market * len(params.markets)


def test_cli_reads_unswept_settings_from_the_params_file(tmp_path, monkeypatch):
    raw = render_profile("smoke", ROOT / "profiles")
    raw["drm"]["lambda"] = 0.5
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    seen = {}

    def fake_run(params, **kw):
        seen.update(kw)
        return {"r2": 0.0, "gmv_vol": 0.0, "vif": [1.0], "autocorr": 0.0, "seconds": 0.0}

    monkeypatch.setattr(ablations, "run_ablation", fake_run)
    out = tmp_path / "run.json"
    ablations.main(["--params", str(path), "--market", "us", "--seed", "3", "--out", str(out)])
    params = validate_params(raw)
    assert seen == {"market": "us", "seed": 3, "k": params.ablations.base_k, "gat": True, "lam": 0.5,
                    "horizon": params.features.horizon}
    ablations.main(["--params", str(path), "--market", "us", "--k", "6", "--nogat", "--lam", "0.1", "--horizon", "1",
                    "--seed", "0", "--out", str(out)])
    assert seen == {"market": "us", "seed": 0, "k": 6, "gat": False, "lam": 0.1, "horizon": 1}
