"""Tests for core.networks: shapes on every rank, conditioning and CFG dropout, gradients, determinism."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.networks import (
    FourierFeatures,
    MLPDenoiserNet,
    SinusoidalEmbedding,
    TimeConditioning,
    UNet,
    num_groups,
)
from core.registry import UnknownNameError


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny tensors gain nothing from intra-op threads, and OpenMP barriers crawl on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = dict(base_channels=8, channel_mults=(1, 2, 2), num_heads=2, emb_dim=16)
COND = dict(cond_channels=2, cond_vector_dim=3, num_classes=5)


def tiny_unet(dims: int, in_ch: int = 2, out_ch: int = 2, seed: int = 0, **kw) -> UNet:
    torch.manual_seed(seed)
    return UNet(dims, in_ch, out_ch, **{**TINY, **kw})


def unzero(model: nn.Module, layer: nn.Module, seed: int = 1) -> None:
    """Copy random weights into a zero-initialised output layer so the output depends on the input."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def make_cond(x: torch.Tensor, seed: int = 2) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    b = x.shape[0]
    return {"channels": torch.randn((b, 2, *x.shape[2:]), generator=gen),
            "vector": torch.randn((b, 3), generator=gen),
            "labels": torch.randint(0, 5, (b,), generator=gen)}


SHAPES = [(1, (37,)), (1, (32,)), (2, (13, 10)), (2, (16, 16)), (3, (9, 8, 7))]


@pytest.mark.parametrize(("dims", "spatial"), SHAPES)
def test_unet_output_shape_all_ranks_odd_sizes_with_attention(dims, spatial):
    net = tiny_unet(dims, in_ch=2, out_ch=3, attention_levels=(1, 2)).eval()
    x = torch.randn(2, 2, *spatial)
    out = net(x, torch.rand(2))
    assert out.shape == (2, 3, *spatial)
    assert torch.count_nonzero(out) == 0  # zero-initialised final conv
    unzero(net, net.out_conv)
    out = net(x, torch.rand(2))
    assert out.shape == (2, 3, *spatial) and torch.isfinite(out).all()


@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "constant"])
def test_unet_padding_modes_and_tiny_axes(pad_mode):
    net = tiny_unet(2, pad_mode=pad_mode)
    unzero(net, net.out_conv)
    x = torch.randn(1, 2, 1, 5)  # an axis shorter than the pad falls back from reflect
    assert net(x, 0.5).shape == x.shape


def test_unet_scalar_time_and_float64_time():
    net = tiny_unet(1)
    unzero(net, net.out_conv)
    x = torch.randn(3, 2, 8)
    out_scalar = net(x, 0.3)
    out_vec = net(x, torch.full((3,), 0.3, dtype=torch.float64))
    torch.testing.assert_close(out_scalar, out_vec)


@pytest.mark.parametrize("key", ["channels", "vector", "labels"])
def test_unet_conditioning_changes_output(key):
    net = tiny_unet(2, **COND).eval()
    unzero(net, net.out_conv)
    x, t = torch.randn(2, 2, 8, 6), torch.rand(2)
    cond = make_cond(x)
    other = dict(cond)
    other[key] = make_cond(x, seed=7)[key]
    if key == "labels":
        other[key] = (cond[key] + 1) % 5
    assert not torch.allclose(net(x, t, cond), net(x, t, other), atol=1e-6)


def test_unet_drop_equals_unconditional():
    net = tiny_unet(2, **COND).eval()
    unzero(net, net.out_conv)
    x, t = torch.randn(3, 2, 8, 6), torch.rand(3)
    cond = make_cond(x)
    uncond = net(x, t, None)
    all_dropped = net(x, t, {**cond, "drop": torch.ones(3, dtype=torch.bool)})
    torch.testing.assert_close(all_dropped, uncond, atol=1e-6, rtol=0)
    some = net(x, t, {**cond, "drop": torch.tensor([True, False, False])})
    torch.testing.assert_close(some[0], uncond[0], atol=1e-6, rtol=0)
    assert not torch.allclose(some[1:], uncond[1:], atol=1e-6)
    assert not torch.allclose(net(x, t, cond), uncond, atol=1e-6)


def test_mlp_drop_equals_unconditional_and_labels_matter():
    torch.manual_seed(0)
    net = MLPDenoiserNet(6, hidden=32, depth=2, emb_dim=16, cond_vector_dim=3, num_classes=4)
    unzero(net, net.out)
    x, t = torch.randn(2, 6), torch.rand(2)
    cond = {"vector": torch.randn(2, 3), "labels": torch.tensor([0, 1])}
    torch.testing.assert_close(net(x, t, {**cond, "drop": torch.tensor([True, True])}), net(x, t))
    assert not torch.allclose(net(x, t, cond), net(x, t, {**cond, "labels": torch.tensor([2, 3])}))


