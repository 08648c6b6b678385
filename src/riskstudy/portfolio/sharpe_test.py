r"""Is one strategy's Sharpe ratio different from another's? Tests that allow for autocorrelation.

Two return series :math:`r_a, r_b` on the same ``T`` days, :math:`\Delta = SR_a - SR_b`,
:math:`SR = \mu / \sigma`.

* :func:`sharpe_diff_hac` -- Ledoit and Wolf (2008), HAC inference: with
  :math:`v_t = (r_{a,t}, r_{b,t}, r_{a,t}^2, r_{b,t}^2)` and :math:`\theta = E v_t =
  (\mu_a, \mu_b, \gamma_a, \gamma_b)`, :math:`\Delta = f(\theta) = \mu_a / \sqrt{\gamma_a - \mu_a^2}
  - \mu_b / \sqrt{\gamma_b - \mu_b^2}`, and by the delta method
  :math:`\mathrm{se}(\hat\Delta) = \sqrt{\nabla f' \hat\Psi \nabla f / T}` with :math:`\hat\Psi` the
  Bartlett-kernel (Newey-West) long-run covariance of :math:`v_t`; p-value from the normal.
* :func:`sharpe_diff_bootstrap` -- the circular block bootstrap (Politis and Romano 1992) of
  :math:`\hat\Delta`, blocks of ``block`` days resampled jointly for both series (so their
  correlation and each one's autocorrelation are kept); a percentile interval and the two-sided
  p-value :math:`2 \min(P^*(\Delta^* - \hat\Delta \le -\hat\Delta), P^*(\Delta^* - \hat\Delta \ge -\hat\Delta))`
  of the centred bootstrap distribution.

Sharpe ratios here are per period (multiply by :math:`\sqrt{252}` to annualise); pass excess
returns for excess Sharpe ratios.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"two 1-D series of one length are needed, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def sharpe(r: np.ndarray) -> float:
    """Per-period Sharpe ratio ``mean / std`` (population std, as in the delta method)."""
    r = np.asarray(r, dtype=float)
    return float(r.mean() / r.std())


def _hac(v: np.ndarray, lags: int) -> np.ndarray:
    e = v - v.mean(axis=0)
    n = len(e)
    psi = e.T @ e / n
    for lag in range(1, lags + 1):
        g = e[lag:].T @ e[:-lag] / n
        psi += (1 - lag / (lags + 1)) * (g + g.T)
    return psi


def sharpe_diff_hac(a: np.ndarray, b: np.ndarray, *, lags: int | None = None) -> dict[str, float]:
    """Ledoit-Wolf (2008) HAC test of :math:`SR_a = SR_b` (module docstring).

    ``lags`` defaults to :math:`\\lfloor 4 (T / 100)^{2/9} \\rfloor`. Returns ``diff``, ``se``, ``z``,
    ``p_value``, ``sharpe_a``, ``sharpe_b``, ``n``.
    """
    a, b = _paired(a, b)
    n = len(a)
    if n < 10:
        raise ValueError(f"need at least 10 common observations, got {n}")
    L = int(np.floor(4 * (n / 100) ** (2 / 9))) if lags is None else int(lags)
    v = np.column_stack([a, b, a ** 2, b ** 2])
    mu_a, mu_b, g_a, g_b = v.mean(axis=0)
    va, vb = g_a - mu_a ** 2, g_b - mu_b ** 2
    grad = np.array([g_a / va ** 1.5, -g_b / vb ** 1.5, -mu_a / (2 * va ** 1.5), mu_b / (2 * vb ** 1.5)])
    se = float(np.sqrt(max(grad @ _hac(v, L) @ grad, 0.0) / n))
    diff = mu_a / np.sqrt(va) - mu_b / np.sqrt(vb)
    z = diff / se if se > 0 else np.nan
    return {"diff": float(diff), "se": se, "z": float(z), "p_value": float(2 * stats.norm.sf(abs(z))),
            "sharpe_a": float(mu_a / np.sqrt(va)), "sharpe_b": float(mu_b / np.sqrt(vb)), "n": float(n), "lags": float(L)}


def sharpe_diff_bootstrap(a: np.ndarray, b: np.ndarray, *, block: int = 21, n_boot: int = 2000, level: float = 0.95,
                          seed: int = 0) -> dict[str, float]:
    """Circular block bootstrap of :math:`SR_a - SR_b` (module docstring); vectorised over replications.

    Returns ``diff``, ``lo``, ``hi`` (percentile interval at ``level``), ``p_value``, ``n``, ``block``.
    """
    a, b = _paired(a, b)
    n = len(a)
    if n < 2 * block:
        raise ValueError(f"need at least two blocks of {block} observations, got {n}")
    rng = np.random.default_rng(seed)
    n_blocks = -(-n // block)
    starts = rng.integers(0, n, size=(n_boot, n_blocks))
    idx = ((starts[:, :, None] + np.arange(block)) % n).reshape(n_boot, -1)[:, :n]
    ra, rb = a[idx], b[idx]
    d = ra.mean(1) / ra.std(1) - rb.mean(1) / rb.std(1)
    diff = sharpe(a) - sharpe(b)
    centred = d - diff
    p = 2 * min(np.mean(centred <= -abs(diff)), np.mean(centred >= abs(diff)))
    lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2])
    return {"diff": float(diff), "lo": float(lo), "hi": float(hi), "p_value": float(min(p * 1.0, 1.0)),
            "n": float(n), "block": float(block)}
