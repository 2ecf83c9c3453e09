import numpy as np
import pytest

from domains.spiderwebs.generator import generate_web, orb_web, sheet_tangle_web
from domains.spiderwebs.patches import grow_patch, sample_patches


@pytest.mark.parametrize("kind", ["orb", "sheet_tangle"])
def test_webs_are_connected_capped_and_seeded(kind):
    a = generate_web(kind, np.random.default_rng(3))
    b = generate_web(kind, np.random.default_rng(3))
    c = generate_web(kind, np.random.default_rng(4))
    assert a.is_connected() and a.n_nodes > 150
    assert int(a.degrees().max()) <= 6 and int(a.degrees().min()) >= 1
    assert (a.lengths() > 0).all()
    assert np.array_equal(a.pos, b.pos) and np.array_equal(a.edges, b.edges)
    assert a.n_nodes != c.n_nodes or not np.allclose(a.pos, c.pos)


def test_orb_web_degree_distribution_is_orb_like():
    g = orb_web(np.random.default_rng(0))
    deg = np.bincount(g.degrees(), minlength=7)
    # spiral crossings have degree 4, frame / hub junctions 3: together nearly all junctions
    assert (deg[3] + deg[4]) / g.n_nodes > 0.9
    assert deg[4] > deg[3]
    # a vertical plane: the y extent (sag) is small against the x-z extent before the random tilt
    assert 1.5 < g.edges.shape[0] / g.n_nodes < 2.1


def test_sheet_tangle_has_sheet_below_tangle_and_long_support_threads():
    g = sheet_tangle_web(np.random.default_rng(1), radius=60.0)
    z = g.pos[:, 2]
    assert np.ptp(z) > 40  # a 3D web, not a sheet
    lengths = g.lengths()
    assert lengths.max() > 4 * np.median(lengths)  # long-tailed edge lengths (tangle, supports)
    deg = g.degrees()
    assert 1.5 < g.n_edges / g.n_nodes < 2.5 and deg.max() <= 6


def test_patches_are_connected_local_and_bounded():
    web = generate_web("sheet_tangle", np.random.default_rng(0))
    patches = sample_patches(web, 20, np.random.default_rng(1), 16, 64)
    for p in patches:
        assert 16 <= p.n_nodes <= 64 and p.is_connected()
        assert np.allclose(p.pos.mean(0), 0, atol=1e-9)
    p = grow_patch(web, 0, 10)
    assert p.n_nodes == 10 and np.allclose(p.pos[0], web.pos[0])
    with pytest.raises(ValueError, match="seed node"):
        grow_patch(web, web.n_nodes, 5)
    with pytest.raises(ValueError, match="min_nodes"):
        sample_patches(web, 1, np.random.default_rng(0), 10, 5)
