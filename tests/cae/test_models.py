"""CA0-CA3: architecture, loss, training through the one loop (determinism, resume), ensemble averaging."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from riskstudy.cae.models import CAEData, CAENet, CAETask, ConditionalAutoencoder
from riskstudy.cae.planted import planted_panel
from riskstudy.cae.config import CAE_MODELS, CAEConfig
from riskstudy.nn import loop


@pytest.fixture(scope="module")
def panel():
    ch, truth = planted_panel(n_periods=30, n_stocks=40, n_chars=4, n_factors=2, kind="nonlinear", seed=0)
    return ch, np.arange(18), np.arange(18, 24), np.arange(24, 30)


def _config(**kw) -> CAEConfig:
    return CAEConfig(**{"n_seeds": 2, "max_epochs": 3, "patience": 2, "batch_periods": 6, "device": "cpu", **kw})


@pytest.mark.parametrize("name", list(CAE_MODELS))
def test_architectures(name):
    net = CAENet(n_chars=4, n_portfolios=5, n_factors=3, hidden=CAE_MODELS[name])
    linears = [m for m in net.beta.modules() if isinstance(m, torch.nn.Linear)]
    norms = [m for m in net.beta.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [m.out_features for m in linears] == CAE_MODELS[name] + [3]
    assert len(norms) == len(CAE_MODELS[name]) and net.factor.bias is None
    beta, f = net.eval()(torch.randn(7, 4), torch.randn(2, 5))
    assert beta.shape == (7, 3) and f.shape == (2, 3)
    penalty = sum(m.weight.abs().sum() for m in [*linears, net.factor])
    assert torch.isclose(net.l1(), penalty)  # weights only, biases and batch norm excluded


def test_ca0_is_linear_in_characteristics():
    net = CAENet(n_chars=4, n_portfolios=5, n_factors=2, hidden=[])
    z1, z2 = torch.randn(5, 4), torch.randn(5, 4)
    b = lambda z: net.beta(z) - net.beta(torch.zeros(1, 4))  # noqa: E731
    torch.testing.assert_close(b(z1 + 2 * z2), b(z1) + 2 * b(z2))


def test_loss_is_mse_of_members_plus_l1(panel):
    ch, train, valid, _ = panel
    data = CAEData.from_characteristics(ch, device=torch.device("cpu"))
    cfg = _config(l1=0.1)
    task = CAETask(data, train=train, valid=valid, hidden=[8], n_factors=2, config=cfg, seed=0)
    loop.seed_all(0)
    net = task.build_model().eval()
    loss, sse, ss = task._losses(net, torch.as_tensor(valid))
    m = ch.mask[valid]
    beta, f = net(torch.as_tensor(ch.Z[valid][m], dtype=torch.float32), data.X[torch.as_tensor(valid)])
    pos = torch.as_tensor(np.nonzero(m)[0])
    err = torch.as_tensor(ch.R[valid][m], dtype=torch.float32) - (beta * f[pos]).sum(-1)
    torch.testing.assert_close(loss, err.square().mean() + 0.1 * net.l1())
    torch.testing.assert_close(ss, torch.as_tensor(ch.R[valid][m], dtype=torch.float32).square().sum())


def test_training_is_deterministic_and_early_stops(panel):
    ch, train, valid, _ = panel
    cfg = _config(max_epochs=6, patience=1)
    a = ConditionalAutoencoder(hidden=[8], n_factors=2, config=cfg).fit(ch, train=train, valid=valid)
    b = ConditionalAutoencoder(hidden=[8], n_factors=2, config=cfg).fit(ch, train=train, valid=valid)
    for ra, rb in zip(a.results_, b.results_):
        assert ra.history.drop(columns="seconds").equals(rb.history.drop(columns="seconds"))
        assert all(torch.equal(x, y) for x, y in zip(ra.model.state_dict().values(), rb.model.state_dict().values()))
    h = a.results_[0].history
    assert len(h) <= 6 and list(h.columns) == loop.history_columns(("loss", "r2"))
    assert len(h) == 6 or len(h) - a.results_[0].best_epoch == 1  # stopped after `patience` epochs without gain
    assert a.seeds_ == [0, 1]


def test_resume_from_checkpoint_gives_the_same_run(panel, tmp_path, caplog):
    ch, train, valid, _ = panel
    full = ConditionalAutoencoder(hidden=[8], n_factors=1, config=_config(n_seeds=1, max_epochs=4, patience=10))
    full.fit(ch, train=train, valid=valid)
    part = ConditionalAutoencoder(hidden=[8], n_factors=1, config=_config(n_seeds=1, max_epochs=2, patience=10))
    part.fit(ch, train=train, valid=valid, checkpoint_dir=tmp_path)
    ck = torch.load(tmp_path / "k1_s0.pt", weights_only=True)
    ck["finished"] = False  # as if killed after epoch 2
    torch.save(ck, tmp_path / "k1_s0.pt")
    resumed = ConditionalAutoencoder(hidden=[8], n_factors=1, config=_config(n_seeds=1, max_epochs=4, patience=10))
    with caplog.at_level("INFO", logger="riskstudy.nn.loop"):
        resumed.fit(ch, train=train, valid=valid, checkpoint_dir=tmp_path)
    assert "resuming CAE training" in caplog.text and "after epoch 2" in caplog.text
    a, b = full.results_[0], resumed.results_[0]
    assert a.history.drop(columns="seconds").equals(b.history.drop(columns="seconds"))


def test_ensemble_averages_seed_predictions(panel):
    ch, train, valid, test = panel
    m = ConditionalAutoencoder(hidden=[8, 4], n_factors=2, config=_config()).fit(ch, train=train, valid=valid)
    beta, f = m.betas(ch, test), m.factors(ch, test)
    assert beta.shape == (2, len(test), 40, 2) and f.shape == (2, len(test), 2)
    total, predictive = m.predict(ch, test)
    np.testing.assert_allclose(total, np.einsum("stnk,stk->tn", beta, f) / 2, rtol=1e-6)
    prior = m.factors(ch, train)
    lam0 = prior.mean(1)  # (S, K): the first test period's factor mean is the training window's
    np.testing.assert_allclose(predictive[0], np.einsum("snk,sk->n", beta[:, 0], lam0) / 2, rtol=1e-5, atol=1e-9)
