"""Where the project reads and writes data.

The raw-data location is configuration (``paths.raw_dir`` in ``params.yaml``,
default ``data/raw``, gitignored); the environment variable
``RISKSTUDY_RAW_DIR`` overrides it. Nothing in the package hard-codes where a
particular machine keeps its data.
"""

from __future__ import annotations

import os
from pathlib import Path

RAW_DIR_ENV = "RISKSTUDY_RAW_DIR"
DEFAULT_RAW_DIR = "data/raw"


def project_root() -> Path:
    """The repository root: the nearest parent holding ``params.yaml`` (falls back to cwd)."""
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / "params.yaml").exists() and (p / "src" / "riskstudy").exists():
            return p
    return here


def resolve(path: str | os.PathLike) -> Path:
    """Resolve a configured path: absolute paths as is, relative ones against the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


class DataLocationError(FileNotFoundError):
    """Raised when the configured raw-data location does not exist or lacks a dataset."""


def raw_dir(configured: str | os.PathLike | None = None, *, require: str | None = None) -> Path:
    """The raw-data directory.

    Parameters
    ----------
    configured : path-like, optional
        The ``paths.raw_dir`` setting; ``RISKSTUDY_RAW_DIR`` wins when set.
    require : str, optional
        A sub-folder that must exist (e.g. ``"sp500_daily"``).

    Raises
    ------
    DataLocationError
        Naming the setting and giving the commands that provide the data.
    """
    source = f"environment variable {RAW_DIR_ENV}" if os.environ.get(RAW_DIR_ENV) else "params.yaml setting paths.raw_dir"
    value = os.environ.get(RAW_DIR_ENV) or configured or DEFAULT_RAW_DIR
    path = resolve(value)
    target = path / require if require else path
    if not target.exists():
        raise DataLocationError(
            f"Raw data not found at {target} (from the {source} = {value!r}).\n"
            "Provide it in one of these ways:\n"
            "  * link an offline copy:   ln -sfn /path/to/raw-data data/raw\n"
            f"  * or point at it:         export {RAW_DIR_ENV}=/path/to/raw-data\n"
            "  * or download (internet): python -m riskstudy.data.download us   "
            "(yfinance; CSI300 via `python -m riskstudy.data.download cn`)"
        )
    return path
