r"""Linear baselines of the conditional autoencoder section: IPCA and static PCA, on the same periods.

IPCA (Kelly, Pruitt, Su 2019), restricted (no alpha): returns of period ``t`` load on betas that
are linear in the instruments known at the end of ``t-1``,

.. math:: r_{i,t} = \tilde z_{i,t-1}' \Gamma f_t + \varepsilon_{i,t}, \qquad \tilde z = [z, 1],
          \quad \Gamma: (L \times K),

fitted on the training periods by alternating least squares (:func:`ipca_als`, ours, vectorised)
or by the ``ipca`` package's ``InstrumentedPCA`` (:func:`package_ipca`); the two agree
(``tests/cae/test_ipca.py``). Out of sample, the factor of period ``t`` is the cross-sectional
regression of ``r_t`` on the fitted betas (:func:`cross_sectional_factors`):

.. math:: f_t = (\Gamma' \tilde Z_{t-1}' \tilde Z_{t-1} \Gamma)^{-1} \Gamma' \tilde Z_{t-1}' r_t.

We compute it ourselves rather than with ``InstrumentedPCA.predictOOS`` (ipca 0.6.7), which has a
known defect (bkelly-lab/ipca issue 15): with ``mean_factor=False`` it returns
``np.diag(X @ Gamma @ F)`` of an ``(n, 1)`` matrix, i.e. **one** prediction (the first row's)
instead of one per observation; and it fits a single factor from all the rows it is given, so
rows of several periods are pooled into one regression. ``test_predict_oos_defect`` documents both.

Static PCA: loadings on the principal components of the training periods' individual returns
(:func:`riskstudy.factors.srm.static_loadings`), held fixed; factors out of sample by the same
cross-sectional regression.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from riskstudy.cae.characteristics import Characteristics, add_constant
from riskstudy.factors.srm import static_loadings


@dataclass
class IPCAFit:
    """Output of :func:`ipca_als` / :func:`package_ipca`.

    Attributes
    ----------
    gamma : ndarray, shape (L, K)
        :math:`\\Gamma`, with :math:`\\Gamma'\\Gamma = I`.
    factors : ndarray, shape (T, K)
        In-sample factors; :math:`F'F` diagonal, decreasing; each factor's time mean positive.
    n_iter : int
        ALS iterations run.
    converged : bool
        The last update moved no entry of ``gamma`` or ``factors`` by more than the tolerance.
    """

    gamma: np.ndarray
    factors: np.ndarray
    n_iter: int
    converged: bool


def portfolio_moments(Z: np.ndarray, R: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Per-period instrument moments :math:`W_t = Z_t'Z_t / n_t`, :math:`Q_t = Z_t' r_t / n_t` over ``mask``.

    Parameters
    ----------
    Z : ndarray, shape (T, N, L)
        Instruments (with the constant column, :func:`~riskstudy.cae.characteristics.add_constant`).
    R : ndarray, shape (T, N)
    mask : ndarray of bool, shape (T, N)

    Returns
    -------
    W : ndarray, shape (T, L, L)
    Q : ndarray, shape (T, L)
    n : ndarray, shape (T,)
        Stocks per period (each must be positive).
    """
    n = mask.sum(1).astype(float)
    if (n == 0).any():
        raise ValueError(f"periods {np.flatnonzero(n == 0).tolist()} have no stocks: leave them out")
    zm = Z * mask[..., None]
    W = np.einsum("tna,tnb->tab", zm, zm) / n[:, None, None]
    Q = np.einsum("tna,tn->ta", zm, np.where(mask, R, 0.0)) / n[:, None]
    return W, Q, n


