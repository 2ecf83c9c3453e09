"""Model 3: an autoregressive transformer over nodes (the paper's third model), conditioned on the
design vector.

A patch is generated node by node in its growth order (``patches.py`` numbers nodes as they are added,
so every node after the first has an earlier neighbour; other files are put in that order by
:func:`growth_order`). Token 0 is the design vector, token ``k + 1`` node ``k``; a causal transformer
reads them and its output at position ``p`` (which has seen the design and nodes ``0 … p−1``) gives

1. **stop** — whether the patch ends before node ``p`` (the node count is learnt, not imposed);
2. **parent** — which earlier node ``p`` attaches to (a pointer over nodes ``0 … p−1``; target: its
   earliest earlier neighbour);
3. **offset** — ``p``'s position relative to the parent, in units of the requested average edge length,
   a mixture of isotropic Gaussians;
4. **links** — further edges from ``p`` to every other earlier node, independent Bernoullis given the
   placed position (the pair's offset and distance) and the earlier node's degree so far.

Trained with teacher forcing (all nodes of a patch at once under the causal mask; loss per node) and
sampled with a temperature that divides the logits and scales the mixture widths. Degree cap: a node
at the cap is never proposed as parent or link, and a new node keeps at most ``max_degree`` links (its
most probable ones). The sampled graph is connected by construction; it still goes through the same
decoding rules as the other models (``decode.py``). Samples are stored in the paper's row layout.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from domains.spiderwebs.graph import WebGraph, make_graph

#: node token features: position / POS_DIV (3), offset to the parent (3), earlier neighbours / cap (1)
NODE_FEATURES = 7
POS_DIV = 4.0  # positions are in units of the average edge length; patches span a few units


def growth_order(rows: Tensor) -> Tensor:
    """Rows ``[N, L, 16]`` with every sample renumbered breadth-first from node 1 where some node has no
    earlier neighbour (samples already in growth order are returned unchanged)."""
    out = rows.clone()
    k = rows.shape[2] // 2 - 2
    for s in range(rows.shape[0]):
        n = int((rows[s, :, 0] > 0).sum())
        nb = [[int(j) - 1 for j in rows[s, i, 4:4 + k].tolist() if j > 0] for i in range(n)]
        if all(any(j < i for j in nb[i]) for i in range(1, n)):
            continue
        order, seen = [0], {0}
        for v in order:
            for u in sorted(nb[v]):
                if u not in seen:
                    seen.add(u)
                    order.append(u)
        if len(order) != n:
            raise ValueError(f"sample {s} is not connected ({len(order)} of {n} nodes reachable from node 1); "
                             "model 3 generates connected patches only")
        new = {old: i for i, old in enumerate(order)}
        for i, old in enumerate(order):
            ids = sorted(new[j] + 1 for j in nb[old])
            out[s, i] = 0
            out[s, i, 0], out[s, i, 1:4] = i + 1, rows[s, old, 1:4]
            for c, j in enumerate(ids):
                out[s, i, 4 + c] = j
                out[s, i, 4 + k + c] = float(torch.linalg.norm(rows[s, old, 1:4] - rows[s, order[j - 1], 1:4]))
    return out


def teacher_inputs(rows: Tensor, unit: Tensor, max_degree: int) -> dict[str, Tensor]:
    """Teacher-forcing tensors of rows ``[B, L, 16]`` in growth order; ``unit [B]``: length unit."""
    b, length = rows.shape[:2]
    n = (rows[..., 0] > 0).sum(1)
    pos = (rows[..., 1:4] - rows[:, :1, 1:4]) / unit.reshape(b, 1, 1)
    ids = rows[..., 4:4 + max_degree].long()
    adj = torch.zeros(b, length, length + 1, device=rows.device)
    adj.scatter_(2, ids, 1.0)  # column 0 collects the empty slots
    adj = adj[..., 1:]
    lower = adj.tril(-1)
    first = (lower * torch.arange(length, 0, -1, device=rows.device)).argmax(-1)  # earliest earlier neighbour
    parent = torch.where(lower.sum(-1) > 0, first, torch.zeros_like(first))
    deg_before = (adj.cumsum(-1) - adj).transpose(1, 2).clamp(max=max_degree).long()  # [B, p, j]
    off = pos - torch.gather(pos, 1, parent[..., None].expand(-1, -1, 3))
    feats = torch.cat([pos / POS_DIV, off, lower.sum(-1, keepdim=True) / max_degree], -1)
    return {"n": n, "pos": pos, "adj": adj, "parent": parent, "deg_before": deg_before, "feats": feats}


class NodeSequenceModel(nn.Module):
    """Causal transformer over ``[design, node 0, node 1, …]`` with stop / parent / offset / link heads."""

    def __init__(self, length: int, cond_dim: int = 7, dim: int = 128, depth: int = 3, heads: int = 4,
                 mixtures: int = 8, max_degree: int = 6, pair_hidden: int = 48) -> None:
        super().__init__()
        self.length, self.dim, self.mixtures, self.max_degree = length, dim, mixtures, max_degree
        self.cond = nn.Sequential(nn.Linear(cond_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.node_in = nn.Linear(NODE_FEATURES, dim)
        self.index = nn.Parameter(torch.randn(length + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.stop = nn.Linear(dim, 1)
        self.q_par, self.k_par = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.deg_par = nn.Embedding(max_degree + 1, 1)
        self.mdn = nn.Sequential(nn.Linear(2 * dim, dim), nn.SiLU(), nn.Linear(dim, mixtures * 5))
        self.l_q, self.l_k, self.l_pair = nn.Linear(dim, pair_hidden), nn.Linear(dim, pair_hidden), nn.Linear(4, pair_hidden)
        self.l_deg = nn.Embedding(max_degree + 1, pair_hidden)
        self.l_out = nn.Sequential(nn.SiLU(), nn.Linear(pair_hidden, 1))

    def encode(self, vector: Tensor, feats: Tensor) -> Tensor:
        """``[B, 7]`` design, ``[B, P, 7]`` node features → outputs ``[B, P + 1, dim]`` (causal)."""
        c = self.cond(vector)
        tok = torch.cat([c[:, None], self.node_in(feats)], 1) + self.index[:feats.shape[1] + 1] + c[:, None]
        p = tok.shape[1]
        mask = torch.triu(torch.full((p, p), float("-inf"), device=tok.device), 1)
        return self.norm(self.encoder(tok, mask=mask, is_causal=True))

    def parent_logits(self, q: Tensor, k: Tensor, deg: Tensor) -> Tensor:
        """``q [B, P, D]``, ``k [B, J, D]``, ``deg [B, P, J]`` → ``[B, P, J]`` (unmasked)."""
        return self.q_par(q) @ self.k_par(k).transpose(1, 2) / math.sqrt(self.dim) + self.deg_par(deg)[..., 0]

    def offset_params(self, q: Tensor, kp: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mixture ``(log weights [..., M], means [..., M, 3], log sigma [..., M])``."""
        out = self.mdn(torch.cat([q, kp], -1)).unflatten(-1, (self.mixtures, 5))
        return out[..., 0].log_softmax(-1), out[..., 1:4], out[..., 4].clamp(-5.0, 2.0)

    def link_logits(self, qp: Tensor, kp: Tensor, dpos: Tensor, deg: Tensor) -> Tensor:
        """Logits of candidate links, one per leading index: ``qp``/``kp`` ``[..., H]`` the projected
        new node / earlier node (``l_q``, ``l_k``), ``dpos [..., 3]`` their offset in units, ``deg [...]``
        the earlier node's degree so far."""
        pair = torch.cat([dpos, dpos.norm(dim=-1, keepdim=True)], -1)
        return self.l_out(qp + kp + self.l_pair(pair) + self.l_deg(deg))[..., 0]


