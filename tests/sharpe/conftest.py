"""Small synthetic inputs of the Sharpe section (the universe rule and windows of the real stage, tiny sizes)."""

from __future__ import annotations

import pytest

from riskstudy.data.synthetic import make_synthetic_market
from riskstudy.sharpe.config import SharpeConfig
from riskstudy.sharpe.data import build_inputs, fit_normaliser, split_rows


def tiny_config(**nets) -> SharpeConfig:
    """A valid section config for a synthetic market of 2010-01-04 + 700 business days."""
    return SharpeConfig(start={"us": "2010-01-04"}, end="2012-09-28", train_end="2011-06-30", valid_start="2011-07-01",
                        test_start="2012-01-02", test_end="2012-08-31", n_stocks=8, universe_window=100, seq_len=10,
                        hold=5, rebalance_every=5, n_boot=200, boot_block=5,
                        nets={"networks": ["gru"], "hidden_size": 8, "num_layers": 1, "max_epochs": 3, "patience": 2,
                              "seeds": [0], "batch_decisions": 8, "decision_stride": 2, "dropout": 0.0, "patch": 1,
                              **nets})


@pytest.fixture(scope="session")
def synthetic_panel():
    m = make_synthetic_market(n_days=700, n_stocks=20, n_factors=2, n_sectors=2, seed=5)
    return m.panel


@pytest.fixture(scope="session")
def tiny_inputs(synthetic_panel):
    import pandas as pd

    cfg = tiny_config()
    import numpy as np

    bench = pd.Series(np.nanmean(synthetic_panel["ret"], axis=1), index=synthetic_panel.dates)
    x = build_inputs(synthetic_panel, bench, n=cfg.n_stocks, window=cfg.universe_window, first_test_day=str(cfg.test_start),
                     test_end=str(cfg.test_end), rule="dollar_volume", seq_len=cfg.seq_len)
    rows = split_rows(x, train_end=str(cfg.train_end), valid_start=str(cfg.valid_start), test_start=str(cfg.test_start),
                      test_end=str(cfg.test_end), hold=cfg.hold)
    return fit_normaliser(x, rows.train), rows, cfg

