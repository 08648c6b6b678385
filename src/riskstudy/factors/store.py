"""The exposure store: one ``.npz`` per (market, model, run).

A file holds the exposures of the rows a model predicted, ``(T_rows, N, K)`` in the model's dtype, with the
panel rows, their dates (ns since the epoch) and the instrument names, so it can be re-aligned to
any panel that contains those days and stocks (:func:`load_exposures`), and the factor names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def save_exposures(
    path: str | Path,
    exposures: np.ndarray,
    *,
    rows: np.ndarray,
    dates: pd.DatetimeIndex,
    instruments: pd.Index,
    names: list[str] | None = None,
) -> Path:
    """Write ``exposures`` ``(len(rows), N, K)`` of the panel rows ``rows`` to ``path`` (compressed).

    ``dates`` and ``instruments`` are the full panel calendar ``(T,)`` and columns ``(N,)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.asarray(rows, dtype=np.int64)
    extra = {} if names is None else {"names": np.asarray(names, dtype=str)}
    np.savez_compressed(
        path,
        exposures=np.asarray(exposures),  # the model's dtype: scores are computed from exactly these values
        rows=rows,
        dates=dates[rows].values.astype("datetime64[ns]").astype(np.int64),
        instruments=np.asarray(instruments, dtype=str),
        **extra,
    )
    return path


def load_exposures(path: str | Path, dates: pd.DatetimeIndex, instruments: pd.Index) -> np.ndarray:
    """Stored exposures re-aligned to a panel calendar: ``(T, N, K)`` float64, NaN where absent.

    Raises
    ------
    ValueError
        If a stored day or instrument is not in the panel (the store is stale: rerun its stage).
    """
    z = np.load(path)
    src_dates = pd.DatetimeIndex(z["dates"].astype("datetime64[ns]"))
    ri = dates.get_indexer(src_dates)
    ci = pd.Index(instruments).get_indexer(pd.Index(z["instruments"]))
    if (ri < 0).any() or (ci < 0).any():
        raise ValueError(f"{path}: exposures do not match the prepared panel (rerun the stage that wrote them)")
    out = np.full((len(dates), len(instruments), z["exposures"].shape[2]), np.nan)
    out[ri[:, None], ci[None, :]] = z["exposures"]
    return out


def run_name(n_factors: int, seed: int) -> str:
    """Store name of a trained DRM run (K factors, one seed)."""
    return f"drm_k{n_factors}_s{seed}"


def probe_name(n_factors: int, seed: int) -> str:
    """Store name of the linear probe of a DRM run (same inputs, head, loss and loop; linear encoder, no GAT)."""
    return f"drm_k{n_factors}_s{seed}_linear"


def untrained_name(n_factors: int) -> str:
    """Store name of the untrained control (first seed) of the K-factor DRM."""
    return f"drm_k{n_factors}_untrained"