def _normalise(gamma: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Rotate to the IPCA identification: :math:`\Gamma'\Gamma = I`, :math:`F'F` diagonal decreasing, positive factor means.

    :math:`R_1` is the upper Cholesky factor of :math:`\Gamma'\Gamma`, :math:`R_2` the left singular
    vectors of :math:`R_1 F'F R_1'`; :math:`\Gamma \leftarrow \Gamma R_1^{-1} R_2`,
    :math:`f_t \leftarrow R_2' R_1 f_t` (the ``ipca`` package's convention).
    """
    r1 = np.linalg.cholesky(gamma.T @ gamma).T
    r2 = np.linalg.svd(r1 @ f.T @ f @ r1.T)[0]
    gamma = np.linalg.solve(r1.T, gamma.T).T @ r2
    f = np.linalg.solve(r2, r1 @ f.T).T
    sg = np.sign(f.mean(0))
    sg[sg == 0] = 1.0
    return gamma * sg, f * sg


def ipca_als(Z: np.ndarray, R: np.ndarray, mask: np.ndarray, *, n_factors: int, max_iter: int = 1000,
             tol: float = 1e-6) -> IPCAFit:
    r"""Restricted IPCA by alternating least squares, vectorised over periods.

    Minimises :math:`\sum_t \sum_{i \in \text{mask}_t} (r_{i,t} - z_{i,t}'\Gamma f_t)^2` by alternating

    * :math:`f_t = (\Gamma' W_t \Gamma)^{-1} \Gamma' Q_t` for every ``t`` (one batched solve), and
    * :math:`\mathrm{vec}(\Gamma) = \big(\sum_t n_t W_t \otimes f_t f_t'\big)^{-1} \sum_t n_t Q_t \otimes f_t`,

    each step followed by :func:`_normalise`, from the SVD start :math:`\Gamma_0 = U_{:K}`,
    :math:`F_0 = (S V')_{:K}` of :math:`Q = [Q_1 \dots Q_T]` ``(L, T)``, until no entry of
    :math:`\Gamma` or :math:`F` moves by more than ``tol`` (the ``ipca`` package's scheme).

    Both solves are minimum-norm least squares (pseudo-inverse, ``lstsq``) rather than plain
    solves: instruments can be exactly collinear (a characteristic missing, hence 0, for every
    member of a period; or ranks that coincide, as the paper's ``betasq`` does with ``beta`` in
    China, see :mod:`~riskstudy.cae.characteristics`), which leaves a direction of :math:`\Gamma`
    unidentified but the fitted returns unique; the package's plain solve fails there.

    Parameters
    ----------
    Z : ndarray, shape (T, N, L)
        Instruments pricing ``R`` (row ``t`` known before the returns of ``R[t]``).
    R : ndarray, shape (T, N)
    mask : ndarray of bool, shape (T, N)
    n_factors : int
        K (``<= L``).
    max_iter : int
    tol : float

    Returns
    -------
    IPCAFit
    """
    W, Q, n = portfolio_moments(Z, R, mask)
    T, L = Q.shape
    K = n_factors
    if K > L:
        raise ValueError(f"n_factors={K} exceeds the {L} instruments")
    u, s, vt = np.linalg.svd(Q.T, full_matrices=False)
    gamma, f = u[:, :K], (s[:K, None] * vt[:K]).T
    nW = (n[:, None, None] * W).reshape(T, L * L)  # the den's sum over t as (L L x T) @ (T x K K)
    converged, it = False, 0
    while it < max_iter:
        f_new = np.einsum("tkl,tl->tk", np.linalg.pinv(gamma.T @ W @ gamma, hermitian=True), Q @ gamma)  # (T, K)
        ff = np.einsum("tk,tl->tkl", f_new, f_new).reshape(T, K * K)
        den = (nW.T @ ff).reshape(L, L, K, K).transpose(0, 2, 1, 3).reshape(L * K, L * K)  # one matmul
        num = ((n[:, None] * Q).T @ f_new).reshape(L * K)
        g_new = np.linalg.lstsq(den, num, rcond=None)[0].reshape(L, K)
        g_new, f_new = _normalise(g_new, f_new)
        step = max(np.abs(g_new - gamma).max(), np.abs(f_new - f).max())
        gamma, f, it = g_new, f_new, it + 1
        if step <= tol:
            converged = True
            break
    return IPCAFit(gamma=gamma, factors=f, n_iter=it, converged=converged)


def _stacked(Z: np.ndarray, R: np.ndarray, mask: np.ndarray) -> tuple[pd.DataFrame, pd.Series]:
    """The ``ipca`` package's long format: rows ``(entity, period)`` of ``mask``, instruments as columns."""
    t, i = np.nonzero(mask)
    index = pd.MultiIndex.from_arrays([i, t], names=["id", "period"])
    return pd.DataFrame(Z[t, i], index=index), pd.Series(R[t, i], index=index)


def package_ipca(Z: np.ndarray, R: np.ndarray, mask: np.ndarray, *, n_factors: int, max_iter: int = 1000,
                 tol: float = 1e-6) -> IPCAFit:
    """The same fit as :func:`ipca_als` by ``ipca.InstrumentedPCA`` (``intercept=False``, portfolio ALS).

    The package prints the panel size and draws a progress bar (on the ``sys.stderr`` bound at
    import) while building its portfolios: both are silenced here. Its first call in a process
    compiles its numba kernels (about 20 s on one core). Its plain solves raise
    ``LinAlgError`` on exactly collinear instruments (measured on China's month ends with the
    paper's ``betasq``, the ranked :math:`\beta^2`). ``n_iter`` is not reported by the package
    (-1); ``converged`` is assumed.
    """
    import functools

    import ipca.ipca as pkg

    X, y = _stacked(Z, R, mask)
    reg = pkg.InstrumentedPCA(n_factors=n_factors, intercept=False, max_iter=max_iter, iter_tol=float(tol))
    bar = pkg.progressbar.ProgressBar
    try:
        pkg.progressbar.ProgressBar = functools.partial(bar, fd=io.StringIO())
        with contextlib.redirect_stdout(io.StringIO()):
            reg = reg.fit(X=X, y=y, data_type="portfolio", quiet=True)
    finally:
        pkg.progressbar.ProgressBar = bar
    return IPCAFit(gamma=np.asarray(reg.Gamma), factors=np.asarray(reg.Factors).T, n_iter=-1, converged=True)


def cross_sectional_factors(beta: np.ndarray, R: np.ndarray, mask: np.ndarray) -> np.ndarray:
    r"""Factors of each period by OLS of returns on betas: :math:`f_t = (B_t'B_t)^{+} B_t' r_t` over ``mask[t]``.

    Parameters
    ----------
    beta : ndarray, shape (T, N, K)
    R : ndarray, shape (T, N)
    mask : ndarray of bool, shape (T, N)

    Returns
    -------
    ndarray, shape (T, K)
        0 for periods without stocks (pseudo-inverse).
    """
    bm = np.where(mask[..., None], beta, 0.0)
    g = np.einsum("tnk,tnl->tkl", bm, bm)
    b = np.einsum("tnk,tn->tk", bm, np.where(mask, R, 0.0))
    return np.einsum("tkl,tl->tk", np.linalg.pinv(g, hermitian=True), b)


def _periods(periods: np.ndarray) -> np.ndarray:
    return np.asarray(periods, dtype=np.int64)


class IPCA:
    """Restricted IPCA on instruments ``[Z, 1]`` of :class:`~riskstudy.cae.characteristics.Characteristics`.

    Parameters
    ----------
    n_factors : int
        K.
    backend : {"als", "package"}
        Our :func:`ipca_als` or the ``ipca`` package (:func:`package_ipca`).
    max_iter, tol : int, float
        ALS stopping rule.

    Attributes
    ----------
    gamma_ : ndarray, shape (P + 1, K)
    factors_ : ndarray, shape (T_train, K)
        In-sample factors of the training periods.
    fit_ : IPCAFit
    """

    def __init__(self, *, n_factors: int, backend: Literal["als", "package"] = "als", max_iter: int = 1000,
                 tol: float = 1e-6) -> None:
        self.n_factors, self.backend, self.max_iter, self.tol = n_factors, backend, max_iter, tol

    def fit(self, ch: Characteristics, *, train: np.ndarray) -> "IPCA":
        """Fit on the training periods ``train`` ``(T_train,)`` (indices into ``ch``; periods without stocks are skipped)."""
        train = _periods(train)
        train = train[ch.mask[train].any(1)]
        fit = {"als": ipca_als, "package": package_ipca}[self.backend]
        self.fit_ = fit(add_constant(ch.Z[train]), ch.R[train], ch.mask[train], n_factors=self.n_factors,
                        max_iter=self.max_iter, tol=self.tol)
        self.gamma_, self.factors_, self.train_ = self.fit_.gamma, self.fit_.factors, train
        return self

    def betas(self, ch: Characteristics, periods: np.ndarray) -> np.ndarray:
        """:math:`\\beta_{i,t} = [z_{i,t}, 1]'\\Gamma` ``(T, N, K)`` of ``periods`` (known at each period end)."""
        return add_constant(ch.Z[_periods(periods)]) @ self.gamma_

    def factors(self, ch: Characteristics, periods: np.ndarray) -> np.ndarray:
        """Out-of-sample factors ``(T, K)``: :func:`cross_sectional_factors` of ``R`` on :meth:`betas` (not ``predictOOS``)."""
        p = _periods(periods)
        return cross_sectional_factors(self.betas(ch, p), ch.R[p], ch.mask[p])


class StaticPCA:
    """PCA loadings of the training periods' individual returns, held fixed; factors by cross-sectional OLS.

    Parameters
    ----------
    n_factors : int
        K.
    min_periods : int
        Training periods (with a label, as a member) a stock needs to get loadings; the others get
        beta 0 (explained by nothing).

    Attributes
    ----------
    loadings_ : ndarray, shape (N, K)
        Unit-norm loadings (0 for stocks without enough history).
    covered_ : ndarray of bool, shape (N,)
    """

    def __init__(self, *, n_factors: int, min_periods: int = 24) -> None:
        self.n_factors, self.min_periods = n_factors, min_periods

    def fit(self, ch: Characteristics, *, train: np.ndarray) -> "StaticPCA":
        """Loadings from :func:`~riskstudy.factors.srm.static_loadings` of ``R[train]`` over ``mask[train]``."""
        t = _periods(train)
        loadings, self.covered_ = static_loadings(ch.R[t], k=self.n_factors, mask=ch.mask[t], min_obs=self.min_periods)
        self.loadings_ = np.nan_to_num(loadings, nan=0.0)
        return self

    def betas(self, ch: Characteristics, periods: np.ndarray) -> np.ndarray:
        """The training loadings for every period ``(T, N, K)``."""
        return np.broadcast_to(self.loadings_, (len(_periods(periods)), *self.loadings_.shape)).copy()

    def factors(self, ch: Characteristics, periods: np.ndarray) -> np.ndarray:
        """Factors ``(T, K)`` by :func:`cross_sectional_factors` over the covered members."""
        p = _periods(periods)
        return cross_sectional_factors(self.betas(ch, p), ch.R[p], ch.mask[p] & self.covered_[None, :])
