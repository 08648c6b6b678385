"""Metrics files (stamped JSON), timings and markdown tables: what every stage writes and every section reads."""

from __future__ import annotations

import json
import math
import resource
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to ``None``, keys to str."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def peak_rss_mb() -> float:
    """Peak resident memory in MiB of this process plus its finished children (Linux ``ru_maxrss``, KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024.0


def write_metrics(path: str | Path, metrics: dict, *, params: Any = None) -> Path:
    """Write ``metrics`` as indented JSON atomically (NaN becomes ``null``).

    With ``params`` (the :class:`~riskstudy.config.Params` the stage ran with) the file is stamped
    with ``"_meta"``: the profile and a hash of each params entry its ``dvc.yaml`` stage reads
    (:func:`riskstudy.provenance.stamp`), so the summary can refuse results of another run.
    Timings and memory do not belong here (they differ between identical runs): see :func:`write_timings`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = dict(metrics)
    if params is not None:
        from riskstudy.provenance import stamp

        body["_meta"] = stamp(path, params)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_clean(body), indent=2) + "\n")
    tmp.replace(path)
    return path


def write_timings(path: str | Path, timings: dict) -> Path:
    """Write wall times and peak memory of a stage (``reports/timings/*.json``: committed, not DVC metrics).

    Kept apart from the metrics so that ``dvc metrics diff`` between two runs with the same params is empty.
    """
    return write_metrics(path, timings)


def read_metrics(path: str | Path) -> dict:
    """A metrics file without its ``_meta`` stamp (see :func:`read_meta`)."""
    d = json.loads(Path(path).read_text())
    d.pop("_meta", None)
    return d


def read_meta(path: str | Path) -> dict | None:
    """The ``_meta`` provenance stamp of a metrics file (``None`` if it has none)."""
    return json.loads(Path(path).read_text()).get("_meta")


def markdown_table(df: pd.DataFrame, *, floatfmt: str = ".3f", pct: list[str] | None = None) -> str:
    """A GitHub-markdown table; columns in ``pct`` are shown as percentages."""
    out = df.copy()
    for c in out.columns:
        if pct and c in pct:
            out[c] = out[c].map(lambda v: "" if v is None or pd.isna(v) else f"{100 * v:.1f}%")
        elif pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].map(lambda v: "" if pd.isna(v) else format(v, floatfmt))
    cols = [str(out.index.name or "")] + [str(c) for c in out.columns]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, r in out.iterrows():
        rows.append("| " + " | ".join([str(idx)] + ["" if v is None else str(v) for v in r.values]) + " |")
    return "\n".join(rows)
