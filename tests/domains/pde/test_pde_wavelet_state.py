"""Wavelet transform (exact reconstruction, pywt agreement, refusals), layout and replacement conditioning."""

from __future__ import annotations

import pytest
import torch

from core.processes import make_process
from core.samplers import InpaintingSpace
from domains.pde.state import Representation, TrajectorySpace, known_mask, layout_shape, pack, unpack
from domains.pde.wavelet import Wavelet2D, WaveletError


@pytest.mark.parametrize("name", ["bior2.4", "haar", "db2"])
def test_exact_reconstruction_and_agreement_with_pywt(name):
    import pywt

    x = torch.randn(3, 2, 18, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w = Wavelet2D(name, (18, 24))
    c = w.forward(x)
    assert c.shape == (3, 2, 4, 9, 12)
    assert float((w.inverse(c) - x).abs().max()) < 1e-12
    ca, (ch, cv, cd) = pywt.dwt2(x.numpy(), name, mode="periodization")
    for i, ref in enumerate((ca, ch, cv, cd)):
        assert abs(c[:, :, i].numpy() - ref).max() < 1e-12


def test_haar_oracle_on_a_2x2_block():
    c = Wavelet2D("haar", (2, 2)).forward(torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
    # LL = sum/2, detail along H = (top - bottom)/2, along W = (left - right)/2, diagonal
    assert torch.allclose(c.flatten(), torch.tensor([5.0, -2.0, -1.0, 0.0], dtype=torch.float64))


def test_inexact_wavelet_is_refused_with_the_error_printed():
    with pytest.raises(WaveletError, match=r"max error \d\.\d+e-\d+ > tolerance 1\.0e-15"):
        Wavelet2D("bior6.8", (4, 4), tol=1e-15)
    with pytest.raises(WaveletError, match="unknown wavelet 'nope'"):
        Wavelet2D("nope", (4, 4))
    with pytest.raises(WaveletError, match="odd length 5"):
        Wavelet2D("haar", (5, 4))


def test_layout_roundtrip_and_masks():
    g = torch.Generator().manual_seed(1)
    u, f, scales = torch.randn(2, 5, 7, generator=g), torch.randn(2, 4, 7, generator=g), torch.tensor([2.0, 3.0])
    x = pack(u, f, scales)
    assert x.shape == (2, 2, 6, 8) and float(x[:, :, -1].abs().max()) == 0.0 and float(x[..., -1].abs().max()) == 0.0
    u2, f2 = unpack(x, scales)
    assert torch.allclose(u2, u) and torch.allclose(f2, f)
    sim, ctl = known_mask("simulation", 4, 7), known_mask("control", 4, 7)
    assert sim[0, 0, 0, :7].eq(1).all() and sim[0, 0, 1:5, :7].eq(0).all() and sim[0, 1].eq(1).all()
    assert ctl[0, 0, 4, :7].eq(1).all() and ctl[0, 0, 1:4, :7].eq(0).all() and ctl[0, 1, :4, :7].eq(0).all()
    with pytest.raises(ValueError, match="nt even and nx odd"):
        layout_shape(4, 8)


def test_physical_space_projection_is_the_core_inpainting_space():
    proc = make_process({"name": "edm"})
    rep = Representation("physical", (6, 8))
    known, mask = torch.randn(2, 2, 6, 8), known_mask("simulation", 4, 7, 2)
    x, t = torch.randn(2, 2, 6, 8), torch.full((2,), 0.5)
    ours = TrajectorySpace(proc, rep, torch.Generator().manual_seed(3)).project(x, t, {"known": known, "mask": mask})
    core = InpaintingSpace(proc, known, mask, generator=torch.Generator().manual_seed(3)).project(x, t)
    assert torch.allclose(ours, core)


def test_wavelet_projection_enforces_known_values_exactly_at_t0():
    rep = Representation("wavelet", (6, 8), band_scales=torch.linspace(0.5, 2.0, 8))
    known, mask = torch.randn(2, 2, 6, 8, dtype=torch.float64), known_mask("control", 4, 7, 2).double()
    space = TrajectorySpace(make_process({"name": "edm"}), rep)
    out = space.project(torch.randn(2, 8, 3, 4, dtype=torch.float64), torch.zeros(2), {"known": known, "mask": mask})
    phys = rep.decode(out)
    assert torch.allclose(phys * mask, known * mask, atol=1e-12)
    assert torch.allclose(rep.decode(rep.encode(known)), known, atol=1e-12)
    assert space.project(out, torch.zeros(2), None) is out  # no conditioning: identity (training)


def test_broadcast_conditioning_carries_u0_target_and_forcing():
    from domains.pde.state import broadcast_conditioning

    g = torch.Generator().manual_seed(2)
    u, f, scales = torch.randn(1, 5, 7, generator=g), torch.randn(1, 4, 7, generator=g), torch.tensor([1.0, 1.0])
    x = pack(u, f, scales)
    sim = broadcast_conditioning(x * known_mask("simulation", 4, 7), known_mask("simulation", 4, 7))
    assert sim.shape == (1, 4, 6, 8)
    assert torch.allclose(sim[0, 0, :, :7], u[0, :1].expand(6, 7)) and float(sim[0, 1].abs().max()) == 0.0
    assert torch.allclose(sim[0, 2, :4, :7], f[0])
    ctl = broadcast_conditioning(x * known_mask("control", 4, 7), known_mask("control", 4, 7))
    assert torch.allclose(ctl[0, 1, :, :7], u[0, -1:].expand(6, 7)) and float(ctl[0, 2].abs().max()) == 0.0
    rep = Representation("wavelet", (6, 8))
    assert rep.cond_channels(x, known_mask("simulation", 4, 7)).shape == (1, rep.cond_count, 3, 4)
    assert rep.cond_channels(x, known_mask("simulation", 4, 7), "known").shape == (1, rep.cond_count, 3, 4)


def test_coarsen_keeps_the_nested_points():
    from domains.pde.data import coarsen

    t, x = torch.arange(9.0)[:, None], torch.arange(7.0)[None]
    u = (100 * t + x)[None]  # u[t, i] = 100 t + i on nt = 8, nx = 7
    f = (100 * t[:8] + x)[None]
    uc, fc = coarsen(u, f, 1)
    assert uc.shape == (1, 5, 3) and fc.shape == (1, 4, 3)
    assert torch.equal(uc[0, 1], torch.tensor([201.0, 203.0, 205.0]))  # frame 2, points x = 2/8, 4/8, 6/8
    assert torch.equal(fc[0, 0], torch.tensor([51.0, 53.0, 55.0]))  # mean of frames 0 and 1
    with pytest.raises(ValueError, match="cannot be coarsened 8x"):
        coarsen(u, f, 3)


def _space(kind, wavelet, loss_space, nt=8, nx=7, band_scales=None):
    rep = Representation(kind, layout_shape(nt, nx), wavelet, band_scales)
    return rep, TrajectorySpace(make_process("edm"), rep, loss_space=loss_space)


def test_physical_loss_residual_is_the_decoded_state_residual():
    rep, space = _space("wavelet", "bior2.4", "physical", band_scales=torch.full((8,), 0.5))
    diff = torch.randn(3, *rep.state_shape(), generator=torch.Generator().manual_seed(0))
    phys = space.loss_residual(diff)
    assert phys.shape == (3, 2, *layout_shape(8, 7))
    assert torch.allclose(rep.encode(phys), diff, atol=1e-5)
    # bior2.4 is biorthogonal, not orthonormal: the squared errors differ; for haar (orthonormal) they agree
    assert not torch.allclose(phys.pow(2).sum(), (diff * 0.5).pow(2).sum(), rtol=1e-3)
    rep_h, space_h = _space("wavelet", "haar", "physical")
    d = torch.randn(3, *rep_h.state_shape(), dtype=torch.float64)
    assert torch.allclose(space_h.loss_residual(d).pow(2).sum(), d.pow(2).sum())
    _, space_state = _space("wavelet", "bior2.4", "state")
    assert space_state.loss_residual(diff) is diff


def test_physical_unknown_residual_drops_known_entries_and_follows_the_grid():
    rep, space = _space("wavelet", "bior2.4", "physical_unknown")
    mask = known_mask("simulation", 8, 7, 2)
    diff = torch.randn(2, *rep.state_shape())
    out = space.loss_residual(diff, {"unknown": 1.0 - mask})
    assert bool((out[mask.bool()] == 0).all()) and bool((out[~mask.bool()] != 0).any())
    # a 2x-coarser batch (multi-resolution training) decodes on its own grid
    coarse_mask = known_mask("simulation", 4, 3, 2)
    coarse = space.loss_residual(torch.randn(2, 8, *[s // 2 for s in layout_shape(4, 3)]), {"unknown": 1.0 - coarse_mask})
    assert coarse.shape == (2, 2, *layout_shape(4, 3))
    with pytest.raises(KeyError, match="unknown"):
        space.loss_residual(diff, {"channels": diff})
    with pytest.raises(ValueError, match="loss_space"):
        _space("wavelet", "bior2.4", "coefficients")
