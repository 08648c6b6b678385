"""Table 1's evaluation pipeline: one rebalancing rule for every row, and inputs checked first (issue 9, points 7, 4c)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from riskstudy.config import RiskConfig, render_profile, validate_params
from riskstudy.data.panel import NUMERIC_FIELDS, Panel
from riskstudy.evaluation.risk_eval import (
    EvalWindow,
    check_drm_inputs,
    drm_input_files,
    evaluate_dense_estimator,
    evaluate_market,
)
from riskstudy.portfolio.optimize import gmv_long_only_dense
from riskstudy.risk.estimators import trailing_covariance

ROOT = Path(__file__).resolve().parents[2]


def _panel(*, T: int = 130, N: int = 25, seed: int = 0) -> Panel:
    """One-factor returns (T, N) with ~5% of the stock-days outside the universe."""
    rng = np.random.default_rng(seed)
    beta = rng.uniform(0.5, 1.5, N)
    ret = rng.standard_normal((T, 1)) * 0.01 * beta + rng.standard_normal((T, N)) * rng.uniform(0.005, 0.02, N)
    fields = {f: np.ones((T, N)) for f in NUMERIC_FIELDS}
    fields["ret"] = ret
    member = rng.uniform(size=(T, N)) > 0.05
    return Panel("us", pd.bdate_range("2015-01-01", periods=T), [f"S{i}" for i in range(N)], fields, member)


def test_dense_gmv_long_is_resolved_daily_under_the_default_profile():
    """Issue 9.7: the default profile's dense GMV+ used to be re-solved every 5th day with drifting weights.

    Every test day's GMV+ return must be that day's freshly solved dense GMV+ portfolio times the
    next day's returns (the rule of the factor-model rows).
    """
    risk = RiskConfig(**render_profile("default", ROOT / "profiles")["risk"]).model_copy(
        update={"estimator_window": 60, "n_random_portfolios": 2}
    )
    panel = _panel()
    window = EvalWindow(rows=slice(0, None), test=np.arange(70, 90))
    ev = evaluate_dense_estimator("Ledoit-Wolf", panel, window, method="ledoit_wolf", risk=risk)
    ret, mask = panel["ret"], panel.member
    expected = []
    for t in window.test:
        m = trailing_covariance(ret, t, method="ledoit_wolf", window=60, mask=mask)
        expected.append(np.nan_to_num(ret[t + 1, m.assets]) @ gmv_long_only_dense(m.covariance()))
    np.testing.assert_allclose(ev.gmv_long_returns.to_numpy(), expected, rtol=1e-6, atol=1e-9)
    assert len(ev.gmv_long_returns) == len(window.test)


def test_default_profile_has_no_singular_sample_covariance():
    """Issue 9.7: 252 days of ~300 stocks make a singular sample covariance; it is not a Table 1 row."""
    p = validate_params(render_profile("default", ROOT / "profiles"))
    assert "sample" not in p.risk.estimators
    assert "sample" not in RiskConfig().estimators
    assert not hasattr(p.risk, "dense_long_every")  # one rule for every row: nothing to configure


def test_dense_estimator_refuses_singular_sample_covariance():
    risk = RiskConfig(estimator_window=20, n_random_portfolios=0)  # 20 days, ~24 stocks: singular
    panel = _panel()
    with pytest.raises(ValueError, match="singular"):
        evaluate_dense_estimator("Sample cov", panel, EvalWindow(rows=slice(0, None), test=np.arange(70, 75)), method="sample", risk=risk)


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