def mixture_nll(logw: Tensor, mu: Tensor, logsig: Tensor, x: Tensor) -> Tensor:
    sq = ((x[..., None, :] - mu) ** 2).sum(-1)
    comp = logw - 3 * logsig - 0.5 * sq * torch.exp(-2 * logsig) - 1.5 * math.log(2 * math.pi)
    return -torch.logsumexp(comp, -1)


def teacher_forcing_loss(model: Any, rows: Any, cond: Any, generator: Any = None) -> Tensor:
    """Per-sample negative log-likelihood per node (stop + parent + offset + links) of rows ``[B, L, 16]``
    (the trainer's loss signature; ``cond``: ``vector`` [B, 7] normalised, ``unit`` [B])."""
    net = cast(NodeSequenceModel, getattr(model, "module", model))
    t = teacher_inputs(rows, cond["unit"], net.max_degree)
    b, length = rows.shape[:2]
    n, parent, deg = t["n"], t["parent"], t["deg_before"]
    h = net.encode(cond["vector"], t["feats"])  # [B, L + 1, D]
    q, k = h[:, :length], h[:, 1:]
    ar = torch.arange(length + 1, device=rows.device)
    stop_ok = ar[None] <= n[:, None]
    stop = F.binary_cross_entropy_with_logits(net.stop(h)[..., 0], (ar[None] == n[:, None]).float(), reduction="none")
    total = (stop * stop_ok).sum(1)
    node_ok = (ar[None, :length] >= 1) & (ar[None, :length] < n[:, None])  # nodes 1 … n-1
    earlier = torch.ones(length, length, device=rows.device).tril(-1).bool()[None]
    plog = net.parent_logits(q, k, deg).masked_fill(~earlier, float("-inf"))
    plog = torch.where(node_ok[..., None], plog, torch.zeros_like(plog))
    total = total + (F.cross_entropy(plog.transpose(1, 2), parent, reduction="none") * node_ok).sum(1)
    kp = torch.gather(k, 1, parent[..., None].expand(-1, -1, k.shape[-1]))
    pos_par = torch.gather(t["pos"], 1, parent[..., None].expand(-1, -1, 3))
    nll = mixture_nll(*net.offset_params(q, kp), t["pos"] - pos_par)
    total = total + (nll * node_ok).sum(1)
    is_par = F.one_hot(parent, length).bool()
    bi, pi, ji = torch.nonzero(node_ok[..., None] & earlier & ~is_par, as_tuple=True)  # candidate pairs only
    dpos = t["pos"][bi, pi] - t["pos"][bi, ji]
    llog = net.link_logits(net.l_q(q)[bi, pi], net.l_k(k)[bi, ji], dpos, deg[bi, pi, ji])
    bce = F.binary_cross_entropy_with_logits(llog, t["adj"][bi, pi, ji], reduction="none")
    total = total.index_add(0, bi, bce)
    return total / n.clamp(min=1)


