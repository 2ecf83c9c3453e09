"""GDSS score networks on dense padded graphs (Jo, Lee, Hwang 2022), with time conditioning.

* :class:`ScoreNetworkX` — node-feature network: a stack of dense GCN layers on the noisy adjacency,
  the outputs of every layer concatenated and mapped back to the feature size by an MLP.
* :class:`ScoreNetworkA` — adjacency network: graph multi-head attention over the channels
  ``A, A^2, …, A^K`` (powers of the noisy adjacency, scaled by ``n^{1-k}``); each layer turns the
  per-head attention logits into new adjacency channels, and an MLP over all channels gives the
  output, symmetrised and masked.
* :class:`GDSSNet` — ``net(state, t, cond) -> {"x", "adj"}`` (the native output, e.g. ε per field).
  The adjacency input is clipped to ``±adj_clip`` (powers of an unbounded noisy matrix made short,
  badly trained runs diverge to NaN).

Every operation is a dense matrix product or a per-node/per-pair map, so the networks are
permutation equivariant (tested). Unlike GDSS both networks also see a time embedding.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from core.networks.embeddings import TimeConditioning
from core.types import StateDict
from domains.graphs.state_space import node_mask, structure_masks, symmetrize


def _gcn(in_dim: int, out_dim: int) -> nn.Module:
    from torch_geometric.nn import DenseGCNConv

    return DenseGCNConv(in_dim, out_dim)


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.SiLU(), nn.Linear(hidden, out_dim))


class ScoreNetworkX(nn.Module):
    def __init__(self, feat: int, hidden: int, depth: int, emb_dim: int) -> None:
        super().__init__()
        dims = [feat] + [hidden] * depth
        self.convs = nn.ModuleList(_gcn(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.film = nn.ModuleList(nn.Linear(emb_dim, hidden) for _ in range(depth))
        self.out = _mlp(feat + hidden * depth, 2 * hidden, feat)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor, emb: Tensor) -> Tensor:
        hs, h = [x], x
        for conv, film in zip(self.convs, self.film, strict=True):
            h = torch.tanh(conv(h, adj, mask) + film(emb)[:, None, :])
            hs.append(h)
        return self.out(torch.cat(hs, -1)) * mask[..., None]


def adjacency_powers(adj: Tensor, mask: Tensor, k: int) -> Tensor:
    """``[B,N,N,k]`` channels ``A^c / n^{c-1}`` (``n`` = nodes per graph), ``c = 1..k``."""
    n = mask.sum(1).clamp_min(1.0)[:, None, None]
    chans, p = [adj], adj
    for c in range(2, k + 1):
        p = p @ adj
        chans.append(p / n ** (c - 1))
    return torch.stack(chans, -1)


class GraphAttention(nn.Module):
    """Multi-head attention per adjacency channel; returns new node features and pair features."""

    def __init__(self, in_dim: int, hidden: int, in_ch: int, out_ch: int, heads: int) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"network.hidden={hidden} must be divisible by network.heads={heads}")
        self.heads, self.in_ch = heads, in_ch
        self.qkv = nn.ModuleList(_gcn(in_dim, 3 * hidden) for _ in range(in_ch))
        self.pair = _mlp(in_ch * heads, 2 * out_ch, out_ch)
        self.node = nn.Linear(hidden, hidden)

    def forward(self, x: Tensor, chans: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        b, n, _ = x.shape
        logits, values = [], []
        pair_mask = mask[:, None, :, None] * mask[:, None, None, :]
        for c, gcn in enumerate(self.qkv):
            q, k, v = gcn(x, chans[..., c], mask).chunk(3, -1)
            q, k, v = (z.reshape(b, n, self.heads, -1).transpose(1, 2) for z in (q, k, v))
            e = symmetrize(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]))  # [B,H,N,N]
            att = torch.softmax(e.masked_fill(pair_mask == 0, -1e9), -1) * pair_mask
            values.append((att @ v).transpose(1, 2).reshape(b, n, -1))
            logits.append(torch.tanh(e))
        pairs = self.pair(torch.cat(logits, 1).permute(0, 2, 3, 1))  # [B,N,N,out_ch]
        h = torch.tanh(self.node(torch.stack(values).mean(0))) * mask[..., None]
        return h, pairs


class ScoreNetworkA(nn.Module):
    def __init__(self, feat: int, hidden: int, depth: int, emb_dim: int, powers: int, channels: int,
                 heads: int) -> None:
        super().__init__()
        self.powers = powers
        self.layers = nn.ModuleList(
            GraphAttention(feat if i == 0 else hidden, hidden, powers if i == 0 else channels, channels, heads)
            for i in range(depth))
        self.film = nn.ModuleList(nn.Linear(emb_dim, channels) for _ in range(depth))
        self.out = _mlp(powers + channels * depth, 2 * hidden, 1)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor, emb: Tensor) -> Tensor:
        chans = adjacency_powers(adj, mask, self.powers)
        pair_mask = (mask[:, :, None] * mask[:, None, :])[..., None]
        feats, h = [chans], x
        for layer, film in zip(self.layers, self.film, strict=True):
            h, pairs = layer(h, chans, mask)
            chans = torch.tanh(pairs + film(emb)[:, None, None, :]) * pair_mask
            feats.append(chans)
        return symmetrize(self.out(torch.cat(feats, -1)).squeeze(-1))


class GDSSNet(nn.Module):
    """``net({"x", "adj"}, t, cond) -> {"x", "adj"}``; ``cond["mask"]`` is the node mask."""

    def __init__(self, feat: int, hidden: int = 32, depth_x: int = 2, depth_a: int = 3, powers: int = 3,
                 channels: int = 8, heads: int = 4, emb_dim: int = 32, adj_clip: float = 4.0) -> None:
        super().__init__()
        self.adj_clip = adj_clip
        self.time = TimeConditioning(emb_dim)
        self.net_x = ScoreNetworkX(feat, hidden, depth_x, emb_dim)
        self.net_a = ScoreNetworkA(feat, hidden, depth_a, emb_dim, powers, channels, heads)

    def forward(self, state: Any, t: Tensor, cond: Any = None) -> StateDict:
        mask = node_mask(cond).to(state["x"].dtype)
        emb = F.silu(self.time(t.reshape(-1).expand(state["x"].shape[0])))
        adj = state["adj"].clamp(-self.adj_clip, self.adj_clip)  # bounded inputs: A^k cannot blow up
        out = StateDict({"x": self.net_x(state["x"], adj, mask, emb), "adj": self.net_a(state["x"], adj, mask, emb)})
        return out * structure_masks(out, mask)
