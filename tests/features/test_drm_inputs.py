"""DRM inputs and labels: shapes, the recipe's arithmetic, and no look-ahead."""

import numpy as np
import pandas as pd
import pytest

from riskstudy.data.panel import Panel, returns_from_close
from riskstudy.features.drm_inputs import DRMDataset, RobustNormalizer, split_rows

LAGS = [12, 8, 4, 2]


def make_panel(T=120, N=7, seed=0) -> Panel:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), 0))
    f = {
        "open": close * (1 + rng.normal(0, 0.005, (T, N))),
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": rng.uniform(1e5, 2e5, (T, N)),
    }
    f["ret"] = returns_from_close(close)
    f["dollar_volume"] = f["close"] * f["volume"]
    member = np.ones((T, N), bool)
    member[:, -1] = np.arange(T) % 3 != 0  # an instrument in and out of the universe
    return Panel("test", pd.bdate_range("2020-01-01", periods=T), [f"S{i}" for i in range(N)], f, member)


def dataset(panel, norm_days=np.arange(20, 70), horizon=5):
    return DRMDataset(panel, lags=LAGS, ma_window=10, horizon=horizon, size_window=5, clip=3.0, norm_days=norm_days)


def test_feature_recipe_arithmetic():
    p = make_panel()
    ds = dataset(p)
    t, i = 50, 2
    raw = ds.raw_features(np.array([t]), np.array([i]))[0, 0]  # (L, 5)
    ma_close = p["close"][t - 9 : t + 1, i].mean()
    ma_vol = p["volume"][t - 9 : t + 1, i].mean()
    for l, d in enumerate(LAGS):  # oldest first
        assert raw[l, 0] == pytest.approx(np.log(p["open"][t - d, i] / ma_close), abs=2e-5)
        assert raw[l, 3] == pytest.approx(np.log(p["close"][t - d, i] / ma_close), abs=2e-5)
        assert raw[l, 4] == pytest.approx(np.log(p["volume"][t - d, i] / ma_vol), abs=2e-5)


def test_features_use_data_up_to_t_only():
    p = make_panel()
    norm_days = np.arange(20, 50)
    days = np.arange(30, 60)
    before = dataset(p, norm_days=norm_days).batch(days)
    q = make_panel()
    for k in ("open", "high", "low", "close", "volume", "dollar_volume"):
        q.fields[k][61:] *= 3.0  # change the future (after the last day of the batch)
    q.fields["ret"] = returns_from_close(q["close"])
    after = dataset(q, norm_days=norm_days).batch(days)
    np.testing.assert_array_equal(before.x.numpy(), after.x.numpy())
    np.testing.assert_array_equal(before.mask.numpy(), after.mask.numpy())


def test_labels_are_strictly_future_returns():
    p = make_panel()
    ds = dataset(p, horizon=5)
    days = np.array([40, 41])
    b = ds.batch(days)
    cols = b.stock_idx.numpy()
    for d_i, t in enumerate(days):
        for h in range(1, 6):
            expect = p["ret"][t + h, cols]
            np.testing.assert_allclose(b.y.numpy()[d_i, :, h - 1], np.nan_to_num(expect), rtol=1e-6)
    # labels beyond the panel end are masked
    late = ds.batch(np.array([p.shape[0] - 2]))
    assert not late.y_mask.numpy()[0, :, 1:].any()


def test_normaliser_fitted_on_training_days_only():
    p = make_panel()
    ds = dataset(p, norm_days=np.arange(20, 70))
    q = make_panel()
    q.fields["close"][75:] *= 10.0  # changes outside the normalisation window (and its lags/MA)
    ds_q = dataset(q, norm_days=np.arange(20, 70))
    np.testing.assert_allclose(ds.normalizer_.median_, ds_q.normalizer_.median_)
    np.testing.assert_allclose(ds.normalizer_.scale_, ds_q.normalizer_.scale_)


def test_robust_normalizer_clips_and_fills():
    x = np.random.default_rng(0).normal(size=(50, 10, 2, 3))
    mask = np.ones((50, 10), bool)
    n = RobustNormalizer(clip=3.0).fit(x, mask)
    x[0, 0, 0, 0] = 1e6
    x[0, 1, 0, 0] = np.nan
    z = n.transform(x)
    assert z.max() <= 3.0 and z.min() >= -3.0 and z[0, 1, 0, 0] == 0.0
    assert z.dtype == np.float32


def test_batch_contract_and_masks():
    p = make_panel()
    ds = dataset(p)
    b = ds.batch(np.arange(40, 48))
    B, M = b.mask.shape
    assert b.x.shape == (B, M, len(LAGS), 5) and b.y.shape == (B, M, 5)
    assert (b.x.numpy()[~b.mask.numpy()] == 0).all()
    assert (b.weight.numpy()[~b.mask.numpy()] == 0).all()
    # the in-and-out instrument is masked on its non-member days
    last = list(b.stock_idx.numpy()).index(p.shape[1] - 1)
    np.testing.assert_array_equal(b.mask.numpy()[:, last], p.member[40:48, -1])


def test_split_rows_purges_label_overlap():
    dates = pd.bdate_range("2020-01-01", periods=100)
    rows = split_rows(dates, dates[10], dates[49], purge=5)
    assert rows[0] == 10 and rows[-1] == 44


def test_fingerprint_covers_inputs_and_feature_settings():
    p = make_panel()
    base = dataset(p).fingerprint()
    assert dataset(make_panel()).fingerprint() == base  # same prepared data, same settings
    assert DRMDataset(p, lags=LAGS, ma_window=10, horizon=5, size_window=5, clip=2.5,
                      norm_days=np.arange(20, 70)).fingerprint() != base
    assert dataset(p, horizon=4).fingerprint() != base
    assert dataset(p, norm_days=np.arange(20, 60)).fingerprint() != base
    q = make_panel()
    q["close"][60, 3] *= 1.001  # one prepared price changed
    assert dataset(q).fingerprint() != base


def test_members_per_day_counts_batch_members():
    ds = dataset(make_panel())
    days = np.array([30, 31, 33, 60])
    np.testing.assert_array_equal(ds.members_per_day(days), ds.batch(days).mask.sum(1).numpy())
