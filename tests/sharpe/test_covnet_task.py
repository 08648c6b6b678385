"""The covariance network on the section's inputs: prior exposures, the loop, day-t risk models without look-ahead."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.nn.loop import fit, seed_all
from riskstudy.sharpe.covnet_task import CovNetTask, panel_of, prior_exposures, risk_models
from riskstudy.sharpe.data import SharpeInputs


@pytest.fixture(scope="module")
def task_and_inputs(tiny_inputs):
    x, rows, _ = tiny_inputs
    prior, size = prior_exposures(x, beta_window=60, momentum_window=60, momentum_skip=5, resvol_window=60)
    task = CovNetTask(x, prior, size, train_days=rows.train, valid_days=rows.valid, n_factors=3, hidden_size=8,
                      batch_days=16, day_stride=2, lr=1e-2)
    return task, x, rows, prior, size


def test_panel_round_trip_and_prior_exposures(tiny_inputs):
    x, _, _ = tiny_inputs
    p = panel_of(x)
    assert np.allclose(np.log(p["close"]), x.levels[..., 3], equal_nan=True)
    assert np.array_equal(p.member, np.isfinite(x.levels[..., 3]) & np.isfinite(x.levels[..., 5]))
    prior, size = prior_exposures(x, beta_window=60, momentum_window=60, momentum_skip=5, resvol_window=60)
    assert prior.shape == (*x.shape, 6) and size.shape == x.shape
    late = np.isfinite(prior[-50:]).all(-1)
    assert late.mean() > 0.8 and np.allclose(np.nanstd(prior[-1], axis=0), 1.0, atol=0.35)


def test_training_lowers_the_validation_loss(task_and_inputs):
    task = task_and_inputs[0]
    seed_all(0)
    start = task.validate(task.build_model(), None)["loss"]
    res = fit(task, max_epochs=4, patience=4, seed=0)
    assert res.history["valid_loss"].min() < start and res.best_epoch > 0


def test_day_t_models_are_psd_and_see_no_later_return(task_and_inputs):
    task, x, rows, prior, size = task_and_inputs
    seed_all(1)
    model = task.build_model()
    days = np.arange(rows.test_start, rows.test_start + 5)
    models = risk_models(model, task, days)
    for t, m in models.items():
        assert np.linalg.eigvalsh(m.covariance()).min() > 0 and len(m.assets) == x.shape[1]
    poisoned = x.returns.copy()
    poisoned[days[-1] + 1:] = 0.3
    y = SharpeInputs(**{**x.__dict__, "returns": poisoned})
    other = CovNetTask(y, prior, size, train_days=rows.train, valid_days=rows.valid, n_factors=3, hidden_size=8)
    again = risk_models(model, other, days)
    assert all(np.array_equal(models[t].covariance(), again[t].covariance()) for t in days)
