"""Weight initialisation (UDL §7.5).

He initialisation draws every weight of a layer that feeds a ReLU from a normal
distribution with variance σ² = 2 / D_h, D_h being the layer's fan-in (the inputs each
output sums over: C_in · kernel size for a convolution), and sets the biases to zero::

    ω ~ N(0, 2 / D_h),    β = 0

so that the mean square of the pre-activations is the same in every layer of a deep
ReLU network (§7.5.1): the ReLU halves it and the factor 2 restores it.

udl's one way to make initial weights reproducible: every constructor takes a
keyword-only ``generator=`` (a ``torch.Generator`` or an int seed, see
:func:`udl.validate.as_generator`) and draws every initial value from it, never from
torch's global generator. torch's layers draw their default initialisation from the
global generator as they are built, so a model builds its layers inside
:func:`initialised_from`, which builds them on the meta device (nothing is drawn) and
then draws every parameter with :func:`init_parameters`: torch's default rule for
each torch layer (torch's own initialisers, given the generator), then the model's own
rule, its ``reset_parameters(generator)`` (He, zeros, ...)::

    class Net(nn.Module):
        def __init__(self, *, generator=None):
            super().__init__()
            generator = as_generator(generator, "Net")
            with initialised_from(self, generator):
                self.conv = nn.Conv2d(3, 8, 3)
                self.fc = nn.Linear(8, 10)

        def reset_parameters(self, generator=None):  # the model's own rule, run last
            he_init(self.conv, generator)

With ``generator=None`` the numbers come from torch's global generator: ``generator=s``
gives the numbers that ``torch.manual_seed(s)`` followed by the plain build would give.
A model whose own rule sets every parameter (GPT-2's initialisation, udl's
float64-drawn :func:`fan_in_uniform_`) passes ``own_rule_only=True`` and draws nothing else.
"""

from __future__ import annotations

import contextlib
import inspect
import math

import torch
from torch import nn

from udl.validate import as_generator

__all__ = ["he_init", "reset_norms", "fan_in_uniform_", "init_parameters", "initialised_from"]

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)  # nothing random: γ = 1, δ = 0

_HE_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def he_init(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """He-initialise, in place, every convolution and linear layer in ``module``.

    Weights ~ N(0, 2 / fan-in) (UDL §7.5), biases 0. Layers on the meta device have
    no values and are skipped; other layers (batch norm, ...) keep their own values.

    Args:
        module: the layer or network; ``module.modules()`` is visited, so ``module``
            itself is initialised when it is a convolution or a linear layer.
        generator: the random numbers of the weights. Default: torch's global one.

    Example::

        >>> layer = nn.Linear(512, 512)
        >>> he_init(layer, torch.Generator().manual_seed(0))
        >>> round(layer.weight.var().item() * 512 / 2, 1), layer.bias.abs().max().item()
        (1.0, 0.0)
    """
    generator = as_generator(generator, "he_init")
    for m in module.modules():
        if isinstance(m, _HE_LAYERS) and not m.weight.is_meta:
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)  # σ² = 2 / fan-in
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@torch.no_grad()
def reset_norms(module: nn.Module) -> None:
    """Reset every normalisation layer in ``module``: γ = 1, δ = 0, fresh running statistics (nothing random).

    With :func:`he_init` it sets every parameter of a block of convolutions and
    normalisations, the rule of udl's ResNet and DenseNet blocks.

    Example::

        >>> bn = nn.BatchNorm1d(2)
        >>> _ = bn.weight.data.fill_(3.0)
        >>> reset_norms(nn.Sequential(bn))
        >>> bn.weight.tolist()
        [1.0, 1.0]
    """
    for m in module.modules():
        if isinstance(m, _NORMS) and not any(t.is_meta for t in m.parameters()):
            m.reset_parameters()


@torch.no_grad()
def fan_in_uniform_(tensors, fan_in: int, generator: torch.Generator | None = None) -> None:
    """Draw each tensor, in place, from U(-1/√fan_in, 1/√fan_in), the distribution of torch's default.

    (torch's ``kaiming_uniform_`` with a = √5 gives the same bound for the weights, and
    torch draws the biases with it.) Unlike torch's initialisers the numbers are drawn in
    float64 on the generator's device, then copied, so a generator gives the same values
    whatever the parameters' dtype and device: udl's book networks (shallow, deep,
    convolutional, fixed-joint) use it. Tensors that are None or on the meta device are
    skipped.

    Args:
        tensors: the tensors (weights and biases), in the order they are drawn.
        fan_in: the inputs each output sums over (D_in; C_in·Πk for a convolution).
        generator: the random numbers. Default: torch's global one.

    Example::

        >>> w = torch.empty(4, 9)
        >>> fan_in_uniform_([w], 9, torch.Generator().manual_seed(0))
        >>> bool(w.abs().max() <= 1 / 3)
        True
    """
    uniform_(tensors, 1.0 / math.sqrt(fan_in), generator)


