"""The Sharpe section's inputs on disk (``<sharpe.data_dir>/<market>/inputs_<rule>.npz``, one per universe rule).

:func:`inputs_of` builds them from a market's panel (stage ``sharpe_data``,
:mod:`riskstudy.studies.sharpe_data`); :func:`load_inputs` reads back those the section uses
(:func:`rules`); :func:`rows_of` gives the decision rows of the section's windows.
"""

from __future__ import annotations

from pathlib import Path

from riskstudy.config import Params
from riskstudy.paths import resolve
from riskstudy.sharpe.config import SharpeConfig
from riskstudy.sharpe.data import Rows, SharpeInputs, build_inputs, fit_normaliser, split_rows


#: The universe rules (:func:`riskstudy.sharpe.universe.select_universe`).
RULES: tuple[str, ...] = ("dollar_volume", "ex_post_return")


def section(params: Params) -> SharpeConfig:
    """``params.sharpe``; a ``ValueError`` when the profile has no ``sharpe`` block."""
    if params.sharpe is None:
        raise ValueError("params has no 'sharpe' section")
    return params.sharpe


def market_dir(params: Params, market: str) -> Path:
    return resolve(section(params).data_dir) / market


def rules(params: Params, market: str) -> list[str]:
    """The configured universe rule, plus the paper's hindsight rule where the hindsight check runs."""
    cfg = section(params)
    out = [cfg.universe_rule]
    if market in cfg.nets.hindsight_markets and "ex_post_return" not in out:
        out.append("ex_post_return")
    return out


def rows_of(cfg: SharpeConfig, inputs: SharpeInputs) -> Rows:
    return split_rows(inputs, train_end=str(cfg.train_end), valid_start=str(cfg.valid_start),
                      test_start=str(cfg.test_start), test_end=str(cfg.test_end), hold=cfg.hold)


def inputs_of(cfg: SharpeConfig, panel, benchmark) -> dict[str, SharpeInputs]:
    """The normalised inputs of both :data:`RULES` from a :class:`~riskstudy.data.panel.Panel` and its benchmark returns."""
    out = {}
    for rule in RULES:  # both, always: the hindsight universe is shown even where no network trains on it
        x = build_inputs(panel, benchmark, n=cfg.n_stocks, window=cfg.universe_window, first_test_day=str(cfg.test_start),
                         test_end=str(cfg.test_end), rule=rule, seq_len=cfg.seq_len)
        out[rule] = fit_normaliser(x, rows_of(cfg, x).train)
    return out


def load_inputs(params: Params, market: str) -> dict[str, SharpeInputs]:
    return {rule: SharpeInputs.load(market_dir(params, market) / f"inputs_{rule}.npz") for rule in rules(params, market)}