def test_cond_validation_errors():
    net = tiny_unet(1)
    x = torch.randn(1, 2, 8)
    # keys that belong to other components (a state space's mask) are left alone
    torch.testing.assert_close(net(x, 0.5, {"mask": torch.ones(1, 2, 8)}), net(x, 0.5))
    with pytest.raises(ValueError, match="built without"):
        net(x, 0.5, {"vector": torch.zeros(1, 3)})
    with pytest.raises(ValueError, match="expected"):
        net(torch.randn(1, 2, 8, 8), 0.5)
    with pytest.raises(ValueError, match="num_heads"):
        tiny_unet(1, num_heads=3, attention_levels=(0,))
    with pytest.raises(ValueError, match="attention_levels"):
        tiny_unet(1, attention_levels=(3,))
    with pytest.raises(UnknownNameError, match="sinusoidal"):
        TimeConditioning(8, kind="wavelet")  # type: ignore[arg-type]


def _assert_all_grads(model: nn.Module) -> None:
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_unet_gradients_reach_every_parameter(dims):
    net = tiny_unet(dims, attention_levels=(0, 2), dropout=0.1, **COND)
    unzero(net, net.out_conv)
    x = torch.randn(2, 2, *([6] * dims))
    cond = {**make_cond(x), "drop": torch.tensor([True, False])}
    net(x, torch.rand(2), cond).square().mean().backward()
    _assert_all_grads(net)


def test_mlp_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = MLPDenoiserNet(5, hidden=16, depth=2, emb_dim=8, cond_vector_dim=2, num_classes=3)
    unzero(net, net.out)
    cond = {"vector": torch.randn(4, 2), "labels": torch.tensor([0, 1, 2, 0]),
            "drop": torch.tensor([False, True, False, False])}
    net(torch.randn(4, 5), torch.rand(4), cond).square().mean().backward()
    _assert_all_grads(net)


def test_init_is_deterministic_given_seed():
    a, b, c = tiny_unet(2, seed=3, **COND), tiny_unet(2, seed=3, **COND), tiny_unet(2, seed=4, **COND)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize(("dims", "spatial", "dtype"), [
    (1, (37,), torch.float64), (2, (13, 10), torch.float64), (3, (9, 8, 7), torch.float64),
    (1, (37,), torch.float32), (2, (13, 10), torch.float32)])
def test_unet_batch_invariance_in_eval_mode(dims, spatial, dtype):
    """Sample k's output must not depend on the rest of the batch (no batch statistics, no leaks).

    float64 makes this an exact check; float32 kernels block differently per batch size, which moves
    outputs by ~1e-6 (more for 3-D nets whose coarse GroupNorms see a handful of values), not a leak.
    """
    net = tiny_unet(dims, attention_levels=(1,), dropout=0.5, **COND).eval()
    unzero(net, net.out_conv)
    net = net.to(dtype)
    x, t = torch.randn(4, 2, *spatial, dtype=dtype), torch.rand(4, dtype=dtype)
    cond = {**make_cond(x), "drop": torch.tensor([False, True, False, True])}
    cond = {k: v.to(dtype) if v.is_floating_point() else v for k, v in cond.items()}
    full = net(x, t, cond)
    for k in range(4):
        single = net(x[k:k + 1], t[k:k + 1], {key: v[k:k + 1] for key, v in cond.items()})
        torch.testing.assert_close(single, full[k:k + 1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(3, 16), (3, 4, 4)])
def test_mlp_shapes(shape):
    torch.manual_seed(0)
    net = MLPDenoiserNet(16, hidden=32, depth=2, emb_dim=16)
    x = torch.randn(*shape)
    assert torch.count_nonzero(net(x, torch.rand(3))) == 0
    unzero(net, net.out)
    out = net(x, torch.rand(3))
    assert out.shape == x.shape
    assert not torch.allclose(net(x, torch.zeros(3)), net(x, torch.ones(3)))


def test_mlp_rejects_wrong_feature_count():
    net = MLPDenoiserNet(16, hidden=8, depth=1, emb_dim=8)
    with pytest.raises(ValueError, match="16 features"):
        net(torch.randn(2, 15), torch.rand(2))


@pytest.mark.parametrize("kind", ["sinusoidal", "fourier"])
def test_time_embedding_distinct_for_distinct_t(kind):
    torch.manual_seed(0)
    emb = TimeConditioning(16, kind=kind)
    t = torch.tensor([0.0, 1e-3, 0.1, 0.5, 1.0, -1.2, 2.0])  # [0,1] times and EDM c_noise values
    e = emb(t)
    assert e.shape == (7, 16)
    dist = torch.cdist(e, e) + torch.eye(7)
    assert dist.min() > 1e-4


def test_embedding_features():
    sin = SinusoidalEmbedding(8, max_period=100.0)
    f = sin(torch.tensor([0.0, 0.5]))
    torch.testing.assert_close(f[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    torch.testing.assert_close(f.square().reshape(2, 2, 4).sum(1), torch.ones(2, 4))  # cos^2 + sin^2
    torch.manual_seed(123)
    a = FourierFeatures(8, scale=2.0)
    torch.manual_seed(456)
    b = FourierFeatures(8, scale=2.0)
    assert torch.equal(a.weight, b.weight)  # independent of the global RNG
    assert not torch.equal(a.weight, FourierFeatures(8, scale=2.0, seed=1).weight)
    with pytest.raises(ValueError, match="even"):
        SinusoidalEmbedding(7)


@pytest.mark.parametrize(("channels", "groups"), [(8, 8), (48, 24), (64, 32), (7, 7), (37, 1), (96, 32)])
def test_num_groups_divides(channels, groups):
    assert num_groups(channels) == groups
