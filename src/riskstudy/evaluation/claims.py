"""Claims checked on our numbers, with one verdict rule for the whole study.

The rule (:func:`verdict`): over seeds, ``a`` beats ``b`` when the 95% Student-t interval of
``a``'s seed values lies entirely beyond ``b``'s *and* every seed of ``a`` beats every seed of
``b`` (a reference without seeds is a point), so the seed-level and the interval-level reading
never disagree (for up to 4 seeds the interval condition implies the seed one; beyond, it need
not). Anything else is a tie (within seed noise); one seed gives no interval and is reported as such.

Used by Table 1's paper claims and the training control (:func:`paper_claims`), and by the
ablations (:mod:`riskstudy.evaluation.ablations`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from riskstudy.stats import CLAIM_WORDS, mean_ci, point, verdict  # noqa: F401  (re-exported)

#: ``(text, model row, column, other row, "higher" | "lower")``: the paper's Table 1 claims.
PAPER_CLAIMS: list[tuple[str, str, str, str, str]] = [
    ("DRM explains more variance than FRM", "DRM", "r2", "FRM", "higher"),
    ("DRM explains more variance than SRM", "DRM", "r2", "SRM", "higher"),
    ("DRM x2 explains more variance than DRM", "DRM x2", "r2", "DRM", "higher"),
    ("DRM GMV is less volatile than FRM's", "DRM", "gmv_vol", "FRM", "lower"),
    ("DRM GMV is less volatile than SRM's", "DRM", "gmv_vol", "SRM", "lower"),
    ("DRM x2 GMV is less volatile than DRM's", "DRM x2", "gmv_vol", "DRM", "lower"),
    ("DRM GMV+ is less volatile than SRM's", "DRM", "gmv_long_vol", "SRM", "lower"),
    ("DRM GMV+ is no more volatile than FRM's", "DRM", "gmv_long_vol", "FRM", "lower"),
]

#: Does training beat the network's own initialisation? (trained seeds vs the untrained control)
TRAINING_CLAIMS: list[tuple[str, str, str, str, str]] = [
    (f"{m} explains more variance than its untrained network", m, "r2", f"{m} untrained", "higher")
    for m in ("DRM", "DRM x2")
] + [
    (f"{m} {what} is less volatile than its untrained network's", m, col, f"{m} untrained", "lower")
    for m in ("DRM", "DRM x2") for what, col in (("GMV", "gmv_vol"), ("GMV+", "gmv_long_vol"))
]

#: Does the network beat a linear model of the same data? (trained seeds vs the linear probe's seeds, and vs
#: static training-window PCA loadings, rows of the ``srm`` model)
LINEAR_CLAIMS: list[tuple[str, str, str, str, str]] = [
    (f"{m} explains more variance than its linear probe", m, "r2", f"{m} linear probe", "higher") for m in ("DRM", "DRM x2")
] + [
    (f"{m} explains more variance than static training-window PCA", m, "r2", pca, "higher")
    for m, pca in (("DRM", "PCA static"), ("DRM x2", "PCA static x2"))
]

def paper_claims(report, claims: list[tuple[str, str, str, str, str]] | None = None) -> pd.DataFrame:
    """Claims about Table 1 rows checked with :func:`verdict` (default: :data:`PAPER_CLAIMS`).

    Each claim is ``(text, model, column, other row, "higher" | "lower")``. A row with seed runs
    (``report.seeds``) enters with its seed interval, any other row as a point.

    Parameters
    ----------
    report : riskstudy.evaluation.pipeline.MarketReport
    claims : list of claim tuples, optional
        :data:`TRAINING_CLAIMS` checks trained DRM against its untrained control, :data:`LINEAR_CLAIMS`
        against linear references. Claims naming a row not in Table 1 are left out.

    Returns
    -------
    DataFrame indexed by claim: ``ours`` (means), ``verdict``.
    """
    t1, seeds = report.table1, report.seeds

    def interval(row: str, col: str) -> dict:
        vals = seeds.loc[seeds.model == row, col].to_numpy(dtype=float) if len(seeds) else np.zeros(0)
        return mean_ci(vals) if len(vals) > 1 else point(float(t1.loc[row, col]))

    rows = []
    for text, model, col, other, better in PAPER_CLAIMS if claims is None else claims:
        if model not in t1.index or other not in t1.index:  # a model not in evaluation.models
            continue
        a, b = interval(model, col), interval(other, col)
        outcome = verdict(a, b, higher_is_better=better == "higher")
        rows.append({"claim": text, "ours": f"{100 * a['mean']:.2f}% vs {100 * b['mean']:.2f}%",
                     "verdict": CLAIM_WORDS[outcome] + ("" if a["n"] == 1 else f" ({a['n']} seeds)")})
    return pd.DataFrame(rows).set_index("claim")
