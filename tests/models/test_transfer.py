"""Transfer learning: a new output layer on copied hidden layers."""

import pytest
import torch

from udl.models.transfer import replace_head
from udl.nn.deep import DeepNetwork


def test_replace_head_copies_the_hidden_layers_and_draws_a_new_output_layer():
    source = DeepNetwork([6, 8, 4, 5], generator=torch.Generator().manual_seed(0))
    target = replace_head(source, 3, generator=torch.Generator().manual_seed(1))
    assert target.widths == (6, 8, 4, 3) and target is not source
    x = torch.randn(10, 6)
    torch.testing.assert_close(target.forward_with_activations(x).act, source.forward_with_activations(x).act)
    reference = torch.nn.Linear(4, 3)  # the new layer is PyTorch's default init: U(±1/√4) = U(±0.5)
    assert target.layers[-1].weight.shape == reference.weight.shape
    assert target.layers[-1].weight.abs().max() <= 0.5 and target.layers[-1].bias.abs().max() <= 0.5
    again = replace_head(source, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(again.layers[-1].weight, target.layers[-1].weight)  # seeded


def test_replace_head_leaves_the_source_alone_and_copies_are_independent():
    source = DeepNetwork([3, 4, 2], generator=torch.Generator().manual_seed(0))
    before = [p.clone() for p in source.parameters()]
    target = replace_head(source, 2)
    with torch.no_grad():
        target.layers[0].weight.add_(1.0)
    for a, b in zip(source.parameters(), before):
        assert torch.equal(a, b)


def test_replace_head_refuses_what_it_cannot_do():
    with pytest.raises(TypeError, match="'net'"):
        replace_head(torch.nn.Linear(3, 2), 2)
    with pytest.raises(ValueError, match="'net'"):
        replace_head(DeepNetwork([3, 2]), 2)  # no hidden layer to keep
    with pytest.raises(ValueError, match="'d_out'"):
        replace_head(DeepNetwork([3, 4, 2]), 0)
    with pytest.raises(TypeError, match="'generator'"):
        replace_head(DeepNetwork([3, 4, 2]), 2, generator=1.5)
