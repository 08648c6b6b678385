"""Direct networks: bounded weights over the stocks present, one training loop, learning a planted signal, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from riskstudy.nn.loop import fit, seed_all
from riskstudy.sharpe.data import SharpeInputs, fit_normaliser, split_rows
from riskstudy.sharpe.direct import DirectNet, DirectTask, build_encoder, predict_weights
from tests.sharpe.conftest import tiny_config


@pytest.mark.parametrize("kind", ["gru", "transformer", "tcn", "linear"])
def test_every_network_gives_bounded_weights_over_present_stocks(kind):
    torch.manual_seed(0)
    enc = build_encoder(kind, n_features=6, hidden_size=8, num_layers=2, seq_len=10)
    net = DirectNet(enc, upper=0.4)
    x = torch.randn(3, 5, 10, 6)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 2] = False
    w = net(x, mask)
    assert w.shape == (3, 5) and torch.allclose(w.sum(1), torch.ones(3)) and float(w.max()) <= 0.4 + 1e-6
    assert float(w[1, 2]) == 0.0 and float(w.min()) >= 0.0
    with pytest.raises(ValueError, match="unknown network"):
        build_encoder("lstm", n_features=6, hidden_size=8, num_layers=1, seq_len=10)
    with pytest.raises(ValueError, match="lower weight bound"):
        DirectNet(enc, lower=0.01)(x, mask)


def planted_inputs(seed: int = 0) -> tuple[SharpeInputs, object]:
    """Six stocks whose drift (+-0.4% a day, three up and three down) persists over 40-day spells: the last 10 days
    predict the next 5."""
    rng = np.random.default_rng(seed)
    T, N = 700, 6
    signs = np.array([rng.permutation([-1, -1, -1, 1, 1, 1]) for _ in range(T // 40 + 1)])  # equal weight: no drift
    drift = np.repeat(0.004 * signs, 40, axis=0)[:T]
    r = drift + rng.normal(0, 0.01, size=(T, N))
    r[0] = np.nan
    close = np.log(100) + np.nancumsum(r, axis=0)
    lv = np.stack([close, close + 0.005, close - 0.005, close, close, np.log(1e6) + rng.normal(0, 0.1, (T, N))], -1)
    dates = pd.bdate_range("2010-01-04", periods=T)
    x = SharpeInputs(market="synthetic", dates=dates, instruments=pd.Index([f"S{i}" for i in range(N)]), levels=lv,
                     returns=np.expm1(r), benchmark=np.nanmean(np.expm1(r), 1), seq_len=10, rule="dollar_volume")
    cfg = tiny_config(networks=["linear"], max_epochs=15, patience=15, optimizer="adam", adam_lr=0.01)
    rows = split_rows(x, train_end=str(cfg.train_end), valid_start=str(cfg.valid_start), test_start=str(cfg.test_start),
                      test_end=str(cfg.test_end), hold=cfg.hold)
    return fit_normaliser(x, rows.train), (rows, cfg)


def test_training_learns_a_planted_signal_and_is_deterministic(tmp_path):
    x, (rows, cfg) = planted_inputs()
    task = DirectTask(x, train_days=rows.train, valid_days=rows.valid, network="linear", cfg=cfg)
    seed_all(0)
    untrained = task.validate(task.build_model(), None)["sharpe"]
    res = fit(task, max_epochs=cfg.nets.max_epochs, patience=cfg.nets.patience, seed=0)
    trained = task.validate(res.model, None)["sharpe"]
    assert trained > untrained + 1.0 and res.best_epoch > 0
    again = fit(DirectTask(x, train_days=rows.train, valid_days=rows.valid, network="linear", cfg=cfg),
                max_epochs=cfg.nets.max_epochs, patience=cfg.nets.patience, seed=0)
    days = np.arange(rows.test_start, rows.test_end)
    assert np.array_equal(predict_weights(res.model, x, days), predict_weights(again.model, x, days))


def test_sam_steps_through_the_loop_and_checkpoints(tmp_path):
    x, (rows, cfg) = planted_inputs(1)
    cfg = tiny_config(networks=["gru"], max_epochs=2, patience=2, optimizer="sam")
    task = DirectTask(x, train_days=rows.train, valid_days=rows.valid, network="gru", cfg=cfg)
    res = fit(task, max_epochs=2, patience=2, seed=0, checkpoint_path=tmp_path / "ck.pt")
    assert len(res.history) == 2 and np.isfinite(res.history["valid_sharpe"]).all()
    assert torch.load(tmp_path / "ck.pt", weights_only=True)["finished"]
