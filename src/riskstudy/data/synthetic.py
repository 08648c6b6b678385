"""A synthetic market with a planted, known conditional factor structure.

Used by unit tests and by planted-factor recovery checks: every quantity a risk
model tries to estimate is stored as ground truth.

Generative model
----------------
Timing convention: row ``t`` of every ground-truth array describes the law of
the returns of day ``t`` *conditional on information through day t-1*.

Characteristics (observable, ``M`` per stock) are a permanent stock level plus a
stationary AR(1) deviation, each of variance 1/2:

.. math:: c_{t,i} = (a_i + x_{t,i}) / \\sqrt 2,\\quad
          x_{t,i} = \\phi\\, x_{t-1,i} + \\sqrt{1-\\phi^2}\\, \\eta_{t,i},
          \\quad a_i, \\eta_{t,i} \\sim N(0, I_M),

and characteristic 0 is log size (it drives dollar volume). Exposures of day
``t`` are non-linear functions of the characteristics of day ``t-1``:

.. math:: b_{t,i,k} = \\tanh(c_{t-1,i}^\\top w_k)
          + \\tfrac12 \\tanh(c_{t-1,i,p_k}\\, c_{t-1,i,q_k})

for the ``n_factors`` style factors, followed by one-hot sector exposures
(``n_sectors`` sector factors, whose common correlation plays the market).
Factor returns are :math:`f_t = \\mu + \\Sigma_t^{1/2} z_t` with

.. math:: \\Sigma_t = \\mathrm{diag}(\\sigma_t) R_{s_t} \\mathrm{diag}(\\sigma_t),\\quad
          \\sigma_{t,k} = \\bar\\sigma_k\\, m_{s_t} \\sqrt{g_{t,k}},\\quad
          g_{t,k} = (1-a-b) + a\\, u_{t-1,k}^2 + b\\, g_{t-1,k},

where :math:`s_t \\in \\{0 \\text{ calm}, 1 \\text{ stress}\\}` is a two-state
Markov regime drawn at the close of ``t-1`` (so it is known at ``t-1``),
``g`` is a GARCH(1,1) variance multiplier driven by the standardised factor
shocks :math:`u_{t-1,k} = (f_{t-1,k}-\\mu_k)/\\sigma_{t-1,k}`, and ``R_s``
raises the sector correlation in stress. Specific returns are heteroskedastic,

.. math:: \\varepsilon_{t,i} \\sim N(0, d_{t,i}),\\quad
          \\log \\sqrt{d_{t,i}} = \\log\\bar d - 0.2\\, c_{t-1,i,0} + h_{t,i},

with ``h`` a stationary AR(1) log-volatility, set (like ``s_t``) at the close
of ``t-1``; smaller stocks are more volatile. Returns are :math:`r_t = B_t f_t + \\varepsilon_t`, hence
:math:`\\mathrm{Cov}(r_t \\mid \\mathcal F_{t-1}) = B_t \\Sigma_t B_t^\\top + \\mathrm{diag}(d_t)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskstudy.config import SplitConfig
from riskstudy.data.market import MarketData
from riskstudy.data.panel import Panel, returns_from_close

REGIME_VOL = np.array([1.0, 2.0])  # volatility multiplier m_s (calm, stress)
REGIME_STAY = np.array([0.99, 0.95])  # P(s_t = s | s_{t-1} = s)
SECTOR_CORR = np.array([0.6, 0.85])  # correlation of sector factors (calm, stress)
GARCH_A, GARCH_B = 0.05, 0.90


@dataclass
class SyntheticMarket:
    """A synthetic :class:`Panel` plus the ground truth that generated it.

    Attributes
    ----------
    panel : Panel
        Market ``"synthetic"``: OHLCV, ``ret``, ``dollar_volume``, ``member``
        and ``sector`` (T days, N stocks).
    characteristics : ndarray, shape (T, N, M)
        Observable stock characteristics at the close of each day (column 0 is log size).
    exposures : ndarray, shape (T, N, K)
        ``B_t``: exposures pricing day ``t``, functions of ``characteristics[t-1]``.
    factor_returns : ndarray, shape (T, K)
        Realised factor returns ``f_t``.
    factor_mean : ndarray, shape (K,)
        ``mu``, the unconditional factor premia.
    factor_cov : ndarray, shape (T, K, K)
        ``Sigma_t = Cov(f_t | F_{t-1})``.
    specific_var : ndarray, shape (T, N)
        ``d_t``: conditional specific variances.
    regime : ndarray of int, shape (T,)
        Volatility regime of each day (0 calm, 1 stress).
    factor_names : list of str, length K
        ``style_0..`` followed by ``sector_<label>``.
    """

    panel: Panel
    characteristics: np.ndarray
    exposures: np.ndarray
    factor_returns: np.ndarray
    factor_mean: np.ndarray
    factor_cov: np.ndarray
    specific_var: np.ndarray
    regime: np.ndarray
    factor_names: list[str]

    def true_covariance(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Factor form of ``Cov(r_t | F_{t-1}) = B F B' + diag(D)``.

        Returns
        -------
        B : ndarray, shape (N, K)
        F : ndarray, shape (K, K)
        D : ndarray, shape (N,)
            Specific variances (the diagonal of the specific covariance).
        """
        return self.exposures[t], self.factor_cov[t], self.specific_var[t]

    def market_data(self) -> MarketData:
        """The panel with an equal-weight benchmark (the mean return of the day's stocks), as a prepared market."""
        ret = self.panel["ret"]
        has = np.isfinite(ret).any(axis=1)
        bench = np.full(len(ret), np.nan)
        bench[has] = np.nanmean(ret[has], axis=1)
        return MarketData(self.panel, pd.Series(bench, index=self.panel.dates), "synthetic equal-weight")

    def split(self, *, train_end: int, valid_end: int) -> SplitConfig:
        """Train on rows ``0..train_end``, validate on ``train_end + 1..valid_end``, test on the rest."""
        d = self.panel.dates
        return SplitConfig(train_start=d[0].date(), train_end=d[train_end].date(), valid_start=d[train_end + 1].date(),
                           valid_end=d[valid_end].date(), test_start=d[valid_end + 1].date(), test_end=d[-1].date())

    def dense_covariance(self, t: int) -> np.ndarray:
        """The ``(N, N)`` matrix ``B F B' + diag(D)`` of day ``t`` (tests only)."""
        B, F, D = self.true_covariance(t)
        return B @ F @ B.T + np.diag(D)


