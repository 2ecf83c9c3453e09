"""Model-1 state with neighbour *offsets* in the slots (``data.slots = "offsets"``, the default).

The paper's first model stores, per node, xyz and up to 6 neighbour numbers, and the diffusion model
generates the numbers as continuous values. A number is an arbitrary label: a value off by one half
names another node, so degree and edge length are lost in sampling noise. Here each slot holds the
vector from the node to its neighbour instead — the same information (the partner is the node at
``xyz + offset``) in a form in which a small error stays a small error: decoding picks the node
nearest to ``xyz + offset``, so an offset only has to be right to within half the spacing of nodes.
The edge length is the offset's norm and the degree the number of occupied slots, both directly in
the state the network generates.

State ``[B, 4 + 4K, L]`` (K = ``max_neighbors``): channel 0 presence (+1 node / −1 padding), 1–3
xyz / ``scale``, ``4 … 4+K−1`` slot occupancy (+1 / −1; both flags scaled by ``data.flag_scale``),
then per slot three channels of ``offset / offset_scale`` (0 in empty slots). Slots are sorted by edge length (shortest first), so a
node of degree d fills its first d slots. ``offset_scale`` is twice the std of the offset components
of the training patches (std 0.5, as the EDM preconditioning assumes).
"""

from __future__ import annotations

import numpy as np
import torch


def channels(max_neighbors: int) -> int:
    return 4 + 4 * max_neighbors


def _per_sample(unit: torch.Tensor | None, n: int) -> torch.Tensor:
    return torch.ones(n) if unit is None else unit.reshape(n).float().clamp_min(1e-12)


def position_scale(rows: torch.Tensor, unit: torch.Tensor | None = None) -> float:
    """Twice the std of the coordinates (in units of ``unit`` per sample) over the real node rows."""
    present = rows[..., 0] > 0
    return 2.0 * float((rows[..., 1:4] / _per_sample(unit, rows.shape[0])[:, None, None])[present].std())


def offset_scale(rows: torch.Tensor, max_neighbors: int = 6, unit: torch.Tensor | None = None) -> float:
    """Twice the std of neighbour offset components (in units of ``unit`` per sample) over all occupied
    slots of ``rows`` ``[N, L, 16]``."""
    off, occ = _offsets(rows, max_neighbors)
    vals = (off / _per_sample(unit, rows.shape[0])[:, None, None, None])[occ]
    return 2.0 * float(vals.std()) if vals.numel() > 1 else 1.0


