"""udl.nn.init: He initialisation's variance 2 / fan-in, zero biases, the generator; building from a generator."""

import math

import pytest
import torch
from torch import nn

from udl.nn.init import fan_in_uniform_, he_init, init_parameters, initialised_from, reset_norms
from udl.nn.normalization import BatchNorm, LayerNorm


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_he_variance_is_two_over_fan_in_for_linear_and_conv_layers():
    net = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Conv2d(16, 200, 5), nn.BatchNorm2d(200))
    he_init(net, gen(0))
    linear, conv, bn = net[0], net[2], net[3]
    assert abs(linear.weight.var().item() / (2 / 400) - 1) < 0.02  # fan-in D_h = 400
    assert abs(conv.weight.var().item() / (2 / (16 * 5 * 5)) - 1) < 0.02  # fan-in C_in·k² = 400
    assert abs(linear.weight.mean().item()) < 3 * math.sqrt(2 / 400 / linear.weight.numel())
    assert linear.bias.abs().max() == 0 and conv.bias.abs().max() == 0
    assert bn.weight.tolist() == [1.0] * 200  # other layers keep their values


def test_he_init_keeps_the_mean_square_through_relu_layers():
    widths = [256] * 11
    net = nn.Sequential(*[m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), nn.ReLU())])
    he_init(net, gen(1))
    x = torch.randn(2000, 256, generator=gen(2))
    # each ReLU halves E[h²] and each He layer (σ² = 2 / D) doubles it back: E[h_10²] = E[x²]
    ratio = (net(x).square().mean() / x.square().mean()).item()
    assert abs(ratio - 1) < 0.15


def test_the_generator_decides_the_weights_and_leaves_the_global_one_alone():
    a, again, other = nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 3)
    state = torch.get_rng_state()
    he_init(a, gen(5))
    assert torch.equal(state, torch.get_rng_state())
    he_init(again, gen(5))
    he_init(other, gen(6))
    assert torch.equal(a.weight, again.weight) and not torch.equal(a.weight, other.weight)


def test_meta_layers_are_skipped():
    layer = nn.Linear(3, 3, device="meta")
    he_init(layer)
    assert layer.weight.is_meta


# --------------------------------------------------------------------------- building from a generator
def test_fan_in_uniform_has_torchs_bound_and_variance():
    w, b = torch.empty(300, 100), torch.empty(300)
    fan_in_uniform_((w, b), 100, gen(0))
    bound = 1 / math.sqrt(100)  # torch's kaiming_uniform_(a=√5) bound for the weights, and its bias bound
    assert w.abs().max() <= bound and b.abs().max() <= bound
    assert abs(w.var().item() / (bound ** 2 / 3) - 1) < 0.02  # Var U(-b, b) = b²/3
    again = torch.empty(300, 100, dtype=torch.float64)
    fan_in_uniform_((again,), 100, gen(0))
    assert torch.equal(w, again.float())  # drawn in float64: the same numbers in any dtype


class _Block(nn.Module):
    """A torch layer and a norm, with an own rule that He-initialises the layer."""

    def __init__(self, *, generator=None):
        super().__init__()
        with initialised_from(self, generator):
            self.conv = nn.Conv2d(3, 8, 3)
            self.norm = nn.BatchNorm2d(8)

    def reset_parameters(self, generator=None):
        he_init(self.conv, generator)