def _ar1(rng: np.random.Generator, *, n_days: int, shape: tuple[int, ...], phi: float, burn: int = 200) -> np.ndarray:
    """Stationary unit-variance AR(1) paths, shape ``(n_days + 1, *shape)`` (row 0 is day -1)."""
    x = rng.standard_normal(shape)
    scale = np.sqrt(1.0 - phi**2)
    out = np.empty((n_days + 1 + burn, *shape))
    noise = rng.standard_normal(out.shape)
    for t in range(out.shape[0]):
        x = phi * x + scale * noise[t]
        out[t] = x
    return out[burn:]


def _style_correlation(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random, mildly correlated ``(n, n)`` correlation matrix."""
    a = np.eye(n) + 0.3 * rng.standard_normal((n, n))
    c = a @ a.T
    s = 1.0 / np.sqrt(np.diag(c))
    return c * s[:, None] * s[None, :]


def make_synthetic_market(
    *,
    n_days: int,
    n_stocks: int,
    n_factors: int,
    n_sectors: int,
    seed: int,
    n_characteristics: int = 4,
    char_persistence: float = 0.995,
    style_vol: float = 0.005,
    sector_vol: float = 0.01,
    specific_vol: float = 0.015,
    turnover: float = 0.2,
    start: str = "2010-01-04",
) -> SyntheticMarket:
    """Simulate a market with a planted conditional factor model.

    Parameters
    ----------
    n_days, n_stocks : int
        ``T`` trading days (business days from ``start``) and ``N`` stocks.
    n_factors : int
        Number of non-linear style factors (``K = n_factors + n_sectors``).
    n_sectors : int
        Number of sectors; each stock belongs to one and loads 1 on its sector factor.
    seed : int
        Seed of :func:`numpy.random.default_rng`; the output is a deterministic function of it.
    n_characteristics : int
        ``M >= 2`` AR(1) characteristics driving the style exposures.
    char_persistence : float
        AR(1) coefficient ``phi`` of the characteristics' deviations (close to 1: slowly varying).
    style_vol, sector_vol, specific_vol : float
        Calm-regime daily volatilities ``sigma_bar`` of style and sector factors and
        the median specific volatility ``d_bar``.
    turnover : float
        Fraction of stocks listed after day 0, and (independently) fraction delisted
        before the last day; prices are NaN and ``member`` False outside the listing span.
    start : str
        First calendar date.

    Returns
    -------
    SyntheticMarket
    """
    if n_characteristics < 2 or n_factors < 1 or n_sectors < 1:
        raise ValueError("make_synthetic_market needs n_characteristics >= 2, n_factors >= 1, n_sectors >= 1")
    rng = np.random.default_rng(seed)
    T, N, M, K = n_days, n_stocks, n_characteristics, n_factors + n_sectors

    # characteristics: a permanent stock level plus an AR(1) deviation, each with variance 1/2;
    # row 0 is day -1, so exposures[t] = g(chars[t]) is a function of day t-1's characteristics
    chars = np.sqrt(0.5) * (rng.standard_normal((N, M)) + _ar1(rng, n_days=T, shape=(N, M), phi=char_persistence))
    w = rng.standard_normal((M, n_factors)) / np.sqrt(M)
    pairs = np.stack([rng.choice(M, size=2, replace=False) for _ in range(n_factors)])  # (n_factors, 2)
    lagged = chars[:-1]
    style = np.tanh(lagged @ w) + 0.5 * np.tanh(lagged[..., pairs[:, 0]] * lagged[..., pairs[:, 1]])
    sector = rng.integers(n_sectors, size=N)
    exposures = np.concatenate([style, np.broadcast_to(np.eye(n_sectors)[sector], (T, N, n_sectors))], axis=2)

    # factor returns: Markov regime x GARCH(1,1) multiplier x regime-dependent correlation
    corr = np.zeros((2, K, K))
    corr[:, :n_factors, :n_factors] = _style_correlation(rng, n_factors)
    for s in range(2):
        corr[s, n_factors:, n_factors:] = SECTOR_CORR[s] + (1.0 - SECTOR_CORR[s]) * np.eye(n_sectors)
    base_vol = np.r_[np.full(n_factors, style_vol), np.full(n_sectors, sector_vol)]
    mean = np.r_[rng.normal(0.0, 0.1 * style_vol, n_factors), np.full(n_sectors, 0.03 * sector_vol)]
    chol = np.linalg.cholesky(corr)
    regime = np.empty(T, dtype=np.int64)
    factor_cov = np.empty((T, K, K))
    factor_returns = np.empty((T, K))
    z = rng.standard_normal((T, K))
    switch = rng.random(T)
    s, g, u = 0, np.ones(K), np.ones(K)  # u = 1 starts g at its unconditional mean 1
    for t in range(T):
        s = s if switch[t] < REGIME_STAY[s] else 1 - s
        g = (1.0 - GARCH_A - GARCH_B) + GARCH_A * u**2 + GARCH_B * g
        vol = base_vol * REGIME_VOL[s] * np.sqrt(g)
        regime[t] = s
        factor_cov[t] = corr[s] * vol[:, None] * vol[None, :]
        u = chol[s] @ z[t]
        factor_returns[t] = mean + vol * u

    # heteroskedastic specific returns (smaller stocks are more volatile)
    log_vol = 0.3 * _ar1(rng, n_days=T, shape=(N,), phi=0.95)[1:]
    specific_var = (specific_vol * np.exp(-0.2 * lagged[..., 0] + log_vol)) ** 2
    ret = np.einsum("tnk,tk->tn", exposures, factor_returns) + np.sqrt(specific_var) * rng.standard_normal((T, N))

    panel = _panel_from_returns(rng, ret=ret, size=chars[1:, :, 0], sector=sector, turnover=turnover, start=start)
    return SyntheticMarket(
        panel=panel,
        characteristics=chars[1:],
        exposures=exposures,
        factor_returns=factor_returns,
        factor_mean=mean,
        factor_cov=factor_cov,
        specific_var=specific_var,
        regime=regime,
        factor_names=[f"style_{k}" for k in range(n_factors)] + [f"sector_S{j:02d}" for j in range(n_sectors)],
    )


def _panel_from_returns(
    rng: np.random.Generator, *, ret: np.ndarray, size: np.ndarray, sector: np.ndarray, turnover: float, start: str
) -> Panel:
    """OHLCV, dollar volume and listing-span membership consistent with ``ret`` (T, N).

    ``close = P_0 prod(1 + r)``; ``open = close_{t-1} (1 + w r_t)`` with an overnight share
    ``w ~ U(0, 0.5)``; high/low widen ``max/min(open, close)`` by half-normal noise;
    ``dollar_volume = exp(13 + 1.5 size + 0.3 noise) (1 + 10 |r|)`` (log-normal size
    distribution, more trading on big moves); ``volume = dollar_volume / close``.
    """
    T, N = ret.shape
    first_price = np.exp(rng.uniform(np.log(5.0), np.log(100.0), N))
    prev = first_price * np.cumprod(np.vstack([np.ones(N), 1.0 + ret[:-1]]), axis=0)  # close of t-1
    close = prev * (1.0 + ret)
    open_ = prev * (1.0 + rng.uniform(0.0, 0.5, (T, N)) * ret)
    wick = np.abs(rng.normal(0.0, 0.005, (2, T, N)))
    high = np.maximum(open_, close) * (1.0 + wick[0])
    low = np.minimum(open_, close) * (1.0 - wick[1])
    dollar_volume = np.exp(13.0 + 1.5 * size + 0.3 * rng.standard_normal((T, N))) * (1.0 + 10.0 * np.abs(ret))

    first = np.where(rng.random(N) < turnover, rng.integers(1, max(T // 2, 2), N), 0)
    last = np.where(rng.random(N) < turnover, rng.integers(T // 2, T, N), T)  # exclusive
    days = np.arange(T)[:, None]
    listed = (days >= first) & (days < last)
    fields = {k: np.where(listed, v, np.nan) for k, v in
              {"open": open_, "high": high, "low": low, "close": close, "dollar_volume": dollar_volume}.items()}
    fields["volume"] = fields["dollar_volume"] / fields["close"]
    fields["ret"] = returns_from_close(fields["close"])
    instruments = pd.Index([f"SYN{i:04d}" for i in range(N)])
    return Panel(
        market="synthetic",
        dates=pd.bdate_range(start, periods=T),
        instruments=instruments,
        fields=fields,
        member=listed,
        sector=pd.Series([f"S{j:02d}" for j in sector], index=instruments, name="sector"),
    )