def _offsets(rows: torch.Tensor, max_neighbors: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(offsets [N, L, K, 3], occupied [N, L, K])`` with slots sorted by edge length."""
    pos = rows[..., 1:4]
    k = rows[..., 4:4 + max_neighbors].long()
    occ = k > 0
    idx = (k - 1).clamp(min=0)
    nb = torch.gather(pos.unsqueeze(2).expand(-1, -1, max_neighbors, -1), 1,
                      idx.unsqueeze(-1).expand(-1, -1, -1, 3))
    off = torch.where(occ.unsqueeze(-1), nb - pos.unsqueeze(2), torch.zeros_like(nb))
    length = torch.where(occ, off.norm(dim=-1), torch.full_like(off[..., 0], float("inf")))
    order = length.argsort(dim=-1, stable=True)
    off = torch.gather(off, 2, order.unsqueeze(-1).expand(-1, -1, -1, 3))
    occ = torch.gather(occ, 2, order)
    return off, occ


def layout_to_offset_state(rows: torch.Tensor, scale: float, off_scale: float, max_neighbors: int = 6,
                           unit: torch.Tensor | None = None, flag: float = 1.0) -> torch.Tensor:
    """Paper rows ``[N, L, 16]`` → offset state ``[N, 4 + 4K, L]`` (see module docstring); ``unit``
    ``[N]``: per-sample length unit that coordinates and offsets are divided by first; ``flag``: the
    magnitude of the presence and occupancy channels (±flag; decoding thresholds them at 0)."""
    n, length = rows.shape[:2]
    u = _per_sample(unit, n)[:, None, None]
    off, occ = _offsets(rows, max_neighbors)
    x = torch.empty(n, channels(max_neighbors), length)
    x[:, 0] = ((rows[..., 0] > 0).float() * 2 - 1) * flag
    x[:, 1:4] = (rows[..., 1:4] / (scale * u)).transpose(1, 2)
    x[:, 4:4 + max_neighbors] = ((occ.float() * 2 - 1) * flag).transpose(1, 2)
    x[:, 4 + max_neighbors:] = (off.reshape(n, length, 3 * max_neighbors) / (off_scale * u)).transpose(1, 2)
    return x


def offset_state_to_raw(x: torch.Tensor, scale: float, off_scale: float, max_neighbors: int = 6,
                        match: bool = True, candidates: int = 3,
                        tolerance: float = float("inf"),
                        unit: torch.Tensor | None = None,
                        reconcile: float = 0.1) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
    """Offset states → ``(pos, directed neighbour claims)`` per sample, before repair (decode.py);
    ``unit [B]``: the per-sample length unit the state was generated in (times ``scale``/``off_scale``).

    Nodes are the rows whose presence channel is > 0. ``match=False``: an occupied slot (occupancy
    > 0) of node ``a`` claims the other node nearest to ``xyz_a + offset``. ``match=True``
    (degree-preserving): every occupied slot proposes its ``candidates`` nearest nodes with the miss
    distance as cost; pairs are accepted cheapest first while both ends have an unused occupied slot
    — the degrees stay those the slots state, and a slightly-off offset costs a slightly-different
    partner instead of a missing or an extra edge; nodes with slots still unused then pair up with
    each other, closest to their targets first. Matched claims are listed in both directions.
    ``reconcile > 0`` (with ``match``): the coordinates are then re-solved so that each matched edge
    follows its slot offsets — least squares ``Σ_edges |p_b − p_a − o_ab|² + reconcile · Σ |p − xyz|²``
    (``o_ab`` the mean of a's offset towards b and minus b's towards a). Offsets are generated in
    units of the edge length, coordinates in units of the patch, so edge lengths are more precise in
    the offsets.
    A proposal that misses its node by more than ``tolerance`` × the offset's length is dropped
    (default: none is; on noisy states dropping them loses more edges than it removes long ones).
    """
    if x.shape[1] != channels(max_neighbors):
        raise ValueError(f"offset state needs {channels(max_neighbors)} channels, got {tuple(x.shape)}")
    out = []
    units = _per_sample(unit, x.shape[0]).double().numpy()
    for s in range(x.shape[0]):
        keep = np.flatnonzero(x[s, 0].numpy() > 0)
        pos = (x[s, 1:4, keep].T.double() * scale * units[s]).numpy().reshape(-1, 3)
        occ = x[s, 4:4 + max_neighbors, keep].numpy() > 0  # [K, n]
        off = x[s, 4 + max_neighbors:, keep].double().numpy().reshape(max_neighbors, 3, -1) * off_scale * units[s]
        claims: list[tuple[int, int]] = []
        if len(keep) >= 2:
            target = pos.T[None] + off  # [K, 3, n]
            d = np.linalg.norm(target[:, :, :, None] - pos.T[None, :, None, :], axis=1)  # [K, n, n]
            d[:, np.arange(len(keep)), np.arange(len(keep))] = np.inf
            if np.isfinite(tolerance):
                d = np.where(d <= np.linalg.norm(off, axis=1)[:, :, None] * tolerance, d, np.inf)
            if match:
                claims = _match(d, occ, candidates)
                if reconcile > 0 and claims:
                    pos = _reconcile(pos, off, occ, d, claims, reconcile)
            else:
                best = d.argmin(-1)  # [K, n]
                claims = [(int(a), int(best[k, a])) for k, a in zip(*np.nonzero(occ), strict=True)
                          if np.isfinite(d[k, a, best[k, a]])]
        out.append((pos, claims))
    return out


def _match(d: np.ndarray, occ: np.ndarray, candidates: int) -> list[tuple[int, int]]:
    """Greedy degree-constrained matching of slot proposals ``d [K, n, n]`` (see offset_state_to_raw)."""
    cost: dict[tuple[int, int], float] = {}
    c = min(candidates, d.shape[-1] - 1)
    for k, a in zip(*np.nonzero(occ), strict=True):
        for b in np.argpartition(d[k, a], c - 1)[:c]:
            if not np.isfinite(d[k, a, b]):
                continue
            key = (min(int(a), int(b)), max(int(a), int(b)))
            cost[key] = min(cost.get(key, np.inf), float(d[k, a, b]))
    free = occ.sum(0).astype(np.int64)
    done: set[tuple[int, int]] = set()
    for (a, b), _ in sorted(cost.items(), key=lambda kv: kv[1]):
        if free[a] > 0 and free[b] > 0:
            free[a] -= 1
            free[b] -= 1
            done.add((a, b))
    # second round: nodes with slots left over pair up with each other, closest to any of their targets
    if (free > 0).sum() >= 2:
        dmin = np.where(occ[:, :, None], d, np.inf).min(0)
        both = np.minimum(dmin, dmin.T)
        idx = np.flatnonzero(free > 0)
        sub = both[np.ix_(idx, idx)]
        for i, j in zip(*np.unravel_index(np.argsort(sub, axis=None), sub.shape), strict=True):
            a, b = int(idx[i]), int(idx[j])
            if a < b and np.isfinite(sub[i, j]) and free[a] > 0 and free[b] > 0 and (a, b) not in done:
                free[a] -= 1
                free[b] -= 1
                done.add((a, b))
    return [c for a, b in sorted(done) for c in ((a, b), (b, a))]


def _reconcile(pos: np.ndarray, off: np.ndarray, occ: np.ndarray, d: np.ndarray,
               claims: list[tuple[int, int]], weight: float) -> np.ndarray:
    """Coordinates re-solved to follow the matched edges' offsets (see offset_state_to_raw)."""
    n = pos.shape[0]
    masked = np.where(occ[:, :, None], d, np.inf)  # [K, n, n]: slot k of a towards b
    pairs = [(a, b) for a, b in claims if a < b]
    inc = np.zeros((len(pairs), n))
    target = np.zeros((len(pairs), 3))
    for e, (a, b) in enumerate(pairs):
        vs = []
        if np.isfinite(masked[:, a, b]).any():
            vs.append(off[int(masked[:, a, b].argmin()), :, a])
        if np.isfinite(masked[:, b, a]).any():
            vs.append(-off[int(masked[:, b, a].argmin()), :, b])
        inc[e, a], inc[e, b] = -1.0, 1.0
        target[e] = np.mean(vs, axis=0) if vs else pos[b] - pos[a]
    lhs = inc.T @ inc + weight * np.eye(n)
    return np.linalg.solve(lhs, inc.T @ target + weight * pos)
