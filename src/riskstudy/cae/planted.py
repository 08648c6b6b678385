r"""Planted panels for the conditional autoencoder checks: betas linear or non-linear in known characteristics.

.. math:: r_{i,t} = \beta(z_{i,t-1})' f_t + \varepsilon_{i,t}, \quad z \sim U[-1, 1]^P,
          \quad f_t \sim N(\mu, \sigma_f^2 I_K), \quad \varepsilon \sim N(0, \sigma_\varepsilon^2)

``kind="linear"``: :math:`\beta(z) = [z, 1]'\Gamma` with :math:`\Gamma_{lk} \sim N(0, 1)` (the IPCA
model, which CA0 also spans). ``kind="nonlinear"``: betas with *no* linear component in ``z``
beyond a constant, so linear-beta models see only the constant:

.. math:: \beta_1 = 1 + 3 (z_1^2 - \tfrac13), \quad \beta_2 = 3 z_2 z_3, \quad
          \beta_k = 2 (|z_k| - \tfrac12) \ (k \ge 3)

(each even in the characteristics it uses, hence uncorrelated with every :math:`z_p`). The
characteristics are i.i.d. across stocks and periods, so only the functional form matters.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from riskstudy.cae.characteristics import Characteristics, add_constant


def nonlinear_betas(z: np.ndarray, n_factors: int) -> np.ndarray:
    """The ``kind="nonlinear"`` betas ``(..., K)`` of characteristics ``z`` ``(..., P)`` (module docstring; needs ``P >= max(3, K)``)."""
    cols = [1.0 + 3.0 * (z[..., 0] ** 2 - 1.0 / 3.0)]
    if n_factors >= 2:
        cols.append(3.0 * z[..., 1] * z[..., 2])
    cols += [2.0 * (np.abs(z[..., k]) - 0.5) for k in range(2, n_factors)]
    return np.stack(cols, axis=-1)


def planted_panel(*, n_periods: int, n_stocks: int, n_chars: int, n_factors: int,
                  kind: Literal["linear", "nonlinear"], factor_mean: float = 0.01, factor_vol: float = 0.05,
                  noise_vol: float = 0.05, member_prob: float = 0.95, seed: int = 0
                  ) -> tuple[Characteristics, dict[str, np.ndarray]]:
    """A :class:`~riskstudy.cae.characteristics.Characteristics` panel with a planted factor structure.

    Parameters
    ----------
    n_periods, n_stocks, n_chars, n_factors : int
        T, N, P, K.
    kind : {"linear", "nonlinear"}
    factor_mean, factor_vol, noise_vol : float
        :math:`\\mu`, :math:`\\sigma_f`, :math:`\\sigma_\\varepsilon`.
    member_prob : float
        Each stock-period is in the universe with this probability.
    seed : int

    Returns
    -------
    ch : Characteristics
        ``Z`` ``(T, N, P)``, ``R`` ``(T, N)`` (NaN off-universe), monthly dates.
    truth : dict
        ``beta`` ``(T, N, K)`` and ``factors`` ``(T, K)``.
    """
    rng = np.random.default_rng(seed)
    T, N, P, K = n_periods, n_stocks, n_chars, n_factors
    z = rng.uniform(-1.0, 1.0, (T, N, P))
    if kind == "linear":
        beta = add_constant(z) @ rng.standard_normal((P + 1, K))
    else:
        beta = nonlinear_betas(z, K)
    f = factor_mean + factor_vol * rng.standard_normal((T, K))
    member = rng.random((T, N)) < member_prob
    R = np.where(member, np.einsum("tnk,tk->tn", beta, f) + noise_vol * rng.standard_normal((T, N)), np.nan)
    ch = Characteristics(Z=np.where(member[..., None], z, 0.0), R=R, mask=member, member=member,
                         dates=pd.date_range("2000-01-31", periods=T, freq="ME"), rows=np.arange(T),
                         names=[f"c{p}" for p in range(P)], missing=np.zeros((T, P), dtype=np.int64),
                         instruments=pd.Index([f"S{i:03d}" for i in range(N)]), frequency="monthly")
    return ch, {"beta": beta, "factors": f}
