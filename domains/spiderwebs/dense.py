"""Model 2: diffusion over the full representation — node coordinates and the adjacency matrix as a
graph (``network.kind = "graph"``).

State (core :class:`~core.types.StateDict`): ``x [B, L, 3]`` (xyz / ``scale``) and ``adj [B, L, L]``
(1 = edge, 0 = none). Core's :class:`~core.samplers.graph_space.GraphSpace` keeps the adjacency
symmetric with a zero diagonal, noise included, and masks padding rows with the node mask
``cond["mask"]``. The node mask is fixed by the requested number of nodes (the first ``n_nodes``
rows), so ``n_nodes`` is met by construction; every other design quantity comes out of the
generated coordinates and adjacency.

Network: core's dense graph score networks (:class:`~core.networks.gnn.NodeScoreNet` for the
coordinates, :class:`~core.networks.gnn.AdjScoreNet` for the adjacency), both FiLM-conditioned on one
embedding of the noise level and the design vector (core :class:`~core.networks.embeddings.TimeConditioning`,
whose learned null vector serves classifier-free guidance). The node features they see are the noisy
coordinates plus their squared norm, so that a bilinear attention score can express the pair distance
``|x_i − x_j|² = |x_i|² + |x_j|² − 2 x_i·x_j`` — spider-web threads join nearby junctions.

Decoding: an edge where the generated adjacency is > 0.5, then decode.py's repair (degree cap,
no zero-length edge, one component).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from core.networks.embeddings import TimeConditioning, batch_time
from core.networks.gnn import AdjScoreNet, NodeScoreNet, check_node_mask, mask_nodes
from core.types import StateDict


def rows_to_dense(rows: torch.Tensor, scale: float, max_neighbors: int = 6) -> tuple[StateDict, torch.Tensor]:
    """Paper rows ``[N, L, 16]`` → ``(StateDict(x, adj), mask [N, L])``."""
    n, length = rows.shape[:2]
    mask = (rows[..., 0] > 0).float()
    x = rows[..., 1:4] / scale * mask[..., None]
    k = rows[..., 4:4 + max_neighbors].long()
    adj = torch.zeros(n, length, length)
    b, i, s = torch.nonzero(k > 0, as_tuple=True)
    adj[b, i, k[b, i, s] - 1] = 1.0
    adj = torch.maximum(adj, adj.transpose(1, 2))
    return StateDict({"x": x, "adj": adj}), mask


def mask_for(n_nodes: torch.Tensor, length: int) -> torch.Tensor:
    """Node masks ``[B, L]`` with the first ``n_nodes`` rows real (clipped to ``2 … L``)."""
    n = n_nodes.round().long().clamp(2, length)
    return (torch.arange(length)[None] < n[:, None]).float()


def dense_to_raw(x: Mapping[str, Tensor], mask: Tensor, scale: float,
                 threshold: float = 0.5) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
    """Generated states → ``(pos, claims)`` per sample (claims in both directions: the adjacency is symmetric)."""
    out = []
    for s in range(mask.shape[0]):
        keep = np.flatnonzero(mask[s].numpy() > 0)
        pos = (x["x"][s, keep].double() * scale).numpy().reshape(-1, 3)
        a = x["adj"][s][keep][:, keep].numpy()
        a = (a + a.T) / 2
        i, j = np.nonzero(np.triu(a > threshold, 1))
        out.append((pos, [(int(p), int(q)) for p, q in zip(i, j, strict=True)]
                    + [(int(q), int(p)) for p, q in zip(i, j, strict=True)]))
    return out


class GraphDenoiserNet(nn.Module):
    """``net({"x", "adj"}, t, cond) -> {"x", "adj"}`` with ``cond["mask"]`` and ``cond["vector"]``."""

    def __init__(self, cond_dim: int = 7, hidden: int = 32, depth_x: int = 2, layers_a: int = 3, attn_dim: int = 32,
                 c_init: int = 2, c_hid: int = 8, c_final: int = 4, heads: int = 4, emb_dim: int = 64,
                 adj_clip: float = 4.0) -> None:
        super().__init__()
        self.adj_clip = adj_clip
        self.time = TimeConditioning(emb_dim, cond_dim)
        self.net_x = NodeScoreNet(4, hidden, depth_x, emb_dim)
        self.net_a = AdjScoreNet(4, hidden, attn_dim, layers_a, c_init, c_hid, c_final, heads, 2, emb_dim)

    def forward(self, state: Any, t: Tensor | float, cond: Mapping[str, Any] | None = None) -> StateDict:
        x = state["x"]
        mask = check_node_mask(cond, "mask").to(x.dtype)
        emb = F.silu(self.time(batch_time(t, x.shape[0], x.device), cond))
        feats = mask_nodes(torch.cat([x, (x * x).sum(-1, keepdim=True)], -1), mask)
        adj = state["adj"].clamp(-self.adj_clip, self.adj_clip)
        return StateDict({"x": self.net_x(feats, adj, mask, emb)[..., :3], "adj": self.net_a(feats, adj, mask, emb)})
