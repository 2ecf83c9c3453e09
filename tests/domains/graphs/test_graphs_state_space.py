"""Graph-domain pieces of the state handling: quantisation, non-finite counting, the space the domain uses."""

import torch

from core.samplers.graph_space import GraphSpace
from core.types import StateDict
from domains.graphs.data import quantize_adj


def test_quantize_threshold():
    assert torch.equal(quantize_adj(torch.tensor([0.2, 0.5, 0.7])), torch.tensor([0.0, 0.0, 1.0]))


def test_domain_space_is_the_core_graph_space_on_adj():
    from domains.graphs.domain import GraphsConfig, GraphsDomain

    space = GraphsDomain().state_space(GraphsConfig(domain="graphs", dataset="community_small"))
    assert isinstance(space, GraphSpace) and space.pair_fields == ("adj",)


def test_nonfinite_samples_are_counted():
    from domains.graphs.domain import nonfinite

    x = StateDict({"x": torch.zeros(3, 4, 2), "adj": torch.zeros(3, 4, 4)})
    x["adj"][1, 0, 1] = float("nan")
    x["x"][2, 0, 0] = float("inf")
    assert nonfinite(x) == 2
