"""Inputs of the Sharpe section: scale-free windows, no look-ahead in windows, labels, splits and normaliser."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.sharpe.data import SharpeInputs, fit_normaliser, split_rows


def _copy(x: SharpeInputs, **kw) -> SharpeInputs:
    return SharpeInputs(**{**x.__dict__, **kw})


def test_windows_are_scale_free_and_see_only_the_past(tiny_inputs):
    x, rows, cfg = tiny_inputs
    days = rows.valid[:5]
    w, mask = x.windows(days)
    assert w.shape == (5, x.shape[1], cfg.seq_len, 6) and mask.all()
    scaled = x.levels.copy()
    scaled[:, 0, :5] += np.log(7.0)  # a stock's prices x 7 (a split): its features do not move
    scaled[:, 1, 5] += np.log(3.0)  # another's volume x 3
    assert np.allclose(_copy(x, levels=scaled).windows(days)[0], w, atol=1e-5)
    poisoned = x.levels.copy()
    poisoned[days[-1] + 1:] = np.random.default_rng(0).normal(size=poisoned[days[-1] + 1:].shape)
    assert np.array_equal(_copy(x, levels=poisoned).windows(days)[0], w)
    poisoned[days[-1]] += 1.0  # the decision day itself is part of the window
    assert not np.array_equal(_copy(x, levels=poisoned).windows(days[-1:])[0], w[-1:])


def test_missing_data_masks_the_stock(tiny_inputs):
    x, rows, _ = tiny_inputs
    t = int(rows.valid[3])
    lv = x.levels.copy()
    lv[t - 2, 4, 1] = np.nan
    w, mask = _copy(x, levels=lv).windows(np.array([t, t + 10]))  # t - 2 is in the first window only (seq_len 10)
    assert not mask[0, 4] and mask[0].sum() == x.shape[1] - 1 and np.all(w[0, 4] == 0) and mask[1].all()


def test_future_returns_are_the_next_hold_days(tiny_inputs):
    x, rows, cfg = tiny_inputs
    t = int(rows.train[10])
    f = x.future(np.array([t, x.shape[0] - 2]), cfg.hold)
    assert np.array_equal(f[0], x.returns[t + 1:t + 1 + cfg.hold], equal_nan=True)
    assert np.isfinite(f[1, 0]).any() and np.isnan(f[1, 1:]).all()


def test_splits_keep_labels_inside_their_windows(tiny_inputs):
    x, rows, cfg = tiny_inputs
    assert x.dates[rows.train[-1] + cfg.hold] <= np.datetime64(cfg.train_end) < x.dates[rows.train[-1] + cfg.hold + 1]
    assert x.dates[rows.valid[0]] >= np.datetime64(cfg.valid_start)
    assert x.dates[rows.valid[-1] + cfg.hold] < np.datetime64(cfg.test_start) <= x.dates[rows.valid[-1] + cfg.hold + 1]
    assert x.dates[rows.test_start + 1] == x.dates[x.row(str(cfg.test_start))]
    assert x.dates[rows.test_end] <= np.datetime64(cfg.test_end) < x.dates[rows.test_end + 1]
    with pytest.raises(ValueError, match="empty window"):
        split_rows(x, train_end="2010-01-10", valid_start=str(cfg.valid_start), test_start=str(cfg.test_start),
                   test_end=str(cfg.test_end), hold=cfg.hold)


def test_normaliser_uses_training_rows_only(tiny_inputs):
    x, rows, _ = tiny_inputs
    lv = x.levels.copy()
    lv[rows.train[-1] + 1:] *= 5.0
    y = fit_normaliser(_copy(x, levels=lv), rows.train)
    assert np.array_equal(y.mean_, x.mean_) and np.array_equal(y.std_, x.std_)
    w, m = x.windows(rows.train)
    v = w[m].reshape(-1, 6)
    assert np.allclose(v.mean(0), 0, atol=0.15) and np.allclose(v.std(0), 1, atol=0.25)


def test_save_load_round_trip(tiny_inputs, tmp_path):
    x, _, _ = tiny_inputs
    x.save(tmp_path / "inputs.npz")
    y = SharpeInputs.load(tmp_path / "inputs.npz")
    assert y.fingerprint() == x.fingerprint() and list(y.instruments) == list(x.instruments) and y.rule == x.rule
