"""Shared helper for tests that need the real data at the configured raw-data location."""

from pathlib import Path

import pytest

from riskstudy.paths import DataLocationError, raw_dir


def real_raw_dir(*datasets: str) -> Path:
    """The raw-data directory holding every dataset in ``datasets``; skips the test with the reason otherwise."""
    try:
        root = raw_dir(require=datasets[0])
        for name in datasets[1:]:
            raw_dir(str(root), require=name)
    except DataLocationError as err:
        pytest.skip(f"real data not available ({', '.join(datasets)}): {err}".splitlines()[0])
    return root
