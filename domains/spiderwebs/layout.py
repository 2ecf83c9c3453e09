"""The paper's dataset layout (``dataset_webs_medium.pt``) and the sparse diffusion state built from it.

``torch.load`` of the file gives the 7-tuple ``(input, y_data, node_number_list, labels_y_txt,
max_length, posdim_emb, max_neighbors)``; ``input`` is ``[N, max_length, 16]`` per node row:
col 0 the 1-based node number (0 = padding), cols 1–3 xyz, cols 4–9 up to 6 neighbour numbers
(1-based, 0 = none), cols 10–15 the matching distances. See data/spiderwebs/PROVENANCE.md.

The model-1 state (``[B, 10, L]``, the paper's ``[3 + max_neighbors, L]`` plus a presence channel):
channel 0 presence (+1 node / −1 padding), 1–3 xyz / ``scale``, 4–9 neighbour slots coded
``−0.5 + 1.5 (k − 1) / (L − 1)`` ∈ [−0.5, 1] for 1-based neighbour number ``k`` and −1 for an empty
slot (the paper codes ``k / L`` with 0 = empty, which puts "empty" one index step from neighbour 1;
the gap here makes the empty/non-empty decision robust to sampling noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from domains.spiderwebs.graph import WebGraph, make_graph
from domains.spiderwebs.properties import PROPERTY_NAMES, design_vector

N_COLS = 16
STATE_CHANNELS = 10


class MalformedWebError(ValueError):
    """A web in a dataset file violates the layout; the message names the sample and node."""


def graphs_to_layout(graphs: Sequence[WebGraph], max_length: int = 64, max_neighbors: int = 6) -> torch.Tensor:
    """Encode graphs in the paper's ``[N, max_length, 16]`` rows (neighbours sorted by number)."""
    out = torch.zeros(len(graphs), max_length, 4 + 2 * max_neighbors, dtype=torch.float32)
    for s, g in enumerate(graphs):
        if g.n_nodes > max_length:
            raise ValueError(f"sample {s} has {g.n_nodes} nodes; max_length is {max_length}")
        nb = g.neighbours()
        for i in range(g.n_nodes):
            if len(nb[i]) > max_neighbors:
                raise ValueError(f"sample {s}, node {i + 1} has degree {len(nb[i])} > max_neighbors {max_neighbors}")
            js = sorted(nb[i])
            out[s, i, 0] = i + 1
            out[s, i, 1:4] = torch.from_numpy(g.pos[i])
            for k, j in enumerate(js):
                out[s, i, 4 + k] = j + 1
                out[s, i, 4 + max_neighbors + k] = float(np.linalg.norm(g.pos[i] - g.pos[j]))
    return out


def layout_to_graphs(rows: torch.Tensor, max_neighbors: int = 6) -> list[WebGraph]:
    """Decode ``[N, L, 16]`` rows, checking every web; errors name the sample and the node."""
    if rows.ndim != 3 or rows.shape[2] != 4 + 2 * max_neighbors:
        raise MalformedWebError(f"expected input rows [N, L, {4 + 2 * max_neighbors}], got {tuple(rows.shape)}")
    graphs = []
    for s in range(rows.shape[0]):
        graphs.append(_decode_sample(rows[s].double().numpy(), s, max_neighbors))
    return graphs


def _decode_sample(r: np.ndarray, s: int, max_neighbors: int) -> WebGraph:
    n = int((r[:, 0] > 0).sum())
    if not np.array_equal(r[:n, 0], np.arange(1, n + 1)):
        raise MalformedWebError(f"sample {s}: node numbers must be 1..n followed by zero padding rows")
    bad = np.flatnonzero(~np.isfinite(r[:n, 1:4]).all(1))
    if len(bad):
        raise MalformedWebError(f"sample {s}, node {bad[0] + 1}: NaN/inf coordinates {r[bad[0], 1:4].tolist()}")
    nb = r[:n, 4:4 + max_neighbors]
    sets = []
    for i in range(n):
        ids = nb[i][nb[i] != 0]
        if (ids != np.round(ids)).any() or (ids < 1).any() or (ids > n).any():
            raise MalformedWebError(f"sample {s}, node {i + 1}: neighbour id(s) {ids.tolist()} out of range 1..{n}")
        sets.append({int(j) - 1 for j in ids})
    edges = []
    for i in range(n):
        for j in sets[i]:
            if i not in sets[j]:
                raise MalformedWebError(f"sample {s}, node {i + 1}: lists neighbour {j + 1}, but node {j + 1} "
                                        f"does not list {i + 1} (asymmetric neighbours)")
            edges.append((i, j))
    return make_graph(r[:n, 1:4], edges)


def save_paper_file(path: str | Path, graphs: Sequence[WebGraph], max_length: int = 64,
                    max_neighbors: int = 6) -> Path:
    """Write graphs as a ``dataset_webs_medium.pt``-layout file (atomically)."""
    rows = graphs_to_layout(graphs, max_length, max_neighbors)
    y = torch.tensor(np.stack([design_vector(g) for g in graphs]), dtype=torch.float32)
    counts = [g.n_nodes for g in graphs]
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save((rows, y, counts, list(PROPERTY_NAMES), max_length, 3, max_neighbors), tmp)
    tmp.replace(path)
    return path


