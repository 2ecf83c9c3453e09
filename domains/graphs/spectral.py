"""Spectral pair channels for the adjacency score network (an extension beyond GDSS, off by default).

The GDSS adjacency network sees the pair channels ``A, A², …`` of the *noisy* adjacency and
one-hop graph convolutions per attention layer: local information. On community-small, whose
graphs are two dense communities joined by about one edge, a denoiser needs the global partition to
tell a within-community pair from a between-community one; with local channels alone (at CPU
network size) the samples have the right number of edges but 5× the between-community edges and
two thirds of the triangles of the test graphs (see the README's results).

The leading eigenpairs of the noisy adjacency carry exactly that partition (the spectral method for
stochastic block models). :func:`spectral_channels` adds ``λ_k u_k u_kᵀ`` for the ``k`` largest
eigenvalues as extra pair channels: symmetric, invariant to the sign of each eigenvector, and
permutation equivariant (permuting the nodes permutes ``u_k``). Eigen-decompositions are of the
network *input*, computed without gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from core.networks.gnn import AdjScoreNet, DenseGraphScoreNet, adjacency_powers, mask_pairs, symmetrize


def spectral_channels(adj: Tensor, mask: Tensor, k: int) -> Tensor:
    """``[B,N,N,k]``: ``λ_j u_j u_jᵀ`` for the ``k`` largest eigenvalues of the masked, zero-diagonal,
    symmetrised ``adj [B,N,N]`` (largest first), zero on padding rows/columns."""
    if k < 1:
        raise ValueError(f"spectral channels need k >= 1, got {k}")
    if k > adj.shape[-1]:
        raise ValueError(f"network.spectral={k} exceeds the padded graph size {adj.shape[-1]}")
    with torch.no_grad():
        a = mask_pairs(symmetrize(adj), mask, diagonal=False).double()
        vals, vecs = torch.linalg.eigh(a)  # ascending
        vals, vecs = vals[..., -k:].flip(-1), vecs[..., -k:].flip(-1)  # [B,k], [B,N,k]
        ch = vals[:, None, None, :] * vecs[:, :, None, :] * vecs[:, None, :, :]
    return mask_pairs(ch.to(adj.dtype), mask)


def bridge_channels(adj: Tensor, mask: Tensor) -> Tensor:
    """``[B,N,N,2]``: the Fiedler bisection of the current graph and how much weight crosses it.

    From the Laplacian of the masked, symmetrised adjacency clamped to ``[0, 1]``: channel 0 is
    ``c_ij = 1`` where nodes ``i, j`` fall on opposite sides of the sign of the Fiedler vector (invariant to
    its sign), channel 1 the cut weight ``Σ_{i<j} c_ij A_ij`` of the whole graph, broadcast to every pair:
    a global count of the edges between the two halves, which local channels cannot see. (Community-small
    graphs are joined by exactly one such edge in 89 % of cases.) Computed without gradients; zero on
    padding rows/columns.
    """
    with torch.no_grad():
        a = mask_pairs(symmetrize(adj), mask, diagonal=False).clamp(0.0, 1.0).double()
        m = mask.double()
        lap = torch.diag_embed(a.sum(-1)) - a
        big = lap.abs().amax((-1, -2)) + 1.0  # [B]: padding nodes get eigenvalues above every real one
        lap = lap + torch.diag_embed(1.0 - m) * big[:, None, None]
        _, vecs = torch.linalg.eigh(lap)  # ascending; index 1: the Fiedler vector of the real nodes
        side = torch.sign(vecs[..., 1]) * m
        cross = ((side[:, :, None] * side[:, None, :]) < 0).double()
        cut = 0.5 * (cross * a).sum((-1, -2))
        ch = torch.stack([cross, cut[:, None, None].expand_as(cross)], -1)
    return mask_pairs(ch.to(adj.dtype), mask)


class SpectralAdjScoreNet(AdjScoreNet):
    """:class:`~core.networks.gnn.AdjScoreNet` whose input channels are ``A … A^powers`` plus ``k``
    spectral channels (:func:`spectral_channels`). With ``self_condition`` the self-conditioning
    adjacency (the earlier ``x0`` estimate, an almost clean graph late in sampling) gets the same
    treatment: itself, its ``k`` spectral channels (and its bridge channels with ``bridge``)."""

    def __init__(self, feat: int, hidden: int, attn_dim: int, layers: int, powers: int, k: int, c_hid: int,
                 c_final: int, heads: int, num_linears: int, emb_dim: int, normalize_powers: bool,
                 bridge: bool = False, self_condition: bool = False) -> None:
        per_graph = k + 2 * bridge
        c_extra = per_graph + (1 + per_graph) * self_condition
        super().__init__(feat, hidden, attn_dim, layers, powers, c_hid, c_final, heads, num_linears,
                         emb_dim, normalize_powers, c_extra=c_extra)
        self.powers, self.k, self.bridge = powers, k, bridge

    def _global(self, adj: Tensor, mask: Tensor) -> list[Tensor]:
        parts = [spectral_channels(adj, mask, self.k)]
        if self.bridge:
            parts.append(bridge_channels(adj, mask))
        return parts

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor, emb: Tensor | None = None,
                extra: Tensor | None = None) -> Tensor:
        parts = [adjacency_powers(adj, mask, self.powers, self.normalize_powers), *self._global(adj, mask)]
        if extra is not None:  # [B,N,N,1]: the self-conditioning adjacency
            parts += [extra, *self._global(extra[..., 0], mask)]
        return self.layer_stack(torch.cat(parts, -1), x, mask, emb)


def spectral_score_net(feat: int, hidden: int, depth_x: int, layers_a: int, attn_dim: int, c_init: int, c_hid: int,
                       c_final: int, heads: int, num_linears: int, emb_dim: int, adj_clip: float,
                       normalize_powers: bool, k: int, bridge: bool = False,
                       self_condition: bool = False, node_struct: int = 0) -> DenseGraphScoreNet:
    """The GDSS X/A score networks with ``k`` spectral channels (and, with ``bridge``, the two
    :func:`bridge_channels`) added to the adjacency network."""
    net = DenseGraphScoreNet(feat, hidden, depth_x, layers_a, attn_dim, c_init, c_hid, c_final, heads, num_linears,
                             emb_dim, adj_clip, normalize_powers, self_condition=self_condition,
                             node_struct=node_struct)
    net.net_a = SpectralAdjScoreNet(net.node_in, hidden, attn_dim, layers_a, c_init, k, c_hid, c_final, heads,
                                    num_linears, emb_dim, normalize_powers, bridge, self_condition)
    return net
