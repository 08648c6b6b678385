"""Table 1 for a market: no singular sample-covariance row, and inputs checked first (issue 9, points 7, 4c)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from riskstudy.config import RiskConfig, render_profile, validate_params
from riskstudy.evaluation.risk_eval import check_drm_inputs, drm_input_files, evaluate_market

ROOT = Path(__file__).resolve().parents[2]


def test_default_profile_has_no_singular_sample_covariance():
    """Issue 9.7: 252 days of ~300 stocks make a singular sample covariance; it is not a Table 1 row."""
    p = validate_params(render_profile("default", ROOT / "profiles"))
    assert "sample" not in p.risk.estimators
    assert "sample" not in RiskConfig().estimators
    assert not hasattr(p.risk, "dense_long_every")  # one rule for every row: nothing to configure


class _NoData:
    """Stands for MarketData: anything beyond the market tag means computation started."""

    panel = SimpleNamespace(market="us")

    def __getattr__(self, name):  # pragma: no cover - reaching it fails the test
        raise AssertionError(f"evaluate_market touched md.{name} before checking its inputs")


def test_evaluate_market_checks_every_drm_output_first(tmp_path):
    """Issue 9.4c: missing DRM outputs fail at once, naming the files and the stage to run."""
    params = validate_params(render_profile("smoke", ROOT / "profiles"))
    d = params.drm
    files = drm_input_files(params, tmp_path)
    assert len(files) == 2 * len(d.seeds) + 2
    assert {f.name for f in files} >= {f"drm_k{d.n_factors}_untrained.npz", f"drm_k{d.k_double}_untrained.npz"}
    files[0].write_bytes(b"")  # the first trained run exists, the rest (untrained controls included) do not
    with pytest.raises(FileNotFoundError) as err:
        evaluate_market(params, _NoData(), models_dir=tmp_path)
    msg = str(err.value)
    assert "dvc repro drm@us" in msg
    assert files[0].name not in msg
    for f in files[1:]:
        assert f.name in msg
    for f in files[1:]:
        f.write_bytes(b"")
    check_drm_inputs(params, tmp_path, market="us")  # all present: no error
