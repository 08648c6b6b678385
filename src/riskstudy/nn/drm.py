r"""The Deep Risk Model network (Lin et al., ICAIF 2021, section 4).

Per stock and day the input is an ``L = 20`` step sequence of ``P = 5`` features; the output
is ``K`` risk-factor exposures, built from two branches of ``K / 2`` factors each:

1. **GAT branch.** At every time step a graph attention layer over the members of the *same*
   day: :math:`z = W x` (``W`` is ``P x P``, initialised to the identity),
   :math:`e_{ij} = \mathrm{LeakyReLU}(a_1^\top z_i + a_2^\top z_j) / \sqrt{2P}`, softmax over
   members :math:`j`, attention dropout, :math:`h_i = \mathrm{LeakyReLU}(\sum_j \alpha_{ij} z_j)`.
   The residual :math:`x - h` (the part of a stock's sequence not explained by its attention
   neighbourhood) feeds a factor head.
2. **GRU branch.** A factor head on the raw ``x``.

A factor head is a sequence encoder (:mod:`riskstudy.nn.encoders`; by default the paper's
2-layer GRU, hidden 32, with attention pooling over its ``L`` hidden states -- score
:math:`v^\top \tanh(U h_\tau + b)`, softmax over time, weighted sum -- concatenated with the
last hidden state), then a linear map to ``K / 2`` factors. ``gat=False`` (the
"disable GAT" ablation) replaces the GAT branch by a second, independently initialised factor head
on raw ``x``, so ``K`` is unchanged. LeakyReLU uses PyTorch's default slope 0.01 (``NEG_SLOPE``).

The concatenated factors are normalised per day (:func:`normalize_exposures`) and *then*
smoothed across consecutive days (:func:`smooth_exposures`); the smoothed exposures feed the
loss and are what :func:`~riskstudy.nn.drm_train.predict_exposures` returns. Normalising first
makes the smoothing average like-scaled cross-sections (raw network outputs have arbitrary,
drifting scale); the smoothed exposures are convex combinations of normalised ones, so their
cross-sectional scale stays close to, but not exactly, 1.

GAT memory/speed trade-off
--------------------------
:math:`e_{ij} = s_i + t_j` is a rank-1 sum and LeakyReLU is linear on each side of 0, so every
attention weight factorises into a row term times a column term, with the regime
(:math:`s_i + t_j > 0`) a threshold on the column score :math:`t_j`. The attention is a custom
autograd function (:class:`_Attention`) that never evaluates an exponential per pair:

* without dropout (validation, prediction, ``attn_dropout = 0``) every sum over neighbours is
  a sorted prefix/suffix sum, ``O(M log M)`` per (day, step) graph instead of ``O(M^2)``;
* with dropout (training) the per-pair mask forces ``O(M^2)`` work, but only as two 0/1
  masks per graph and matrix products with them (one comparison and a few products per pair);
  nothing float ``M x M`` is kept for backward, only the dropout's random bytes (1 byte per
  pair: ~115 MB for ``B = 64, L = 20, M = 300``). Work runs over chunks of ``gat_chunk_days``
  days, bounding the float ``M x M`` buffers to ``~3 * gat_chunk_days * L * M^2 * 4`` bytes.

Values and gradients equal the dense textbook layer to float64 round-off (tested, with and
without dropout).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from riskstudy.config import DRMParams
from riskstudy.nn.encoders import make_encoder

#: Negative slope of every LeakyReLU (PyTorch's default).
NEG_SLOPE = 0.01
#: P, input features per time step: open, high, low, close and volume (:mod:`riskstudy.features.drm_inputs`).
N_FEATURES = 5
#: L, time steps per input sequence (the 20 lags of ``features.lags``).
SEQ_LEN = 20


def _dropout_bytes(shape: torch.Size, *, seed: int, device: torch.device) -> torch.Tensor:
    """Uniform random bytes of ``shape`` (eight per 64-bit draw), reproducible from ``seed``."""
    gen = torch.Generator(device=device).manual_seed(seed)
    n = math.prod(shape)
    words = torch.empty((n + 7) // 8, dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1, generator=gen)
    return words.view(torch.uint8)[:n].view(shape)


def _keep_mask(random_bytes: torch.Tensor, *, p: float, dtype: torch.dtype) -> torch.Tensor:
    """Float 0/1 keep mask: keep where the byte is >= ``256 p`` (drop probability ``round(256 p) / 256``)."""
    out = torch.empty(random_bytes.shape, dtype=dtype, device=random_bytes.device)
    return torch.ge(random_bytes, round(p * 256), out=out)


#: Exponents below this give exactly 0 (relative weight < 1e-26): keeps every factor and product
#: in normal floating-point range (denormals and the -1e30 non-member scores are ~40x slower).
LOG_FLOOR = -60.0


def _exp_or_zero(v: torch.Tensor) -> torch.Tensor:
    """``exp(v)`` where ``v > LOG_FLOOR``, else exactly 0."""
    return torch.where(v > LOG_FLOOR, v.clamp_min(LOG_FLOOR).exp(), 0.0)


def _regime_sums(keys: torch.Tensor, queries: torch.Tensor, upper: torch.Tensor, lower: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per query, the sums of ``upper`` over keys above it and of ``lower`` over keys at or below it.

    :math:`U_i = \sum_{j: k_j > q_i} u_j`, :math:`D_i = \sum_{j: k_j \le q_i} l_j`, in
    ``O(M log M)`` by sorting the keys and taking suffix/prefix sums.

    Parameters
    ----------
    keys, queries : torch.Tensor, shape (G, M)
    upper, lower : torch.Tensor, shape (G, M, C)

    Returns
    -------
    above, below : torch.Tensor, shape (G, M, C)
    """
    sorted_keys, perm = keys.sort(dim=-1)
    n_below = torch.searchsorted(sorted_keys, queries, right=True)  # (G, M): keys <= query
    idx = perm.unsqueeze(-1).expand_as(upper)
    zero = upper.new_zeros(upper.shape[0], 1, upper.shape[-1])
    suffix = torch.cat([upper.gather(1, idx).flip(1).cumsum(1).flip(1), zero], dim=1)  # (G, M+1, C)
    prefix = torch.cat([zero, lower.gather(1, idx).cumsum(1)], dim=1)
    at = n_below.unsqueeze(-1).expand(-1, -1, upper.shape[-1])
    return suffix.gather(1, at), prefix.gather(1, at)


