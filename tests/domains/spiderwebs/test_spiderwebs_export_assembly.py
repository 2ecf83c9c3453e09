import numpy as np
import pytest

from domains.spiderwebs.assembly import assemble, helix
from domains.spiderwebs.export import read_graphml, strut_mesh, write_graphml, write_stl
from domains.spiderwebs.graph import make_graph


def _square(shift=0.0):
    return make_graph(np.array([[0, 0, 0], [4, 0, 0], [4, 4, 0], [0, 4, 0]], float) + shift,
                      [[0, 1], [1, 2], [2, 3], [3, 0]])


def test_stl_is_watertight_and_graphml_roundtrips(tmp_path):
    g = _square()
    rep = write_stl(g, tmp_path / "w.stl", radius=0.3)
    assert rep["watertight"] and (tmp_path / "w.stl").stat().st_size > 0
    import trimesh

    mesh = trimesh.load(tmp_path / "w.stl")
    assert mesh.is_watertight and mesh.bounds[1][0] > 4.0
    back = read_graphml(write_graphml(g, tmp_path / "w.graphml"))
    assert np.allclose(back.pos, g.pos) and np.array_equal(back.edges, g.edges)
    with pytest.raises(ValueError, match="zero length"):
        strut_mesh(make_graph([[0, 0, 0], [0, 0, 0]], [[0, 1]]), 0.1)


def test_helix_is_a_helix():
    c = helix(radius=2.0, pitch=3.0, turns=2.0)
    p = c(np.linspace(0, 1, 9))
    assert np.allclose(np.linalg.norm(p[:, :2], axis=1), 2.0)
    assert p[-1, 2] == pytest.approx(6.0)


def test_assembly_stitches_patches_into_one_structure_along_the_curve():
    patches = [_square() for _ in range(5)]
    g, rep = assemble(patches, helix(radius=10.0, pitch=8.0, turns=1.0), tol=0.5)
    assert rep["connected"] and g.is_connected()
    assert rep["n_nodes"] <= 20 and rep["bridge_links"] + rep["merged_pairs"] >= 4
    assert rep["mean_distance_to_curve"] < 4.0
    with pytest.raises(ValueError, match="at least one patch"):
        assemble([], helix(1, 1, 1), 0.1)
