"""Small statistics every layer may import (no dependency on the rest of the package)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def mean_ci(values: Sequence[float], level: float = 0.95) -> dict:
    """Mean, a Student-t interval and the range over seeds: ``{"mean", "lo", "hi", "n", "min", "max"}``.

    Non-finite values are dropped; ``lo``/``hi`` are NaN with fewer than two values. The interval is
    :math:`\\bar v \\pm t_{n-1, (1+level)/2}\\, s / \\sqrt n`.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    m = float(v.mean()) if len(v) else float("nan")
    rng = {"min": float(v.min()), "max": float(v.max())} if len(v) else {"min": float("nan"), "max": float("nan")}
    if len(v) < 2:
        return {"mean": m, "lo": float("nan"), "hi": float("nan"), "n": int(len(v)), **rng}
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return {"mean": m, "lo": m - half, "hi": m + half, "n": int(len(v)), **rng}


#: How claims word the outcomes of :func:`verdict` (``riskstudy.evaluation.claims.paper_claims``, ``riskstudy.cae.study.verdicts``).
CLAIM_WORDS = {"win": "holds", "loss": "does not hold", "tie": "within seed noise", "tie (too few seeds)": "one seed: no interval"}


def point(value: float) -> dict:
    """A reference without seed noise (e.g. a deterministic baseline) as a zero-width interval."""
    v = float(value)
    return {"mean": v, "lo": v, "hi": v, "n": 1, "min": v, "max": v}


def verdict(a: dict, b: dict, *, higher_is_better: bool = True) -> str:
    """``"win"``/``"loss"`` for ``a`` against ``b`` (:func:`mean_ci` or :func:`point`), else ``"tie"``.

    ``a`` beats ``b`` when ``a``'s interval lies entirely above ``b``'s and ``min(a) > max(b)``
    (mirrored for ``"loss"``; ``higher_is_better=False`` swaps the words). ``"tie (too few
    seeds)"`` when ``a`` or ``b`` has no interval.
    """
    if not all(np.isfinite([a["lo"], a["hi"], b["lo"], b["hi"]])):
        return "tie (too few seeds)"
    if a["lo"] > b["hi"] and a.get("min", a["lo"]) > b.get("max", b["hi"]):
        return "win" if higher_is_better else "loss"
    if a["hi"] < b["lo"] and a.get("max", a["hi"]) < b.get("min", b["lo"]):
        return "loss" if higher_is_better else "win"
    return "tie"