@torch.no_grad()
def uniform_(tensors, bound: float, generator: torch.Generator | None = None) -> None:
    """Draw each tensor, in place, from U(-bound, bound), in float64 on the generator's device, then copy.

    The draw behind :func:`fan_in_uniform_` (bound 1/√fan_in) and Glorot's initialisation of the
    graph layers (bound √(6 / (fan_in + fan_out))): a generator gives the same values whatever the
    parameters' dtype and device. Tensors that are None or on the meta device are skipped.

    Args:
        tensors: the tensors, in the order they are drawn.
        bound: the half-width of the interval, > 0.
        generator: the random numbers. Default: torch's global one.
    """
    device = generator.device if generator is not None else "cpu"
    for t in tensors:
        if t is not None and not t.is_meta:
            u = torch.rand(t.shape, generator=generator, dtype=torch.float64, device=device)  # U[0, 1)
            t.copy_(u.mul(2).sub(1).mul(bound))  # U[-bound, bound)


_DEFAULT_UNIFORM = (nn.Linear, nn.modules.conv._ConvNd)  # convolutions, transposed ones too


def _own_rule(module: nn.Module):
    """``module.reset_parameters`` if it takes a generator (udl's modules), else None."""
    reset = getattr(module, "reset_parameters", None)
    if reset is None:
        return None
    return reset if "generator" in inspect.signature(reset).parameters else None


@torch.no_grad()
def init_parameters(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """Draw every parameter (and reset every buffer) of ``module`` from ``generator``, as it is built.

    Sub-modules are visited innermost first, so that a block's own rule overrides the
    default of its layers, each module once:

    - ``nn.Linear`` and convolutions (transposed too): torch's default, its own
      ``kaiming_uniform_(a=√5)`` for the weights and U(-1/√fan_in, 1/√fan_in) for the
      biases, fan-in = ``weight[0].numel()``;
    - ``nn.Embedding``: N(0, 1), torch's default;
    - torch's normalisation layers: γ = 1, δ = 0, running statistics reset;
    - a module with a ``reset_parameters(generator)`` method (udl's models and
      layers): that method, its own rule (He initialisation, zero heads, ...).

    Args:
        module: the network; it must not be on the meta device.
        generator: the random numbers, a ``torch.Generator`` or an int seed. Default:
            torch's global one.

    Raises:
        TypeError: a sub-module holds parameters or buffers of its own and follows none
            of these rules (its values would be left undefined).

    Example::

        >>> net = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3))
        >>> init_parameters(net, torch.Generator().manual_seed(0))
        >>> net[1].weight.tolist()
        [1.0, 1.0, 1.0]
    """
    generator = as_generator(generator, "init_parameters")
    seen: set[int] = set()

    def visit(m: nn.Module) -> None:
        if id(m) in seen:
            return
        seen.add(id(m))
        for child in m.children():
            visit(child)
        own = _own_rule(m)
        if isinstance(m, _DEFAULT_UNIFORM):  # as torch's reset_parameters, with the generator
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                bound = 1.0 / math.sqrt(m.weight[0].numel())
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, generator=generator)
            if m.padding_idx is not None:
                m.weight[m.padding_idx].zero_()
        elif isinstance(m, _NORMS):
            m.reset_parameters()
        elif own is None and (next(m.parameters(recurse=False), None) is not None
                              or next(m.buffers(recurse=False), None) is not None):
            raise TypeError(f"The 'module' parameter of init_parameters must hold layers with a known initialisation. "
                            f"Got {type(m).__name__}, which has its own parameters and no "
                            f"reset_parameters(generator), instead.")
        if own is not None:
            own(generator=generator)

    visit(module)


@contextlib.contextmanager
def initialised_from(module: nn.Module, generator: torch.Generator | None, *, own_rule_only: bool = False):
    """Build ``module``'s layers inside this block; leaving it draws them all from ``generator``.

    Inside, the layers are built on the meta device, so torch's layer constructors draw
    nothing from torch's global generator. On leaving, what was built inside is moved
    to the default device, its values undefined, and :func:`init_parameters` draws every
    parameter from ``generator``; sub-modules that ``module`` already held (a trained
    encoder under a new head) keep their storage, and with ``own_rule_only`` their values. Under ``torch.device("meta")`` (counting parameters without
    allocating them), or inside an enclosing ``initialised_from`` block, ``module``
    stays on the meta device and nothing is drawn: the outermost block draws once for
    the whole network.

    Args:
        module: the module being built (``self`` in a constructor).
        generator: the random numbers, a ``torch.Generator`` or an int seed; None draws
            from torch's global generator.
        own_rule_only: run only ``module.reset_parameters(generator)``, for a model
            whose own rule sets every parameter (GPT-2's and BERT's initialisations):
            drawing the layers' defaults first would only move the generator's stream.
            Default False.

    Example::

        >>> net = nn.Module()
        >>> with initialised_from(net, torch.Generator().manual_seed(0)):
        ...     net.fc = nn.Linear(3, 2)
        >>> net.fc.weight.device.type
        'cpu'
    """
    target = torch.get_default_device()
    with torch.device("meta"):
        yield
    if target.type != "meta":
        for m in module.modules():  # only what the block built: a module held before keeps its tensors
            if any(t.is_meta for t in (*m.parameters(recurse=False), *m.buffers(recurse=False))):
                m.to_empty(device=target, recurse=False)
        if own_rule_only:
            module.reset_parameters(generator=generator)
        else:
            init_parameters(module, generator)

