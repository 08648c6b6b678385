"""The covariance route: covariance networks beside their untrained selves, FRM/SRM/Ledoit-Wolf forecasts on the
section's stocks without look-ahead, their portfolios in the one backtester, and the verdicts on them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from riskstudy.config import RiskConfig, SRMConfig, render_profile, validate_params
from riskstudy.risk.estimators import DenseRiskModel, ledoit_wolf_covariance
from riskstudy.sharpe.data import SharpeInputs
from riskstudy.sharpe.routes import (COVNET, COVNET_UNTRAINED, DRM, DRM_UNTRAINED, SEEDED_ROUTES, classical_models,
                                     covnet_metrics, covnet_table, drm_routes, load_routes, route_tables, save_routes,
                                     train_covnets)
from riskstudy.sharpe.strategies import (equal_weight, from_models, ledoit_wolf_min_variance, ledoit_wolf_model,
                                         max_sharpe_portfolio, min_variance)
from riskstudy.sharpe.study import ROUTE_RULES, run_backtests, sharpe_tests, verdicts

from .conftest import tiny_config

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tiny_inputs, tmp_path_factory):
    x, rows, _ = tiny_inputs
    cfg = tiny_config().model_copy(update={"data_dir": str(tmp_path_factory.mktemp("sharpe")), "cov_window": 60,
                                           "mu_window": 60})
    cfg = cfg.model_copy(update={"covnet": cfg.covnet.model_copy(update={
        "n_factors": 2, "hidden_size": 8, "batch_days": 16, "day_stride": 2, "max_epochs": 2, "patience": 2,
        "seeds": [0, 1], "lr": 1e-2})})
    raw = render_profile("smoke", ROOT / "profiles")
    raw["drm"] = {**raw["drm"], "train_start": None, "train_days_per_epoch": 32, "seeds": [0]}
    smoke = validate_params(raw)
    params = SimpleNamespace(sharpe=cfg, risk=RiskConfig(n_random_portfolios=5, min_history=30),
                             srm=SRMConfig(window=60, refit_every=5), features=smoke.features, drm=smoke.drm,
                             split=smoke.split)
    runs = train_covnets(params, "us", x)
    drm, fits = drm_routes(params, x, rows.test)
    classical = {**drm, **classical_models(params, x, rows.test)}
    return params, x, rows, runs, classical, fits


def test_every_seed_has_a_trained_and_an_untrained_forecast_on_every_test_row(setup):
    params, x, rows, runs, _, _ = setup
    assert [r.seed for r in runs] == [0, 1]
    for r in runs:
        assert set(r.models) == set(r.models_untrained) == set(rows.test.tolist())
        t = int(rows.test[0])
        assert np.linalg.eigvalsh(r.models[t].covariance()).min() > 0
        assert not np.allclose(r.models[t].covariance(), r.models_untrained[t].covariance())
        assert r.strategy == COVNET and r.best_epoch >= 0 and np.isfinite(r.valid_score_untrained)
    t = covnet_table(runs)
    assert t.loc[COVNET, "seeds"] == 2 and t.loc[COVNET, "gain lo"] <= t.loc[COVNET, "gain"] <= t.loc[COVNET, "gain hi"]


def test_classical_forecasts_are_psd_and_see_no_later_return(setup):
    params, x, rows, _, classical, fits = setup
    assert set(classical) == {DRM, DRM_UNTRAINED, "FRM", "SRM", "Ledoit-Wolf"}
    assert len(classical[DRM]) == len(classical[DRM_UNTRAINED]) == len(params.drm.seeds) == len(fits)
    assert {"best_epoch", "valid_r2", "valid_r2_untrained", "seconds"} <= set(fits.columns)
    days = rows.test[:3]
    for name, tables in classical.items():
        for table in tables:
            assert set(table) == set(rows.test.tolist())
            m = table[int(days[0])]
            assert m is not None and np.linalg.eigvalsh(m.covariance()).min() > 0, name
    t = int(days[0])
    assert not np.allclose(classical[DRM][0][t].covariance(), classical[DRM_UNTRAINED][0][t].covariance())
    poisoned = x.returns.copy()
    poisoned[days[-1] + 1:] = 0.2
    y = SharpeInputs(**{**x.__dict__, "returns": poisoned})
    again = {**drm_routes(params, y, days)[0], **classical_models(params, y, days)}
    for name in classical:
        for t in days:
            assert np.allclose(classical[name][0][int(t)].covariance(), again[name][0][int(t)].covariance()), (name, t)


def test_routes_round_trip_and_metrics(setup, tmp_path):
    params, x, rows, runs, classical, fits = setup
    routes = route_tables(runs, classical)
    assert list(routes) == [COVNET, COVNET_UNTRAINED, DRM, DRM_UNTRAINED, "FRM", "SRM", "Ledoit-Wolf"]
    assert len(routes[COVNET]) == 2
    save_routes(tmp_path / "r.pkl", routes)
    again = load_routes(tmp_path / "r.pkl")
    assert list(again) == list(routes) and [len(v) for v in again.values()] == [len(v) for v in routes.values()]
    quality = pd.DataFrame({"gmv_vol": [0.1, 0.2], "gmv_vol_lo": [0.05, np.nan]}, index=pd.Index([COVNET, "FRM"], name="route"))
    m = covnet_metrics(runs, fits, quality)
    assert set(m) == {"training", "drm", "forecast"} and m["forecast"]["FRM"] == {"gmv_vol": 0.2}
    assert isinstance(m["training"]["valid_score"], float) and set(m["drm"]) == {"0"} and "seconds" not in m["drm"]["0"]


def test_rules_on_any_forecast():
    rng = np.random.default_rng(3)
    past = 0.01 * rng.standard_normal((120, 6)) + 0.001
    lw = ledoit_wolf_model(60)(119, past)
    assert np.allclose(lw.covariance(), ledoit_wolf_covariance(past[-60:]))
    table = {119: lw, 120: None}
    assert np.allclose(min_variance(from_models(table))(119, past), ledoit_wolf_min_variance(60)(119, past))
    assert np.allclose(min_variance(from_models(table))(120, past), equal_weight(120, past))  # no forecast: equal weight
    sub = DenseRiskModel(np.cov(past[-60:, 2:].T), np.array([2, 3, 4, 5]))  # a forecast over 4 of the 6 stocks
    w = max_sharpe_portfolio(from_models({119: sub}), 60)(119, past)
    assert np.allclose(w[:2], 0) and np.isclose(w.sum(), 1) and w.min() >= -1e-9
    with pytest.raises(KeyError, match="no risk model at row 5"):
        min_variance(from_models(table))(5, past)


def test_covariance_routes_in_the_backtester_and_the_verdicts(setup):
    params, x, rows, runs, classical, fits = setup
    cfg = params.sharpe
    routes = route_tables(runs, classical)
    bt = run_backtests(params, {cfg.universe_rule: x}, [], routes=routes)
    for route, tables in routes.items():
        for rule in ROUTE_RULES:
            name = f"{rule} ({route})"
            assert len(bt.runs[name]) == len(tables) and ((name in bt.seeded) == (route in SEEDED_ROUTES))
            for run in bt.runs[name]:
                for w in run.decisions.values():
                    assert w.min() >= cfg.lower - 1e-9 and w.max() <= cfg.upper + 1e-9 and np.isclose(w.sum(), 1)
    v = verdicts(bt, cfg, sharpe_tests(bt, cfg)).set_index("question")
    assert v.loc["is CovNet's min-variance portfolio less volatile than Ledoit-Wolf's?", "metric"] == "vol"
    assert v.loc["does training help CovNet max-Sharpe?", "metric"] == "sharpe"
    for _, r in v.iterrows():  # a win is the better side by the metric's direction: lower volatility, higher Sharpe
        better, worse = (r["a hi"] < r["b lo"], r["a lo"] > r["b hi"]) if r["metric"] == "vol" else \
            (r["a lo"] > r["b hi"], r["a hi"] < r["b lo"])
        assert (r["verdict (seeds)"] != "win" or better) and (r["verdict (seeds)"] != "loss" or worse)
    # without routes: the Ledoit-Wolf route alone, computed in the backtester, equals the precomputed table
    alone = run_backtests(params, {cfg.universe_rule: x}, [])
    assert set(alone.runs) == {"Equal weight", "Max-Sharpe (Ledoit-Wolf)", "Min-variance (Ledoit-Wolf)"}
    a, b = alone.runs["Min-variance (Ledoit-Wolf)"][0].result.returns, bt.runs["Min-variance (Ledoit-Wolf)"][0].result.returns
    assert np.allclose(a, b, equal_nan=True)


def test_dense_start_skips_the_thin_early_rows():
    from riskstudy.sharpe.routes import dense_start

    counts = np.r_[np.full(100, 3), np.full(400, 20)]
    counts[300] = 1  # one thin day later on is tolerated (0.5% of the rest)
    rows = np.arange(10, 480)
    assert dense_start(counts[rows], rows, least=8) == 100
    assert dense_start(counts[rows], rows, least=8, tolerance=0.0) == 301
    with pytest.raises(ValueError, match="no training row"):
        dense_start(np.full(470, 3), rows, least=8)


def test_the_number_of_workers_does_not_change_a_result(setup):
    params, x, _, runs, _, _ = setup  # setup trained its two seeds on two worker processes
    cfg = params.sharpe.model_copy(update={"workers": 1, "data_dir": params.sharpe.data_dir + "_serial"})
    serial = train_covnets(SimpleNamespace(**{**vars(params), "sharpe": cfg}), "us", x)
    assert [r.valid_score for r in serial] == [r.valid_score for r in runs]
    t = int(next(iter(runs[0].models)))
    assert np.array_equal(serial[1].models[t].covariance(), runs[1].models[t].covariance())
