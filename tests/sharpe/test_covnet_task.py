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


def test_risk_models_are_in_the_units_of_the_returns(task_and_inputs):
    """The network trains on returns / return_scale (training rows only); its forecasts come back in the returns'
    units: returns 10x larger give the same network and a 100x larger covariance."""
    task, x, rows, prior, size = task_and_inputs
    assert np.isclose(task.return_scale, np.nanstd(x.returns[rows.train + 1]))
    y = SharpeInputs(**{**x.__dict__, "returns": x.returns * 10})
    big = CovNetTask(y, prior, size, train_days=rows.train, valid_days=rows.valid, n_factors=3, hidden_size=8,
                     batch_days=16, day_stride=2, lr=1e-2)
    assert np.isclose(big.return_scale, 10 * task.return_scale)
    a = fit(task, max_epochs=2, patience=2, seed=0).model
    b = fit(big, max_epochs=2, patience=2, seed=0).model
    days = np.arange(rows.test_start, rows.test_start + 3)
    ma, mb = risk_models(a, task, days), risk_models(b, big, days)
    for t in days:
        assert np.allclose(mb[t].covariance(), 100 * ma[t].covariance(), rtol=1e-3)


def test_a_finished_checkpoint_is_readable_and_not_resumed(task_and_inputs, tmp_path):
    """The checkpoint holds plain floats (torch.load(weights_only=True) reads it); a finished run restarts fresh."""
    import torch

    task = task_and_inputs[0]
    ck = tmp_path / "covnet.pt"
    first = fit(task, max_epochs=1, patience=1, seed=0, checkpoint_path=ck)
    state = torch.load(ck, map_location="cpu", weights_only=True)
    assert state["finished"] and isinstance(state["best_score"], float)
    again = fit(task, max_epochs=1, patience=1, seed=0, checkpoint_path=ck)
    assert again.history["valid_loss"].tolist() == first.history["valid_loss"].tolist()


def test_training_days_have_enough_stocks_with_a_whole_window(task_and_inputs):
    """A stock enters a day only with its whole input window; days with fewer than K + 2 such stocks are dropped
    (with fewer the regression is singular and the gradient NaN). Weights sum to 1 over each day's stocks."""
    task, x, rows, prior, size = task_and_inputs
    late = x.levels.copy()
    late[: rows.train[40], :5] = np.nan  # five stocks list late: their windows are incomplete for a while
    y = SharpeInputs(**{**x.__dict__, "levels": late})
    t = CovNetTask(y, prior, size, train_days=rows.train, valid_days=rows.valid, n_factors=3, hidden_size=8,
                   batch_days=16, day_stride=1)
    m = t._train["mask"].numpy()
    assert m.sum(1).min() >= 3 + 2
    first = int(np.searchsorted(t.train_days, rows.train[40] + x.seq_len - 1))
    assert not m[:first, :5].any()  # no stock is used before its whole window exists
    w = t._train["weights"].numpy()
    assert np.allclose(w.sum(1), 1, atol=1e-5) and (w[~m] == 0).all()
    seed_all(0)
    model = t.build_model()
    lf, ls = t.losses(model, t._train, slice(0, 16))
    (lf + ls).backward()
    assert all(np.isfinite(p.grad.numpy()).all() for p in model.parameters() if p.grad is not None)