class _Attention(torch.autograd.Function):
    r"""Masked additive attention in factorised form: no ``M x M`` exponentials, none saved.

    With :math:`u_{ij} = s_i + t_j`, LeakyReLU is linear on each side of 0, so every weight is
    a product of a row and a column term,

    .. math::  e_{ij} = \exp(\mathrm{LeakyReLU}(u_{ij}) - m_i) =
               \begin{cases} a^+_i b^+_j & u_{ij} > 0 \\ a^-_i b^-_j & u_{ij} \le 0 \end{cases}

    with :math:`b^+_j = e^{t_j - t^*}`, :math:`b^-_j = e^{0.01 (t_j - t^*)}`,
    :math:`a^+_i = e^{x_i - m_i}`, :math:`a^-_i = e^{0.01 x_i - m_i}`, :math:`x_i = s_i + t^*`,
    :math:`t^* = \max_j t_j` and :math:`m_i = \mathrm{LeakyReLU}(x_i)` (all four terms lie in
    ``(0, 1]``, and the largest weight of every row is exactly 1). ``u_ij > 0`` iff
    ``t_j > -s_i``: the "positive" neighbours of row ``i`` are a suffix of the keys sorted by
    ``t``, so every sum over ``j`` without dropout (the softmax normaliser
    :math:`S_i = \sum_j e_{ij}`, and in eval mode the aggregate :math:`\sum_j e_{ij} z_j`) is a
    gather of suffix/prefix sums: ``O(M log M)`` per graph (:func:`_regime_sums`).

    With dropout :math:`D_{ij}` (training), the aggregate
    :math:`\tilde h_i = r_i \sum_j D_{ij} e_{ij} z_j`, :math:`r_i = 1/((1-p) S_i)`, becomes two
    masked matrix products, :math:`a^+ \circ (D^+ (b^+ z)) + a^- \circ (D^- (b^- z))` with the
    0/1 matrices :math:`D^\pm = D \circ [u \gtrless 0]`: one comparison and one product per
    weight instead of add, LeakyReLU, exp and scaling. Backward uses
    :math:`\partial L/\partial \ell_{ij} = e_{ij} r_i (D_{ij} G_{ij} - (1-p) c_i)`
    (:math:`G_{ij} = g_i^\top z_j`, :math:`c_i = g_i^\top \tilde h_i`), which factorises the same way:
    the ``G`` terms reuse the forward products (rows) or need :math:`D^{\pm\top} (a^\pm r g)`
    (columns, also giving ``dz``); the ``c`` terms are sorted sums over rows. Only the dropout's
    random bytes (1 byte per weight) are kept for backward.
    """

    @staticmethod
    def _terms(s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        t_max = t.amax(-1, keepdim=True)
        x = s + t_max
        m = F.leaky_relu(x, NEG_SLOPE)
        d = t - t_max
        return tuple(_exp_or_zero(v) for v in (x - m, NEG_SLOPE * x - m, d, NEG_SLOPE * d))

    @staticmethod
    def _dropout_regimes(random_bytes: torch.Tensor, s: torch.Tensor, t: torch.Tensor, p: float
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        keep = _keep_mask(random_bytes, p=p, dtype=s.dtype)  # (G, M, M)
        d_pos = torch.gt(t.unsqueeze(-2), -s.unsqueeze(-1), out=torch.empty_like(keep)).mul_(keep)
        return d_pos, keep.sub_(d_pos)

    @staticmethod
    def forward(ctx, s: torch.Tensor, t: torch.Tensor, z: torch.Tensor, p: float, seed: int) -> torch.Tensor:
        a_pos, a_neg, b_pos, b_neg = _Attention._terms(s, t)
        bz_pos, bz_neg = b_pos.unsqueeze(-1) * z, b_neg.unsqueeze(-1) * z
        above, below = _regime_sums(t, -s, torch.cat([b_pos.unsqueeze(-1), bz_pos], -1),
                                    torch.cat([b_neg.unsqueeze(-1), bz_neg], -1))
        s_pos, s_neg = above[..., 0], below[..., 0]  # undropped normaliser parts
        r = 1.0 / ((1.0 - p) * (a_pos * s_pos + a_neg * s_neg))
        random_bytes = None
        if p > 0:
            random_bytes = _dropout_bytes(torch.Size((*t.shape, t.shape[-1])), seed=seed, device=t.device)
            d_pos, d_neg = _Attention._dropout_regimes(random_bytes, s, t, p)
            n_pos, n_neg = d_pos @ bz_pos, d_neg @ bz_neg
        else:
            n_pos, n_neg = above[..., 1:], below[..., 1:]
        out = (a_pos.unsqueeze(-1) * n_pos + a_neg.unsqueeze(-1) * n_neg) * r.unsqueeze(-1)
        ctx.save_for_backward(s, t, z, r, out, n_pos, n_neg, s_pos, s_neg, random_bytes)
        ctx.p = p
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        s, t, z, r, out, n_pos, n_neg, s_pos, s_neg, random_bytes = ctx.saved_tensors
        p = ctx.p
        a_pos, a_neg, b_pos, b_neg = _Attention._terms(s, t)
        c = (g * out).sum(-1)  # (G, M)
        q = g * r.unsqueeze(-1)
        cr = ((1.0 - p) * c * r).unsqueeze(-1)
        # rows: sum_j e_ij slope_ij (D_ij G_ij - (1-p) c_i) r_i
        ds = (a_pos * (q * n_pos).sum(-1) + NEG_SLOPE * a_neg * (q * n_neg).sum(-1)
              - cr[..., 0] * (a_pos * s_pos + NEG_SLOPE * a_neg * s_neg))
        # columns: sums over rows i of row terms, split by regime (u_ij > 0 iff s_i > -t_j)
        qa_pos, qa_neg = a_pos.unsqueeze(-1) * q, a_neg.unsqueeze(-1) * q
        cr_pos, cr_neg = a_pos.unsqueeze(-1) * cr, a_neg.unsqueeze(-1) * cr
        if random_bytes is not None:
            c_above, c_below = _regime_sums(s, -t, cr_pos, cr_neg)
            d_pos, d_neg = _Attention._dropout_regimes(random_bytes, s, t, p)
            u_pos, u_neg = d_pos.transpose(-1, -2) @ qa_pos, d_neg.transpose(-1, -2) @ qa_neg
        else:  # one sort of the row scores for both the c terms (channel 0) and dz
            above, below = _regime_sums(s, -t, torch.cat([cr_pos, qa_pos], -1), torch.cat([cr_neg, qa_neg], -1))
            c_above, c_below, u_pos, u_neg = above[..., :1], below[..., :1], above[..., 1:], below[..., 1:]
        dz = b_pos.unsqueeze(-1) * u_pos + b_neg.unsqueeze(-1) * u_neg
        dt = (b_pos * ((z * u_pos).sum(-1) - c_above[..., 0])
              + NEG_SLOPE * b_neg * ((z * u_neg).sum(-1) - c_below[..., 0]))
        return ds, dt, dz, None, None


class StockGAT(nn.Module):
    """Graph attention over one day's members, independently at every time step.

    Parameters
    ----------
    n_features : int
        P.
    dropout : float
        Attention-weight dropout (training only); the mask uses 8 random bits per weight, so
        the effective probability is ``round(256 p) / 256`` (exact for 0.5).
    chunk_days : int
        Days per call of the attention kernel (bounds the ``M x M`` buffers).
    """

    def __init__(self, *, n_features: int, dropout: float, chunk_days: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.eye(n_features))
        self.a = nn.Parameter(torch.randn(2, n_features))
        self.dropout = round(dropout * 256) / 256
        self.chunk_days = chunk_days

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention aggregate per day and step.

        Parameters
        ----------
        x : torch.Tensor, shape (B, M, L, P)
            Inputs (finite; non-member rows are ignored as neighbours).
        mask : torch.Tensor, bool, shape (B, M)
            Members of each day; attention runs over members of the same day only.

        Returns
        -------
        torch.Tensor, shape (B, M, L, P)
            :math:`h_i = \\mathrm{LeakyReLU}(\\sum_j \\alpha_{ij} W x_j)` per day and step.
        """
        if x.shape[1] == 0:
            return torch.zeros_like(x)
        B, M, L, P = x.shape
        z = (x @ self.W.T).transpose(1, 2).reshape(B * L, M, P)  # one graph per (day, step)
        # LeakyReLU is positively homogeneous: scale the scores by 1/sqrt(2P) before the broadcast add.
        st = z @ (self.a / math.sqrt(2 * P)).T  # (B*L, M, 2)
        # Non-members get a huge negative target score: exp(.) underflows to exactly 0.
        t = st[..., 1].masked_fill(~mask.repeat_interleave(L, dim=0), -1e30)
        p = self.dropout if self.training else 0.0
        out = []
        n = self.chunk_days * L
        for s_c, t_c, z_c in zip(st[..., 0].split(n), t.split(n), z.split(n), strict=True):
            seed = int(torch.randint(0, 2**62, ())) if p > 0 else 0
            out.append(_Attention.apply(s_c, t_c, z_c, p, seed))
        return F.leaky_relu(torch.cat(out), NEG_SLOPE).view(B, L, M, P).transpose(1, 2)


class FactorHead(nn.Module):
    """A sequence encoder (:mod:`riskstudy.nn.encoders`, the GRU of the paper by default) and a linear map to factors.

    Parameters
    ----------
    n_features, hidden_size, num_layers, n_out : int
        Input width P, encoder width/depth, output factors.
    encoder : str
        Name in :data:`riskstudy.nn.encoders.ENCODERS`.
    """

    def __init__(self, *, n_features: int, hidden_size: int, num_layers: int, n_out: int, encoder: str = "gru",
                 seq_len: int = SEQ_LEN) -> None:
        super().__init__()
        self.encoder = make_encoder(encoder, n_features=n_features, hidden_size=hidden_size, num_layers=num_layers,
                                    seq_len=seq_len)
        self.out = nn.Linear(self.encoder.out_features, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map sequences ``(S, L, P)`` to factors ``(S, n_out)``."""
        return self.out(self.encoder(x))


def normalize_exposures(
    f: torch.Tensor, *, mask: torch.Tensor, size: torch.Tensor, clip: float = 3.0, eps: float = 1e-6
) -> torch.Tensor:
    r"""Per-day, per-factor cross-sectional normalisation over members.

    1. Robust z-score :math:`z = (f - \mathrm{med}) / (1.4826\,\mathrm{MAD})` clipped to
       ``[-clip, clip]`` (lower median for even counts);
    2. size-weighted zero mean: :math:`z \leftarrow z - \sum_i s_i z_i / \sum_i s_i`;
    3. unit equal-weighted cross-sectional standard deviation (population, about the
       equal-weighted mean; Barra convention), which keeps the size-weighted mean at 0.

    Parameters
    ----------
    f : torch.Tensor, shape (B, M, K)
        Raw factors (finite).
    mask : torch.Tensor, bool, shape (B, M)
        Members.
    size : torch.Tensor, shape (B, M)
        Size proxy, > 0 on members.
    clip : float
        Clip level in MAD-scaled units.
    eps : float
        Floor for the MAD and the variance.

    Returns
    -------
    torch.Tensor, shape (B, M, K)
        Normalised exposures, exactly 0 off-mask.
    """
    m = mask.unsqueeze(-1)
    fm = f.masked_fill(~m, float("nan"))
    med = fm.nanmedian(dim=1, keepdim=True).values.nan_to_num(0.0)  # (B, 1, K)
    mad = (fm - med).abs().nanmedian(dim=1, keepdim=True).values.nan_to_num(0.0)
    z = ((f - med) / (1.4826 * mad).clamp_min(eps)).clamp(-clip, clip)
    z = torch.where(m, z, torch.zeros_like(z))
    sw = (size * mask).unsqueeze(-1)  # (B, M, 1)
    z = z - (sw * z).sum(1, keepdim=True) / sw.sum(1, keepdim=True).clamp_min(1e-30)
    mf = m.to(f.dtype)
    n = mf.sum(1, keepdim=True).clamp_min(1.0)
    mean = (mf * z).sum(1, keepdim=True) / n
    var = (mf * (z - mean).square()).sum(1, keepdim=True) / n
    return mf * z / (var + eps).sqrt()


def smooth_exposures(
    f: torch.Tensor,
    *,
    mask: torch.Tensor,
    prev: torch.Tensor,
    prev_valid: torch.Tensor,
    continues: torch.Tensor,
    rho: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Exponential smoothing across consecutive days: a scan over ``B``, vectorised over stocks.

    :math:`\hat F_t = \rho\,\mathrm{sg}(\hat F_{t-1}) + (1 - \rho) F_t` where the stock was a
    member on the previous processed day and that day is the directly preceding one
    (``continues``); otherwise :math:`\hat F_t = F_t`. ``sg`` = stop-gradient, so each day's
    gradient depends on that day's forward only.

    Parameters
    ----------
    f : torch.Tensor, shape (B, M, K)
        Normalised exposures (0 off-mask).
    mask : torch.Tensor, bool, shape (B, M)
        Members.
    prev : torch.Tensor, shape (M, K)
        Smoothed exposures of the day before the batch (carry).
    prev_valid : torch.Tensor, bool, shape (M,)
        ``prev`` exists (member on that day).
    continues : torch.Tensor, bool, shape (B,)
        Day ``b`` directly follows the previously processed day.
    rho : float
        Smoothing weight on the past.

    Returns
    -------
    smoothed : torch.Tensor, shape (B, M, K)
        0 off-mask.
    last : torch.Tensor, shape (M, K)
        Detached smoothed exposures of the last day (next carry).
    last_valid : torch.Tensor, bool, shape (M,)
        Membership on the last day.
    """
    out = []
    for b in range(f.shape[0]):
        use = (prev_valid & mask[b] & continues[b]).unsqueeze(-1)
        cur = torch.where(use, rho * prev + (1 - rho) * f[b], f[b])
        out.append(cur)
        prev, prev_valid = cur.detach(), mask[b]
    return torch.stack(out), prev, prev_valid


class DeepRiskModel(nn.Module):
    """The DRM network: inputs ``(B, M, L, P)`` -> normalised exposures ``(B, M, K)``.

    Parameters
    ----------
    config : DRMParams
        The validated ``drm`` section of one run. Architecture fields used: ``n_factors,
        hidden_size, num_layers, encoder, gat, attn_dropout, gat_chunk_days``; the input width is
        ``n_features`` (default :data:`N_FEATURES`). ``encoder="linear", gat=False`` is the
        linear probe: a linear map of the ``L P`` inputs, normalised and smoothed as the network's.
    n_features : int
        P, input features per time step.
    seq_len : int
        L, used by encoders whose size depends on it (``linear``).
    """

    def __init__(self, config: DRMParams, *, n_features: int = N_FEATURES, seq_len: int = SEQ_LEN) -> None:
        super().__init__()
        self.config = config
        head = dict(n_features=n_features, hidden_size=config.hidden_size, num_layers=config.num_layers,
                    n_out=config.n_factors // 2, encoder=config.encoder, seq_len=seq_len)
        self.gat = (StockGAT(n_features=n_features, dropout=config.attn_dropout,
                             chunk_days=config.gat_chunk_days) if config.gat else None)
        self.head_1 = FactorHead(**head)  # on x - GAT(x), or on x when gat=False
        self.head_2 = FactorHead(**head)  # on x

    def forward(self, x: torch.Tensor, mask: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        """Normalised exposures of every (day, stock).

        Parameters
        ----------
        x : torch.Tensor, shape (B, M, L, P)
            Inputs; non-member rows may hold anything (zeroed here).
        mask : torch.Tensor, bool, shape (B, M)
            Members per day.
        size : torch.Tensor, shape (B, M)
            Size proxy for the size-weighted mean.

        Returns
        -------
        torch.Tensor, shape (B, M, K)
            Exposures normalised per day (:func:`normalize_exposures`), 0 off-mask.
            Only member rows go through the factor heads.
        """
        x = torch.where(mask[..., None, None], x, torch.zeros_like(x))
        x1 = x - self.gat(x, mask) if self.gat is not None else x
        raw = torch.cat([self.head_1(x1[mask]), self.head_2(x[mask])], dim=-1)  # (n_members, K)
        f = raw.new_zeros(*mask.shape, raw.shape[-1]).index_put((mask,), raw)
        return normalize_exposures(f, mask=mask, size=size)
