"""Graph state space: symmetric masked noise, projection, masked reduction (hand-computed)."""

import pytest
import torch

from core.seeding import make_generator
from core.types import StateDict
from domains.graphs.state_space import GraphSpace, quantize_adj, structure_masks


def _state(b=3, n=5, f=2):
    return StateDict({"x": torch.zeros(b, n, f), "adj": torch.zeros(b, n, n)})


def _mask():
    return torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.float32)


def test_noise_symmetric_zero_diagonal_and_masked():
    z = GraphSpace().noise_like(_state(), make_generator(0), {"mask": _mask()})
    a = z["adj"]
    assert torch.equal(a, a.transpose(1, 2))
    assert torch.all(torch.diagonal(a, dim1=1, dim2=2) == 0)
    assert torch.all(a[0, 3:] == 0) and torch.all(a[0, :, 3:] == 0)
    assert torch.all(z["x"][2, 2:] == 0) and torch.all(z["x"][1] != 0)


def test_noise_has_unit_variance_off_diagonal():
    big = StateDict({"x": torch.zeros(400, 6, 1), "adj": torch.zeros(400, 6, 6)})
    z = GraphSpace().noise_like(big, make_generator(1), {"mask": torch.ones(400, 6)})
    iu = torch.triu_indices(6, 6, 1)
    vals = z["adj"][:, iu[0], iu[1]].flatten()
    assert abs(float(vals.var()) - 1.0) < 0.05 and abs(float(vals.mean())) < 0.05


def test_project_symmetrises_and_masks():
    x = StateDict({"x": torch.ones(1, 3, 1), "adj": torch.tensor([[[5.0, 1.0, 2.0], [3.0, 5.0, 4.0], [6.0, 8.0, 5.0]]])})
    p = GraphSpace().project(x, None, {"mask": torch.tensor([[1.0, 1.0, 0.0]])})
    assert torch.equal(p["adj"], torch.tensor([[[0.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]))
    assert torch.equal(p["x"], torch.tensor([[[1.0], [1.0], [0.0]]]))


def test_reduce_is_masked_mean_over_both_fields():
    # 2 real nodes of 3: x contributes 2 elements (F=1), adj the 2 off-diagonal pairs
    err = StateDict({"x": torch.tensor([[[1.0], [3.0], [100.0]]]), "adj": torch.full((1, 3, 3), 2.0)})
    r = GraphSpace().reduce(err, {"mask": torch.tensor([[1.0, 1.0, 0.0]])})
    assert torch.allclose(r, torch.tensor([(1 + 3 + 2 + 2) / 4.0]))


def test_structure_masks_and_quantize():
    m = structure_masks(_state(1, 3), torch.tensor([[1.0, 1.0, 0.0]]))
    assert torch.equal(m["adj"][0], torch.tensor([[0.0, 1, 0], [1, 0, 0], [0, 0, 0]]))
    assert torch.equal(quantize_adj(torch.tensor([0.2, 0.5, 0.7])), torch.tensor([0.0, 0.0, 1.0]))


def test_missing_mask_is_a_clear_error():
    with pytest.raises(KeyError, match="mask"):
        GraphSpace().project(_state(), None, None)


def test_nonfinite_samples_are_counted():
    from domains.graphs.domain import nonfinite

    x = _state(3, 4)
    x["adj"][1, 0, 1] = float("nan")
    x["x"][2, 0, 0] = float("inf")
    assert nonfinite(x) == 2
