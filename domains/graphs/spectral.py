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


class SpectralAdjScoreNet(AdjScoreNet):
    """:class:`~core.networks.gnn.AdjScoreNet` whose input channels are ``A … A^powers`` plus ``k``
    spectral channels (:func:`spectral_channels`)."""

    def __init__(self, feat: int, hidden: int, attn_dim: int, layers: int, powers: int, k: int, c_hid: int,
                 c_final: int, heads: int, num_linears: int, emb_dim: int, normalize_powers: bool) -> None:
        super().__init__(feat, hidden, attn_dim, layers, powers + k, c_hid, c_final, heads, num_linears, emb_dim,
                         normalize_powers)
        self.powers, self.k = powers, k

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor, emb: Tensor | None = None) -> Tensor:
        chans = torch.cat([adjacency_powers(adj, mask, self.powers, self.normalize_powers),
                           spectral_channels(adj, mask, self.k)], -1)
        feats, h = [chans], x
        for i, layer in enumerate(self.layers):
            h, chans = layer(h, chans, mask)
            if self.film is not None and emb is not None:
                h = h + self.film[i](emb)[:, None, :]
                h = h * mask.to(h.dtype)[..., None]
            feats.append(chans)
        out = self.out(torch.cat(feats, -1)).squeeze(-1)
        return mask_pairs(symmetrize(out), mask, diagonal=False)


def spectral_score_net(feat: int, hidden: int, depth_x: int, layers_a: int, attn_dim: int, c_init: int, c_hid: int,
                       c_final: int, heads: int, num_linears: int, emb_dim: int, adj_clip: float,
                       normalize_powers: bool, k: int) -> DenseGraphScoreNet:
    """The GDSS X/A score networks with ``k`` spectral channels added to the adjacency network."""
    net = DenseGraphScoreNet(feat, hidden, depth_x, layers_a, attn_dim, c_init, c_hid, c_final, heads, num_linears,
                             emb_dim, adj_clip, normalize_powers)
    net.net_a = SpectralAdjScoreNet(feat, hidden, attn_dim, layers_a, c_init, k, c_hid, c_final, heads, num_linears,
                                    emb_dim, normalize_powers)
    return net
