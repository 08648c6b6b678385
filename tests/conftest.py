"""Fixtures shared across test packages."""

import sys

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


@pytest.fixture(scope="session")
def ipca_package():
    """The ``ipca`` package's module, imported with numba's JIT disabled (the same Python code runs uncompiled:
    compiling its kernels costs about 20 s a process on one core), unless it was already imported compiled."""
    numba = pytest.importorskip("numba")
    if "ipca.ipca" not in sys.modules:
        old, numba.config.DISABLE_JIT = numba.config.DISABLE_JIT, True
        try:
            import ipca.ipca  # noqa: F401
        finally:
            numba.config.DISABLE_JIT = old
    return sys.modules["ipca.ipca"]
