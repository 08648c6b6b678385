"""Fixtures shared across test packages."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def one_factor():
    """Returns from a one-factor model: r = beta * f + e, T=320, N=40."""
    rng = np.random.default_rng(0)
    T, N = 320, 40
    beta = rng.uniform(0.5, 1.5, N)
    r = rng.standard_normal((T, 1)) * 0.01 * beta + rng.standard_normal((T, N)) * 0.005
    return r, beta
