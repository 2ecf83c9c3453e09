"""Dense graph networks on padded graphs: ``x [B,N,F]`` node features, ``adj [B,N,N]`` (weighted,
possibly noisy) adjacency, ``mask [B,N]`` node mask (1 = real node, 0 = padding).

Layers (every operation is a dense matrix product or a per-node / per-pair map, so each layer is
permutation equivariant: permuting the nodes of the inputs permutes the outputs):

* :class:`DenseGCN` — graph convolution ``D^-1/2 (A + I) D^-1/2 X W + b`` (degrees clamped at 1,
  so a noisy adjacency with small or negative row sums stays finite).
* :class:`GraphMultiHeadAttention` — queries/keys/values from graph convolutions; returns the new
  node features (values) and a symmetric pair map (mean over heads of ``tanh(Q K^T / sqrt(d))``).
* :class:`GraphAttentionLayer` — one such attention per adjacency channel; new node features from
  an MLP over all channels' values, new adjacency channels from an MLP over (attention maps, input
  channels), symmetrised and masked.
* :class:`NodeScoreNet` — a GCN stack whose layer outputs are concatenated and mapped back to ``F``.
* :class:`AdjScoreNet` — attention layers over the channels ``A, A^2, …, A^c_init``; an MLP over all
  layers' channels gives one value per pair, symmetric, zero diagonal, masked.
* :class:`DenseGraphScoreNet` — ``net(state, t, cond) -> state``: both networks on a dict state
  ``{x_key: [B,N,F], adj_key: [B,N,N]}`` with ``cond[mask_key]`` the node mask, optional time
  conditioning (FiLM), outputs masked.

This is the architecture of the score networks of Jo, Lee & Hwang (2022, "GDSS"); the attention
follows Baek et al. (2021).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from core.networks.embeddings import TimeConditioning
from core.types import StateDict

# ----------------------------------------------------------------------------------- mask helpers


def check_node_mask(cond: Any, key: str = "mask") -> Tensor:
    """``cond[key]`` (``[B, N]``, 1 = real node) or a clear error."""
    if not isinstance(cond, Mapping) or key not in cond:
        raise KeyError(f"dense graph networks need cond[{key!r}] ([B, N], 1 = real node); pass the node mask "
                       "with the data")
    return cond[key]


def mask_nodes(x: Tensor, mask: Tensor) -> Tensor:
    """Zero the rows of padding nodes: ``x [B,N,...]``."""
    return x * mask.to(x.dtype).reshape(*mask.shape, *([1] * (x.ndim - 2)))


def pair_mask(mask: Tensor, diagonal: bool = False) -> Tensor:
    """``[B,N,N]`` mask ``m_i m_j`` (times ``1 - δ_ij`` unless ``diagonal``)."""
    pm = mask[:, :, None] * mask[:, None, :]
    if not diagonal:
        pm = pm * (1.0 - torch.eye(mask.shape[1], dtype=pm.dtype, device=pm.device))
    return pm


def mask_pairs(a: Tensor, mask: Tensor, diagonal: bool = True) -> Tensor:
    """Zero rows/columns of padding nodes of ``a [B,N,N]`` or channels-last ``a [B,N,N,C]``."""
    pm = pair_mask(mask.to(a.dtype), diagonal)
    return a * (pm[..., None] if a.ndim == 4 else pm)


def symmetrize(a: Tensor) -> Tensor:
    """``(a + a^T) / 2`` over the last two dimensions."""
    return 0.5 * (a + a.transpose(-1, -2))


def adjacency_powers(adj: Tensor, mask: Tensor, k: int, normalize: bool = False) -> Tensor:
    """Channels-last ``[B,N,N,k]``: ``A, A^2, …, A^k`` (divided by ``n^{c-1}``, ``n`` = nodes per
    graph, when ``normalize``: keeps powers of a noisy matrix at the scale of ``A``)."""
    n = mask.sum(1).clamp_min(1.0)[:, None, None]
    chans, p = [adj], adj
    for c in range(2, k + 1):
        p = p @ adj
        chans.append(p / n ** (c - 1) if normalize else p)
    return torch.stack(chans, -1)


def node_structure_features(adj: Tensor, mask: Tensor, k: int) -> Tensor:
    """``[B,N,k]`` per-node structure of a weighted adjacency ``adj [B,N,N]`` (diagonal and padding ignored):
    the weighted degree ``Σ_j A_ij`` (for bond-order adjacencies: the valence used), then the closed-walk
    counts ``(A^c)_ii`` for ``c = 2 … k`` (``c = 3``: twice the weighted triangles through the node). Each is
    squashed by ``sign(v)·log(1 + |v|)`` so that the counts of a noisy matrix stay at unit scale; zero on
    padding nodes. A GCN with symmetric degree normalisation cannot recover either quantity."""
    if k < 1:
        raise ValueError(f"node structure features need k >= 1, got {k}")
    a = mask_pairs(adj, mask.to(adj.dtype), diagonal=False)
    feats, p = [a.sum(-1)], a
    for _ in range(2, k + 1):
        p = p @ a
        feats.append(torch.diagonal(p, dim1=-2, dim2=-1))
    f = torch.stack(feats, -1)
    return mask_nodes(torch.sign(f) * torch.log1p(f.abs()), mask)


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2, act: type[nn.Module] = nn.ELU) -> nn.Module:
    """``layers`` linear maps with ``act`` between them (``layers = 1``: one linear map)."""
    if layers < 1:
        raise ValueError(f"an MLP needs at least one layer, got layers={layers}")
    dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        mods.append(nn.Linear(a, b))
        if i < layers - 1:
            mods.append(act())
    return nn.Sequential(*mods)


# ------------------------------------------------------------------------------------------ layers


class DenseGCN(nn.Module):
    """Dense graph convolution ``D^-1/2 (A + I) D^-1/2 X W + b`` on ``x [B,N,in]``, ``adj [B,N,N]``."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim)) if bias else None
        bound = math.sqrt(6.0 / (in_dim + out_dim))
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None) -> Tensor:
        n = adj.shape[-1]
        eye = torch.eye(n, dtype=adj.dtype, device=adj.device)
        a = adj * (1.0 - eye) + eye  # self-loops of weight 1
        d = a.sum(-1).clamp_min(1.0).rsqrt()
        out = (d[..., :, None] * a * d[..., None, :]) @ (x @ self.weight)
        if self.bias is not None:
            out = out + self.bias
        return out if mask is None else mask_nodes(out, mask)