def test_initialised_from_draws_everything_from_the_generator_only():
    state = torch.get_rng_state()
    a, again, other = _Block(generator=gen(1)), _Block(generator=gen(1)), _Block(generator=gen(2))
    assert torch.equal(state, torch.get_rng_state())  # torch's constructors drew nothing
    assert all(torch.equal(a.state_dict()[k], again.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.conv.weight, other.conv.weight)
    assert a.conv.bias.abs().max() == 0  # the block's own rule (He) ran after the default
    assert abs(a.conv.weight.std().item() / math.sqrt(2 / 27) - 1) < 0.15
    assert a.norm.weight.tolist() == [1.0] * 8 and a.norm.running_var.tolist() == [1.0] * 8
    torch.manual_seed(1)
    implicit = _Block()  # None: the same numbers from torch's global generator
    assert torch.equal(implicit.conv.weight, a.conv.weight)


def test_initialised_from_on_the_meta_device_draws_nothing():
    state = torch.get_rng_state()
    with torch.device("meta"):
        block = _Block(generator=gen(1))
    assert block.conv.weight.is_meta and torch.equal(state, torch.get_rng_state())
    assert sum(p.numel() for p in block.parameters()) == 8 * 27 + 8 + 2 * 8


def test_own_rule_only_draws_nothing_but_the_modules_rule():
    class Whole(nn.Module):
        """Its own rule sets every parameter, as GPT-2's initialisation does."""

        def __init__(self, *, generator=None, own_rule_only=True):
            super().__init__()
            with initialised_from(self, generator, own_rule_only=own_rule_only):
                self.fc = nn.Linear(4, 3)
                self.norm = nn.LayerNorm(3)

        def reset_parameters(self, generator=None):
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.randn(p.shape, generator=generator))

    net, defaults_first = Whole(generator=gen(3)), Whole(generator=gen(3), own_rule_only=False)
    g = gen(3)
    for p in net.parameters():  # the rule's draws are the generator's first numbers
        assert torch.equal(p, torch.randn(p.shape, generator=g))
    assert not torch.equal(net.fc.weight, defaults_first.fc.weight)  # the defaults would have moved the stream


def test_init_parameters_refuses_layers_it_cannot_initialise():
    with pytest.raises(TypeError, match=r"^The 'module' parameter of init_parameters must hold layers with a known "
                                        r"initialisation\. Got PReLU, .+ instead\.$"):
        init_parameters(nn.Sequential(nn.Linear(2, 2), nn.PReLU()), gen(0))


def test_udls_own_normalisation_layers_are_reset_by_their_rule():
    net = nn.Sequential(BatchNorm(3), LayerNorm(3))
    with torch.no_grad():
        for t in (*net.parameters(), *net.buffers()):
            t.fill_(7)
    init_parameters(net, gen(0))
    bn, ln = net
    assert bn.weight.tolist() == ln.weight.tolist() == [1.0] * 3 and bn.bias.abs().max() == ln.bias.abs().max() == 0
    assert bn.running_mean.tolist() == [0.0] * 3 and bn.running_var.tolist() == [1.0] * 3
    assert bn.num_batches_tracked.item() == 0


def test_reset_norms_resets_the_normalisation_layers_only():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.LayerNorm(2))
    with torch.no_grad():
        for t in (*net.parameters(), *net.buffers()):
            t.fill_(7)
    reset_norms(net)
    linear, bn, ln = net
    assert bn.weight.tolist() == ln.weight.tolist() == [1.0, 1.0] and bn.running_var.tolist() == [1.0, 1.0]
    assert bn.bias.tolist() == ln.bias.tolist() == bn.running_mean.tolist() == [0.0, 0.0]
    assert linear.weight.unique().tolist() == [7.0]  # not a normalisation layer: kept


class _Head(nn.Module):
    """A new layer around a module built before it, drawn by its own rule."""

    def __init__(self, body: nn.Module, generator):
        super().__init__()
        self.body = body
        with initialised_from(self, generator, own_rule_only=True):
            self.out = nn.Linear(4, 2)

    def reset_parameters(self, generator=None):
        nn.init.normal_(self.out.weight, generator=generator)
        nn.init.zeros_(self.out.bias)


def test_a_module_held_before_the_block_keeps_its_weights():
    # a new head around a trained body: only what the block builds is materialised and drawn
    body = nn.Linear(3, 4)
    with torch.no_grad():
        body.weight.fill_(0.5)
    storage = body.weight.data_ptr()
    head = _Head(body, torch.Generator().manual_seed(0))
    assert head.body is body and body.weight.data_ptr() == storage and torch.all(body.weight == 0.5)
    expected = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(head.out.weight, expected) and torch.all(head.out.bias == 0)
