r"""The Sharpe section's 50-stock universe: point-in-time by default, the paper's hindsight choice as an option.

* ``"dollar_volume"`` (default, no look-ahead): the ``n`` stocks with the largest mean dollar
  volume over the ``window`` trading days before the first test day (rows strictly before it),
  among those that were universe members on the last of those days and have a full price history
  over the window. The US panel's constituents are the 2021 list (survivorship-biased, as every
  US number of the study); this rule adds no further hindsight.
* ``"ex_post_return"`` (the paper's "top 50 performing stocks", chosen with hindsight): the ``n``
  stocks with the largest total return over the evaluation window itself. Only for showing how
  much hindsight adds; never the default.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from riskstudy.data.panel import Panel


def select_universe(panel: Panel, *, first_test_day: str | pd.Timestamp, n: int = 50, window: int = 252,
                    rule: Literal["dollar_volume", "ex_post_return"] = "dollar_volume",
                    test_end: str | pd.Timestamp | None = None) -> pd.Index:
    """The instruments of the universe (module docstring), ordered by the ranking statistic (largest first).

    Parameters
    ----------
    panel : Panel
        Needs ``dollar_volume`` and ``ret``.
    first_test_day : date
        The first day of the evaluation window; ``dollar_volume`` uses rows strictly before it.
    n, window : int
    rule : {"dollar_volume", "ex_post_return"}
    test_end : date, optional
        Last day of the evaluation window (``ex_post_return`` only; default the panel's end).
    """
    t0 = int(np.searchsorted(panel.dates, pd.Timestamp(first_test_day), side="left"))
    if rule == "dollar_volume":
        if t0 < window:
            raise ValueError(f"need {window} trading days before {first_test_day}, the panel has {t0}")
        rows = slice(t0 - window, t0)
        dv = panel["dollar_volume"][rows]
        ok = panel.member[t0 - 1] & np.isfinite(panel["ret"][rows]).all(axis=0)
        fin = np.isfinite(dv)
        mean_dv = np.where(fin, dv, 0.0).sum(axis=0) / np.maximum(fin.sum(axis=0), 1)
        score = np.where(ok & fin.any(axis=0), mean_dv, -np.inf)
    elif rule == "ex_post_return":
        t1 = len(panel.dates) if test_end is None else int(np.searchsorted(panel.dates, pd.Timestamp(test_end), side="right"))
        r = panel["ret"][t0:t1]
        ok = np.isfinite(r).mean(axis=0) >= 0.95
        score = np.where(ok, np.expm1(np.nansum(np.log1p(r), axis=0)), -np.inf)
    else:
        raise ValueError(f"unknown universe rule {rule!r}")
    order = np.argsort(-score, kind="stable")
    order = order[np.isfinite(score[order])][:n]
    if len(order) < n:
        raise ValueError(f"only {len(order)} stocks qualify for the {n}-stock universe under rule {rule!r}")
    return panel.instruments[order]
