"""The deep neural network of UDL chapter 4, in the book's matrix notation.

K hidden layers of widths D_1..D_K between a Di-dimensional input and a
Do-dimensional output (UDL eqs. 4.15-4.17)::

    h_1     = a[β_0 + Ω_0 x]
    h_{k+1} = a[β_k + Ω_k h_k]          k = 1..K-1
    y       = β_K + Ω_K h_K

with a[.] the ReLU. The book numbers Ω_0 as the input layer's weights: Ω_k has shape
D_{k+1} x D_k and β_k has length D_{k+1} (with D_0 = Di, D_{K+1} = Do), which is
exactly the shape of ``nn.Linear(D_k, D_{k+1})``'s weight and bias, so ``omegas[k]``
and ``betas[k]`` are those tensors themselves. Batch-first: book h_k is a column,
ours a row (``h`` is N x D_k).

§4.1-4.2: composing two shallow networks gives a deep network with two hidden
layers; :func:`compose` chains modules, :func:`compose_as_deep` folds the output
layer of the first and the input layer of the second into one matrix Ω_1.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from udl.nn.init import fan_in_uniform_, initialised_from
from udl.nn.shallow import ShallowNetwork
from udl.validate import as_generator, check_input, check_sizes

__all__ = ["DeepNetwork", "compose", "compose_as_deep", "relu_mlp"]  # DeepPass: a return type


class DeepPass(NamedTuple):
    """The quantities of one forward pass through a :class:`DeepNetwork`."""

    y: torch.Tensor  # (..., Do) output
    pre: list[torch.Tensor]  # K pre-activations β_{k-1} + Ω_{k-1} h_{k-1}, each (..., D_k)
    act: list[torch.Tensor]  # K activations h_k = a[pre_k], each (..., D_k)


class DeepNetwork(nn.Module):
    """A fully connected ReLU network with weights Ω_k and biases β_k (UDL eqs. 4.15-4.17).

    Args:
        widths: [Di, D_1, ..., D_K, Do], at least two entries (K = 0 is a linear model).
        generator: draws the initial parameters, U(-1/√D_k, 1/√D_k) as ``nn.Linear``
            does: a ``torch.Generator`` or an int seed; None uses torch's global generator.

    Shape:
        x: (..., Di) -> y: (..., Do).

    Example::

        >>> net = DeepNetwork([3, 4, 2, 3, 2])            # fig. 4.6
        >>> [tuple(w.shape) for w in net.omegas]
        [(4, 3), (2, 4), (3, 2), (2, 3)]
        >>> sum(p.numel() for p in net.parameters())
        43
    """

    def __init__(self, widths: list[int], *, generator: torch.Generator | int | None = None):
        super().__init__()
        self.widths = check_sizes(widths, "widths", "DeepNetwork", min_len=2)
        generator = as_generator(generator, "DeepNetwork")
        with initialised_from(self, generator, own_rule_only=True):
            # layer k holds Ω_k (D_{k+1} x D_k) and β_k (D_{k+1},)
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(self.widths[:-1], self.widths[1:]))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every Ω_k, β_k from U(-1/√D_k, 1/√D_k), nn.Linear's distribution, drawn in float64."""
        for layer in self.layers:
            fan_in_uniform_((layer.weight, layer.bias), layer.in_features, generator)

    @property
    def depth(self) -> int:
        """K, the number of hidden layers."""
        return len(self.widths) - 2

    @property
    def omegas(self) -> list[nn.Parameter]:
        """[Ω_0, ..., Ω_K]; Ω_k has shape D_{k+1} x D_k."""
        return [layer.weight for layer in self.layers]

    @property
    def betas(self) -> list[nn.Parameter]:
        """[β_0, ..., β_K]; β_k has length D_{k+1}."""
        return [layer.bias for layer in self.layers]

    @staticmethod
    def parameter_count(widths: list[int]) -> int:
        """Σ_k (D_k + 1)·D_{k+1}: each layer's weights plus its biases."""
        widths = check_sizes(widths, "widths", "DeepNetwork.parameter_count", min_len=2)
        return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))

    def forward_with_activations(self, x: torch.Tensor) -> DeepPass:
        """The output with every hidden layer's pre-activations and activations.

        Args:
            x: inputs ``(..., Di)`` in the parameters' dtype (any float dtype under ``torch.autocast``).
        """
        omegas, betas = self.omegas, self.betas
        dtype = omegas[0].dtype
        if not (isinstance(x, torch.Tensor) and x.dim() >= 1 and x.shape[-1] == self.widths[0] and x.dtype == dtype):
            check_input(x, "x", "DeepNetwork.forward", shape=(..., self.widths[0]), dtype=dtype)
        h = x
        pres, acts = [], []
        for omega, beta in zip(omegas[:-1], betas[:-1]):
            pre = beta + h @ omega.T  # (..., D_k) @ (D_k, D_{k+1}) -> (..., D_{k+1})  (eqs. 4.15-4.16)
            h = torch.relu(pre)
            pres.append(pre)
            acts.append(h)
        y = betas[-1] + h @ omegas[-1].T  # (..., D_K) @ (D_K, Do) -> (..., Do)  (eq. 4.17)
        return DeepPass(y, pres, acts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_activations(x).y

    def extra_repr(self) -> str:
        return f"widths={list(self.widths)}"


def _linear_layers(net: nn.Module, name: str, owner: str) -> list[nn.Linear]:
    if isinstance(net, ShallowNetwork):
        return [net.hidden, net.output]
    if isinstance(net, DeepNetwork):
        return list(net.layers)
    raise TypeError(f"The {name!r} parameter of {owner} must be a ShallowNetwork or DeepNetwork. "
                    f"Got {type(net).__name__} instead.")


def _io_widths(net: nn.Module) -> tuple[int | None, int | None]:
    if isinstance(net, ShallowNetwork):
        return net.d_in, net.d_out
    if isinstance(net, DeepNetwork):
        return net.widths[0], net.widths[-1]
    return None, None  # any other module: widths unknown, checked when it runs


def compose(net1: nn.Module, net2: nn.Module) -> nn.Sequential:
    """The composition x -> net2(net1(x)) of two networks (§4.1, fig. 4.1).

    The output of ``net1`` is the input of ``net2``; no activation sits between them.

    Args:
        net1, net2: ``nn.Module`` instances with matching output/input widths.

    Example::

        >>> both = compose(ShallowNetwork(1, 3, 1), ShallowNetwork(1, 3, 1))
    """
    for name, net in (("net1", net1), ("net2", net2)):
        if not isinstance(net, nn.Module):
            raise TypeError(f"The {name!r} parameter of compose must be an nn.Module. "
                            f"Got {type(net).__name__} instead.")
    out1, in2 = _io_widths(net1)[1], _io_widths(net2)[0]
    if out1 is not None and in2 is not None and out1 != in2:
        raise ValueError(f"The 'net2' parameter of compose must take {out1} inputs (net1's outputs). "
                         f"Got a network with {in2} inputs instead.")
    return nn.Sequential(net1, net2)


def compose_as_deep(net1: nn.Module, net2: nn.Module) -> DeepNetwork:
    """The composition net2(net1(x)) rewritten as one :class:`DeepNetwork` (§4.2).

    The output layer (Ω, β) of ``net1`` feeds straight into the input layer (Ω', β')
    of ``net2`` with no ReLU between, so the two affine maps merge into one:

        β' + Ω'(β + Ω h) = (β' + Ω'β) + (Ω'Ω) h

    For two shallow networks this is the book's deep network with two hidden
    layers whose middle weight matrix is Ω'Ω = θ'φ, a matrix of rank one for 1D
    outputs (§4.2).

    Args:
        net1, net2: ``ShallowNetwork`` or ``DeepNetwork``; net1's Do must equal net2's Di.

    Returns:
        A ``DeepNetwork`` with widths net1's hidden widths + net2's hidden widths,
        computing the same function (dtype of ``net1``).
    """
    layers1 = _linear_layers(net1, "net1", "compose_as_deep")
    layers2 = _linear_layers(net2, "net2", "compose_as_deep")
    last, first = layers1[-1], layers2[0]
    if last.out_features != first.in_features:
        raise ValueError(f"The 'net2' parameter of compose_as_deep must take {last.out_features} inputs "
                         f"(net1's outputs). Got a network with {first.in_features} inputs instead.")
    widths = [layers1[0].in_features, *(l.out_features for l in layers1[:-1]),
              *(l.out_features for l in layers2)]
    deep = DeepNetwork(widths, generator=0).to(last.weight.dtype)  # every value is set below
    merged_omega = first.weight @ last.weight  # (D', Do) @ (Do, D) -> (D', D)
    merged_beta = first.bias + first.weight @ last.bias  # (D',) + (D', Do) @ (Do,)
    sources = [(l.weight, l.bias) for l in layers1[:-1]] + [(merged_omega, merged_beta)] + \
              [(l.weight, l.bias) for l in layers2[1:]]
    with torch.no_grad():
        for layer, (omega, beta) in zip(deep.layers, sources):
            layer.weight.copy_(omega)
            layer.bias.copy_(beta)
    return deep


def relu_mlp(widths) -> nn.Sequential:
    """``nn.Linear`` layers through ``widths`` with a ReLU between consecutive ones and none after the last.

    The plain ``nn.Sequential`` form of eqs. 4.15-4.17 that autoencoders use for their encoder
    and decoder (:class:`udl.models.autoencoder.Autoencoder`, :class:`udl.models.vae.VAE`).
    Weights get ``nn.Linear``'s initialisation from torch's global generator: build it
    under :func:`udl.nn.init.initialised_from` to draw them from a given generator.

    Args:
        widths: the layer sizes D_0, D_1, ..., D_{K+1}, at least two positive ints.

    Example::

        >>> relu_mlp((64, 32, 2))
        Sequential(
          (0): Linear(in_features=64, out_features=32, bias=True)
          (1): ReLU()
          (2): Linear(in_features=32, out_features=2, bias=True)
        )
    """
    widths = check_sizes(widths, "widths", "relu_mlp", min_len=2)
    layers: list[nn.Module] = []
    for i, (d_from, d_to) in enumerate(zip(widths[:-1], widths[1:])):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(d_from, d_to))
    return nn.Sequential(*layers)