@torch.no_grad()
def sample_graphs(model: NodeSequenceModel, vector: Tensor, unit: Tensor, temperature: float,
                  generator: torch.Generator, min_nodes: int = 2) -> list[WebGraph]:
    """Sample one patch per design (``vector [B, 7]`` normalised, ``unit [B]`` requested average edge
    length) node by node; positions in physical units, centred on the centroid."""
    b, length, cap, dev = vector.shape[0], model.length, model.max_degree, vector.device
    temp = float(temperature)
    pos = torch.zeros(b, length, 3, device=dev)
    feats = torch.zeros(b, length, NODE_FEATURES, device=dev)
    adj = torch.zeros(b, length, length, dtype=torch.bool, device=dev)
    deg = torch.zeros(b, length, dtype=torch.long, device=dev)
    n = torch.ones(b, dtype=torch.long, device=dev)
    alive = torch.ones(b, dtype=torch.bool, device=dev)
    rows = torch.arange(b, device=dev)
    for p in range(1, length):
        h = model.encode(vector, feats[:, :p])
        q, k = h[:, p], h[:, 1:p + 1]
        if p >= min_nodes:
            stop = torch.rand(b, generator=generator, device=dev) < torch.sigmoid(model.stop(q)[:, 0] / temp)
            alive &= ~stop
        degb = deg[:, :p].clamp(max=cap)
        avail = deg[:, :p] < cap
        alive &= avail.any(1)
        if not alive.any():
            break
        plog = model.parent_logits(q[:, None], k, degb[:, None])[:, 0] / temp
        plog = plog.masked_fill(~avail, float("-inf")).masked_fill(~avail.any(1, keepdim=True), 0.0)
        par = torch.multinomial(plog.softmax(-1), 1, generator=generator)[:, 0]
        logw, mu, logsig = model.offset_params(q, k[rows, par])
        comp = torch.multinomial((logw / temp).softmax(-1), 1, generator=generator)[:, 0]
        noise = torch.randn(b, 3, generator=generator, device=dev)
        off = mu[rows, comp] + temp * torch.exp(logsig[rows, comp])[:, None] * noise
        new = pos[rows, par] + off
        dpos = new[:, None] - pos[:, :p]
        prob = torch.sigmoid(model.link_logits(model.l_q(q)[:, None], model.l_k(k), dpos, degb) / temp)
        # the parent is the earliest earlier neighbour (as in training): no links to nodes before it
        prob = prob.masked_fill(~avail | (torch.arange(p, device=dev)[None] < par[:, None]), 0.0)
        prob[rows, par] = 0.0
        draw = torch.rand(b, p, generator=generator, device=dev) < prob
        rank = torch.where(draw, prob, torch.full_like(prob, -1.0)).argsort(-1, descending=True).argsort(-1)
        links = draw & (rank < cap - 1)  # at most cap − 1 links besides the parent, most probable first
        links[rows, par] = True
        links &= alive[:, None]
        adj[:, p, :p], adj[:, :p, p] = links, links
        deg[:, :p] += links.long()
        deg[:, p] = links.sum(1)
        upd = alive[:, None]
        pos[:, p] = torch.where(upd, new, pos[:, p])
        feats[:, p] = torch.where(upd, torch.cat([new / POS_DIV, off, links.sum(1, keepdim=True) / cap], -1), 0.0)
        n += alive.long()
    out = []
    for s in range(b):
        m = int(n[s])
        ps = pos[s, :m].double().cpu().numpy() * float(unit[s])
        e = torch.nonzero(torch.triu(adj[s, :m, :m], 1)).cpu().numpy()
        out.append(make_graph(ps - ps.mean(0), e))
    return out


def rows_to_raw(rows: Tensor, max_degree: int = 6) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
    """Stored sample rows ``[B, L, 16]`` → ``(pos, directed neighbour claims)`` per sample for decode.py."""
    out = []
    for s in range(rows.shape[0]):
        r = rows[s].double().numpy()
        n = int((r[:, 0] > 0).sum())
        claims = [(i, int(j) - 1) for i in range(n) for j in r[i, 4:4 + max_degree] if 0 < j <= n]
        out.append((r[:n, 1:4].copy(), claims))
    return out
