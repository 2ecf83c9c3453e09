"""Fabrication output: STL of the struts as cylinders (+ spheres at junctions) and GraphML of the graph.

Each strut is a closed ``trimesh`` cylinder (its caps set back inside the junction spheres) and each
junction a closed icosphere; the STL is their concatenation, so every mesh edge is shared by exactly
two faces (``is_watertight``, also after an STL reload merges coincident vertices). Overlapping
solids are the usual input of slicers, which union them at print time (a boolean union needs a
mesh-boolean backend such as manifold3d, not installed here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from domains.spiderwebs.graph import WebGraph


def strut_mesh(g: WebGraph, radius: float, sections: int = 8, joints: bool = True):
    """The web as one trimesh of cylinders along edges and spheres at nodes."""
    import trimesh

    parts = []
    for (i, j), length in zip(g.edges.tolist(), g.lengths().tolist(), strict=True):
        if length <= 0:
            raise ValueError(f"edge ({i}, {j}) has zero length; decode the graph before export")
        # pull the caps back inside the joint spheres so parts share no vertex (the STL stays
        # 2-manifold after the vertex merge of a reload)
        u = (g.pos[j] - g.pos[i]) / length
        inset = min(0.6 * radius, 0.25 * length) if joints else 0.0
        seg = np.stack([g.pos[i] + inset * u, g.pos[j] - inset * u])
        parts.append(trimesh.creation.cylinder(radius=radius, segment=seg, sections=sections))
    if joints:
        ball = trimesh.creation.icosphere(subdivisions=1, radius=radius * 1.3)
        for p in g.pos:
            parts.append(ball.copy().apply_translation(p))
    if not parts:
        raise ValueError("empty graph: nothing to export")
    return trimesh.util.concatenate(parts)


def write_stl(g: WebGraph, path: str | Path, radius: float) -> dict[str, object]:
    """Write the STL atomically; returns ``{path, watertight, faces}``."""
    mesh = strut_mesh(g, radius)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    mesh.export(tmp, file_type="stl")
    tmp.replace(path)
    return {"path": str(path), "watertight": bool(mesh.is_watertight), "faces": int(len(mesh.faces))}


def write_graphml(g: WebGraph, path: str | Path) -> Path:
    """GraphML with node ``x, y, z`` and edge ``length`` attributes (atomically)."""
    import networkx as nx

    G = nx.Graph()
    for i, p in enumerate(g.pos.tolist()):
        G.add_node(i, x=p[0], y=p[1], z=p[2])
    for (i, j), length in zip(g.edges.tolist(), g.lengths().tolist(), strict=True):
        G.add_edge(i, j, length=float(length))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    nx.write_graphml(G, tmp)
    tmp.replace(path)
    return path


def read_graphml(path: str | Path) -> WebGraph:
    import networkx as nx

    from domains.spiderwebs.graph import make_graph

    G = nx.read_graphml(path)
    ids = {n: k for k, n in enumerate(G.nodes)}
    pos = np.array([[G.nodes[n]["x"], G.nodes[n]["y"], G.nodes[n]["z"]] for n in G.nodes], dtype=float)
    return make_graph(pos, [(ids[a], ids[b]) for a, b in G.edges])