class GraphMultiHeadAttention(nn.Module):
    """``(x [B,N,in], adj [B,N,N]) -> (values [B,N,out], pair map [B,N,N])`` (symmetric, in [-1, 1])."""

    def __init__(self, in_dim: int, attn_dim: int, out_dim: int, heads: int = 4) -> None:
        super().__init__()
        if attn_dim % heads:
            raise ValueError(f"attention size {attn_dim} must be divisible by the number of heads {heads}")
        self.heads, self.out_dim = heads, out_dim
        self.q, self.k = DenseGCN(in_dim, attn_dim), DenseGCN(in_dim, attn_dim)
        self.v = DenseGCN(in_dim, out_dim)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        b, n, _ = x.shape
        q = self.q(x, adj).reshape(b, n, self.heads, -1).transpose(1, 2)  # [B,H,N,d]
        k = self.k(x, adj).reshape(b, n, self.heads, -1).transpose(1, 2)
        att = torch.tanh(q @ k.transpose(-1, -2) / math.sqrt(self.out_dim)).mean(1)
        return self.v(x, adj), symmetrize(att)


class GraphAttentionLayer(nn.Module):
    """``(x [B,N,in], chans [B,N,N,c_in]) -> (x' [B,N,out], chans' [B,N,N,c_out])``."""

    def __init__(self, in_dim: int, attn_dim: int, out_dim: int, c_in: int, c_out: int, heads: int = 4,
                 num_linears: int = 2) -> None:
        super().__init__()
        self.attn = nn.ModuleList(GraphMultiHeadAttention(in_dim, attn_dim, out_dim, heads) for _ in range(c_in))
        hid = 2 * max(c_in, c_out)
        self.pair = mlp(2 * c_in, hid, c_out, num_linears)
        self.node = mlp(c_in * out_dim, hid, out_dim, 2)

    def forward(self, x: Tensor, chans: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        values, maps = zip(*(att(x, chans[..., c], mask) for c, att in enumerate(self.attn)), strict=True)
        x_out = torch.tanh(mask_nodes(self.node(torch.cat(values, -1)), mask))
        p = self.pair(torch.cat([torch.stack(maps, -1), chans], -1))
        p = p + p.transpose(1, 2)
        return x_out, mask_pairs(p, mask)


# ---------------------------------------------------------------------------------------- networks


class NodeScoreNet(nn.Module):
    """GCN stack on ``x [B,N,F]``; concatenated layer outputs → MLP → ``[B,N,out_feat]`` (masked;
    ``out_feat`` defaults to ``F``).

    ``emb`` (``[B, emb_dim]``, optional) shifts every layer's pre-activation (FiLM bias)."""

    def __init__(self, feat: int, hidden: int, depth: int, emb_dim: int = 0, out_feat: int | None = None) -> None:
        super().__init__()
        dims = [feat] + [hidden] * depth
        self.convs = nn.ModuleList(DenseGCN(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.film = nn.ModuleList(nn.Linear(emb_dim, hidden) for _ in range(depth)) if emb_dim else None
        fdim = feat + hidden * depth
        self.out = mlp(fdim, 2 * fdim, feat if out_feat is None else out_feat, 3)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor, emb: Tensor | None = None) -> Tensor:
        hs, h = [x], x
        for i, conv in enumerate(self.convs):
            h = conv(h, adj)
            if self.film is not None and emb is not None:
                h = h + self.film[i](emb)[:, None, :]
            h = torch.tanh(h)
            hs.append(h)
        return mask_nodes(self.out(torch.cat(hs, -1)), mask)


class AdjScoreNet(nn.Module):
    """Attention layers over ``A, …, A^c_init``; all channels → MLP → ``[B,N,N]`` (symmetric, zero
    diagonal, masked). ``emb`` (optional) shifts each layer's node features (FiLM bias)."""

    def __init__(self, feat: int, hidden: int = 32, attn_dim: int = 32, layers: int = 3, c_init: int = 2,
                 c_hid: int = 8, c_final: int = 4, heads: int = 4, num_linears: int = 2, emb_dim: int = 0,
                 normalize_powers: bool = False, c_extra: int = 0) -> None:
        super().__init__()
        self.c_init, self.normalize_powers = c_init, normalize_powers
        c_init = c_init + c_extra
        c_in = [c_init] + [c_hid] * (layers - 1)
        c_out = [c_hid] * (layers - 1) + [c_final]
        self.layers = nn.ModuleList(
            GraphAttentionLayer(feat if i == 0 else hidden, attn_dim, hidden, c_in[i], c_out[i], heads, num_linears)
            for i in range(layers))
        self.film = nn.ModuleList(nn.Linear(emb_dim, hidden) for _ in range(layers)) if emb_dim else None
        fdim = c_init + sum(c_out)
        self.out = mlp(fdim, 2 * fdim, 1, 3)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor, emb: Tensor | None = None,
                extra: Tensor | None = None) -> Tensor:
        chans = adjacency_powers(adj, mask, self.c_init, self.normalize_powers)
        if extra is not None:
            chans = torch.cat([chans, extra], -1)
        return self.layer_stack(chans, x, mask, emb)

    def layer_stack(self, chans: Tensor, x: Tensor, mask: Tensor, emb: Tensor | None) -> Tensor:
        """The attention layers and output MLP on the input pair channels ``chans [B,N,N,C]``."""
        feats, h = [chans], x
        for i, layer in enumerate(self.layers):
            h, chans = layer(h, chans, mask)
            if self.film is not None and emb is not None:
                h = mask_nodes(h + self.film[i](emb)[:, None, :], mask)
            feats.append(chans)
        out = self.out(torch.cat(feats, -1)).squeeze(-1)
        return mask_pairs(symmetrize(out), mask, diagonal=False)


class DenseGraphScoreNet(nn.Module):
    """``net({x_key: [B,N,F], adj_key: [B,N,N]}, t, cond) -> same structure``; ``cond[mask_key]`` is the
    node mask ``[B,N]``. ``emb_dim = 0`` drops time conditioning (as in GDSS, whose networks infer the
    noise level from the input). The adjacency input is clipped to ``±adj_clip`` so that powers of an
    unbounded noisy matrix stay finite.

    ``self_condition=True``: ``net(state, t, cond, self_cond=x0_prev)`` also takes an earlier estimate of the
    clean state (core self-conditioning); its node features are concatenated to the noisy ones in both
    networks and its adjacency is one more input pair channel of the adjacency network.

    ``node_struct = k > 0`` (beyond GDSS, as the successors' extra features): both networks' node inputs also
    get :func:`node_structure_features` of the noisy adjacency (weighted degree and closed walks up to
    length ``k``), and with self-conditioning those of the earlier estimate's adjacency too."""

    def __init__(self, feat: int, hidden: int = 32, depth_x: int = 2, layers_a: int = 3, attn_dim: int = 32,
                 c_init: int = 2, c_hid: int = 8, c_final: int = 4, heads: int = 4, num_linears: int = 2,
                 emb_dim: int = 0, adj_clip: float = 4.0, normalize_powers: bool = False, x_key: str = "x",
                 adj_key: str = "adj", mask_key: str = "mask", self_condition: bool = False,
                 node_struct: int = 0) -> None:
        super().__init__()
        if node_struct < 0:
            raise ValueError(f"node_struct must be >= 0 (0 = GDSS inputs), got {node_struct}")
        self.adj_clip, self.keys, self.node_struct = adj_clip, (x_key, adj_key, mask_key), int(node_struct)
        self.supports_self_condition = self.self_condition = bool(self_condition)
        node_in = (2 * feat if self_condition else feat) + self.node_struct * (1 + int(self_condition))
        self.node_in = node_in
        self.time = TimeConditioning(emb_dim) if emb_dim else None
        self.net_x = NodeScoreNet(node_in, hidden, depth_x, emb_dim, out_feat=feat)
        self.net_a = AdjScoreNet(node_in, hidden, attn_dim, layers_a, c_init, c_hid, c_final, heads, num_linears,
                                 emb_dim, normalize_powers, c_extra=int(self_condition))

    def inputs(self, state: Any, t: Tensor, cond: Any, self_cond: Any) -> tuple[Tensor, Tensor, Tensor, Any, Tensor | None]:
        """``(node input, clipped adjacency, mask, time embedding, self-conditioning adjacency or None)``."""
        xk, ak, mk = self.keys
        x = state[xk]
        mask = check_node_mask(cond, mk).to(x.dtype)
        emb = F.silu(self.time(t.reshape(-1).expand(x.shape[0]))) if self.time is not None else None
        adj = state[ak].clamp(-self.adj_clip, self.adj_clip)
        struct = [node_structure_features(adj, mask, self.node_struct)] if self.node_struct else []
        if not self.self_condition:
            if self_cond is not None:
                raise ValueError("self_cond given to a graph network built without self_condition=True")
            return torch.cat([x, *struct], -1) if struct else x, adj, mask, emb, None
        if self_cond is None:
            sc_x, sc_a = torch.zeros_like(x), torch.zeros_like(adj)
        else:
            sc_x, sc_a = self_cond[xk], self_cond[ak].clamp(-self.adj_clip, self.adj_clip)
        sc_a = mask_pairs(sc_a, mask, diagonal=False)
        if self.node_struct:
            struct.append(node_structure_features(sc_a, mask, self.node_struct))
        return torch.cat([x, mask_nodes(sc_x, mask), *struct], -1), adj, mask, emb, sc_a

    def forward(self, state: Any, t: Tensor, cond: Any = None, self_cond: Any = None) -> StateDict:
        xk, ak, _ = self.keys
        h, adj, mask, emb, sc_a = self.inputs(state, t, cond, self_cond)
        extra = None if sc_a is None else sc_a[..., None]
        return StateDict({xk: self.net_x(h, adj, mask, emb), ak: self.net_a(h, adj, mask, emb, extra)})


__all__ = ["AdjScoreNet", "DenseGCN", "DenseGraphScoreNet", "GraphAttentionLayer", "GraphMultiHeadAttention",
           "NodeScoreNet", "adjacency_powers", "check_node_mask", "mask_nodes", "mask_pairs", "mlp",
           "node_structure_features", "pair_mask",
           "symmetrize"]