def load_paper_file(path: str | Path) -> tuple[list[WebGraph], torch.Tensor]:
    """Read a ``dataset_webs_medium.pt``-layout file: the checked graphs and the stored ``y_data``."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, tuple | list) or len(obj) != 7:
        raise MalformedWebError(f"{path}: expected the 7-tuple (input, y_data, node_number_list, labels_y_txt, "
                                f"max_length, posdim_emb, max_neighbors), got {type(obj).__name__}")
    rows, y, counts, _labels, max_length, _posdim, max_neighbors = obj
    graphs = layout_to_graphs(torch.as_tensor(rows), int(max_neighbors))
    if rows.shape[1] != int(max_length) or y.shape != (len(graphs), 7):
        raise MalformedWebError(f"{path}: input {tuple(rows.shape)} / y_data {tuple(y.shape)} do not match "
                                f"max_length {max_length} and 7 properties")
    for s, (g, c) in enumerate(zip(graphs, list(counts), strict=True)):
        if int(c) != g.n_nodes:
            raise MalformedWebError(f"sample {s}: node_number_list says {int(c)} nodes, rows hold {g.n_nodes}")
    return graphs, torch.as_tensor(y, dtype=torch.float32)


def layout_to_state(rows: torch.Tensor, scale: float, max_neighbors: int = 6) -> torch.Tensor:
    """Paper rows ``[N, L, 16]`` → model-1 state ``[N, 10, L]`` (see module docstring)."""
    length = rows.shape[1]
    present = rows[..., 0] > 0
    x = torch.empty(rows.shape[0], 4 + max_neighbors, length)
    x[:, 0] = present.float() * 2 - 1
    x[:, 1:4] = (rows[..., 1:4] / scale).transpose(1, 2)
    k = rows[..., 4:4 + max_neighbors]
    x[:, 4:] = torch.where(k > 0, -0.5 + 1.5 * (k - 1) / max(length - 1, 1), torch.full_like(k, -1.0)).transpose(1, 2)
    return x


def state_to_raw(x: torch.Tensor, scale: float, window: int = 0) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
    """Model-1 states → ``(pos, directed neighbour claims)`` per sample, before repair (decode.py).

    Nodes are the rows whose presence channel is > 0. A slot value ``v`` is empty below −0.75, else it
    decodes to the real 1-based number ``k̂ = 1 + (v + 0.5) (L − 1) / 1.5``. Within 0.25 of an existing number it is that node;
    otherwise the claimed neighbour is the node whose number is within ``window`` of ``k̂`` and closest
    in space (``window = 0``: plain rounding) — the coordinates disambiguate a slightly-off index.
    """
    length = x.shape[-1]
    out = []
    for s in range(x.shape[0]):
        keep = np.flatnonzero(x[s, 0].numpy() > 0)
        pos = (x[s, 1:4, keep].T.double() * scale).numpy().reshape(-1, 3)
        v = x[s, 4:, keep].double()
        khat = torch.where(v < -0.75, torch.zeros_like(v), 1 + (v + 0.5) * (length - 1) / 1.5).numpy()
        numbers = keep + 1
        claims = []
        for a in range(len(keep)):
            for k in khat[:, a]:
                if k == 0:
                    continue
                b = _snap(numbers, pos, a, k, window)
                if b is not None:
                    claims.append((a, b))
        out.append((pos, claims))
    return out


def _snap(numbers: np.ndarray, pos: np.ndarray, a: int, k: float, window: int) -> int | None:
    """The node a slot value ``k`` (real 1-based number) of node ``a`` points to (see state_to_raw)."""
    exact = np.flatnonzero(np.abs(numbers - k) < 0.25)
    if len(exact) and exact[0] != a:
        return int(exact[0])
    near = np.flatnonzero(np.abs(numbers - k) <= max(window, 0.5))
    near = near[near != a]
    if not len(near):
        return None
    if window == 0:
        return int(near[np.argmin(np.abs(numbers[near] - k))])
    return int(near[np.argmin(np.linalg.norm(pos[near] - pos[a], axis=1))])


def state_to_geometric(x: torch.Tensor, scale: float) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
    """Geometric decoding: each node claims as many of its spatially nearest nodes as it has non-empty
    slots (the slots give the degree, the coordinates the partners)."""
    out = []
    for s in range(x.shape[0]):
        keep = np.flatnonzero(x[s, 0].numpy() > 0)
        pos = (x[s, 1:4, keep].T.double() * scale).numpy().reshape(-1, 3)
        deg = (x[s, 4:, keep] >= -0.75).sum(0).numpy()
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        out.append((pos, [(a, int(b)) for a in range(len(keep)) for b in np.argsort(d[a])[:deg[a]]]))
    return out
