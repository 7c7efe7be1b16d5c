"""The two MNIST-1D classifiers of UDL §10.2.7: a small convolutional network against a large fully connected one.

The book compares, on the 4,000 training examples of MNIST-1D (40 samples per
sequence, ten classes), two networks trained identically (100,000 steps of SGD
without momentum, learning rate 0.01, batches of 100):

- the **convolutional network** (:class:`ConvNet1D`): three convolutional layers,
  each with 15 channels, kernel size 3 and stride 2 with no padding ("valid",
  §10.2.1), each followed by a ReLU, so the length shrinks 40 → 19 → 9 → 4
  (eqs. 10.3-10.4's weighted sum evaluated at every second position); the 4 x 15 = 60
  hidden units are flattened and a linear layer maps them to the ten class
  logits. 2,050 parameters.
- the **fully connected network** (:class:`FullyConnected1D`): hidden layers of
  285, 135 and 60 ReLU units (UDL eqs. 4.15-4.17). 59,065 parameters.

The convolutional network has about 1/29 of the parameters yet generalises far
better (book: about 17% test error against about 40%): its inductive bias, the
same small kernel applied at every position, suits sequences whose class does not
depend on where a pattern sits.

Both networks start from He initialisation (UDL §7.5): every weight is
drawn from a normal distribution with variance 2/fan_in (fan_in = C_in·k for a
convolution, D_in for a linear layer) and every bias is zero, which keeps the
variance of the pre-activations steady through ReLU layers. The layers are
torch's ``nn.Conv1d`` and ``nn.Linear`` (the fast kernels); udl.nn.conv writes the
same convolution out by hand.

Configs are frozen dataclasses; the defaults are the book's networks. They are trained
and measured by :mod:`udl.train.classifiers` (``train_classifier``, ``classification_error``).
"""

from __future__ import annotations

from dataclasses import dataclass
import torch
from torch import nn

from udl.nn.conv import conv_output_length
from udl.nn.init import he_init, initialised_from
from udl.validate import as_generator, check_int, check_sizes, check_tensor

__all__ = ["ConvNet1D", "ConvNet1DConfig", "FullyConnected1D", "FullyConnected1DConfig"]


# --------------------------------------------------------------------------- what both networks share
class _MNIST1DNet(nn.Module):
    """What the two classifiers share: a config (None: the book's), He initialisation, ReLU hidden layers.

    A subclass names its config class in ``config_class``.
    """

    config_class: type

    def _set_config(self, config, owner: str) -> None:
        """Store ``config`` (None: the book's network, the config class's defaults) after checking its class."""
        config = self.config_class() if config is None else config
        if not isinstance(config, self.config_class):
            raise TypeError(f"The 'config' parameter of {owner} must be a {self.config_class.__name__} or None. "
                            f"Got {config!r} instead.")
        self.config = config

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation (UDL §7.5) of every layer: weights N(0, 2/fan_in), biases 0."""
        he_init(self, generator)

    def _relu_layers(self, h: torch.Tensor, layers) -> list[torch.Tensor]:
        """h_{k+1} = ReLU[layer_k(h_k)] for each layer in turn: the hidden layers h_1, ..., h_K."""
        out = []
        for layer in layers:
            h = torch.relu(layer(h))  # (N, D_{k+1}) or (N, C, L_{k+1})
            out.append(h)
        return out


# --------------------------------------------------------------------------- convolutional network
@dataclass(frozen=True)
class ConvNet1DConfig:
    """The shape of a :class:`ConvNet1D`; the defaults are the book's network (§10.2.7)."""

    length: int = 40  # L, samples per input sequence (MNIST-1D: 40)
    channels: int = 15  # C, channels of every convolutional layer
    kernel_size: int = 3  # k
    stride: int = 2  # s; no padding ("valid")
    n_layers: int = 3  # convolutional layers, each followed by a ReLU
    n_classes: int = 10  # outputs of the final linear layer (logits)

    def __post_init__(self):
        owner = "ConvNet1DConfig"
        for name in ("channels", "kernel_size", "stride", "n_layers", "n_classes"):
            check_int(getattr(self, name), name, owner)
        check_int(self.length, "length", owner)
        n = self.length
        for _ in range(self.n_layers):
            if n < self.kernel_size:
                raise ValueError(f"The 'length' parameter of {owner} must leave at least one position after "
                                 f"{self.n_layers} valid convolutions of kernel {self.kernel_size}, stride "
                                 f"{self.stride}. Got {self.length!r} instead.")
            n = conv_output_length(n, self.kernel_size, self.stride)

    @classmethod
    def tiny(cls, **changes) -> ConvNet1DConfig:
        """For tests: 4 channels, two layers on sequences of 12 (158 parameters), with ``changes``."""
        return cls(**{**dict(length=12, channels=4, n_layers=2), **changes})

    def lengths(self) -> list[int]:
        """The sequence length entering each layer and leaving the last: [L, L_1, ..., L_K].

        Each "valid" convolution keeps L_i = ⌊(L_{i-1} - k) / s⌋ + 1 positions (UDL
        §10.2.1-10.2.3): the kernel fits at positions 0, s, 2s, ... inside the input.
        """
        out = [self.length]
        for _ in range(self.n_layers):
            out.append(conv_output_length(out[-1], self.kernel_size, self.stride))  # ⌊(L - k)/s⌋ + 1
        return out

    def parameter_count(self) -> int:
        """C·1·k + C (first layer) + (K-1)·(C·C·k + C) + (C·L_K)·n_classes + n_classes."""
        c, k = self.channels, self.kernel_size
        conv = (c * 1 * k + c) + (self.n_layers - 1) * (c * c * k + c)
        return conv + c * self.lengths()[-1] * self.n_classes + self.n_classes


class ConvNet1D(_MNIST1DNet):
    """The book's convolutional MNIST-1D classifier (UDL §10.2.7, fig. 10.7): 2,050 parameters.

    With the default config, layer by layer (output length ⌊(L - k)/s⌋ + 1, §10.2.3)::

        x  (N, 40) → (N, 1, 40)              one input channel
        h1 = ReLU[Conv1d(1 → 15, k=3, s=2)]   (N, 15, 19)   15·1·3 + 15  =   60 parameters
        h2 = ReLU[Conv1d(15 → 15, k=3, s=2)]  (N, 15, 9)    15·15·3 + 15 =  690
        h3 = ReLU[Conv1d(15 → 15, k=3, s=2)]  (N, 15, 4)    15·15·3 + 15 =  690
        f  = Linear(60 → 10)[flatten h3]      (N, 10)       60·10 + 10   =  610
                                                            total          2,050

    Each convolution is eqs. 10.3-10.4 with channels (§10.2.5): a weighted sum over the
    three nearest positions of every input channel, plus a bias. The output is the
    ten class logits; train with the multiclass cross-entropy (eq. 5.24).

    Args:
        config: the network's shape. Default: ``ConvNet1DConfig()``, the book's.
        generator: draws the He initialisation (weights N(0, 2/fan_in), biases 0): a
            ``torch.Generator`` or an int seed. Default: None, torch's global generator.

    Attributes:
        depth: the number of hidden layers (the convolutional layers), 3 by default.

    Shape:
        x: (N, L) → logits (N, n_classes).

    Example:
        >>> net = ConvNet1D(generator=0)
        >>> sum(p.numel() for p in net.parameters())
        2050
        >>> net(torch.zeros(5, 40)).shape
        torch.Size([5, 10])
    """

    config_class = ConvNet1DConfig

    def __init__(self, config: ConvNet1DConfig | None = None, *, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "ConvNet1D"
        self._set_config(config, owner)
        generator = as_generator(generator, owner)
        config = self.config
        c, k, s = config.channels, config.kernel_size, config.stride
        with initialised_from(self, generator, own_rule_only=True):  # He for every layer: nothing else drawn
            self.convs = nn.ModuleList(nn.Conv1d(1 if i == 0 else c, c, k, stride=s, padding=0)
                                       for i in range(config.n_layers))
            self.linear = nn.Linear(c * config.lengths()[-1], config.n_classes)

    @property
    def depth(self) -> int:
        """The number of hidden layers: the convolutional layers (the linear layer is the output)."""
        return self.config.n_layers

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The hidden layers H_1, ..., H_K for inputs x: K tensors of shape (N, C, L_i)."""
        check_tensor(x, "x", "ConvNet1D", shape=("N", self.config.length))
        return self._relu_layers(x[:, None, :], self.convs)  # (N, 1, L): one input channel -> (N, C, L_i) each

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The class logits; shape (N, L) → (N, n_classes)."""
        return self.linear(self.hidden(x)[-1].flatten(1))  # (N, C·L_K) -> (N, n_classes)


# --------------------------------------------------------------------------- fully connected network
@dataclass(frozen=True)
class FullyConnected1DConfig:
    """The widths of a :class:`FullyConnected1D`; the default is the book's network (§10.2.7)."""

    widths: tuple[int, ...] = (40, 285, 135, 60, 10)  # [D_i, D_1, ..., D_K, D_o]

    def __post_init__(self):
        object.__setattr__(self, "widths", check_sizes(self.widths, "widths", "FullyConnected1DConfig",
                                                       min_len=2))

    @classmethod
    def tiny(cls, **changes) -> FullyConnected1DConfig:
        """For tests: 12 inputs, hidden layers of 8 and 6, 10 outputs (228 parameters), with ``changes``."""
        return cls(**{**dict(widths=(12, 8, 6, 10)), **changes})

    def parameter_count(self) -> int:
        """Σ_k (D_k·D_{k+1} + D_{k+1}): each layer's weight matrix Ω_k and bias β_k."""
        return sum(a * b + b for a, b in zip(self.widths[:-1], self.widths[1:]))


class FullyConnected1D(_MNIST1DNet):
    """The book's fully connected MNIST-1D classifier (UDL §10.2.7): 59,065 parameters.

    A deep ReLU network (UDL eqs. 4.15-4.17), h_1 = a[β_0 + Ω_0 x],
    h_{k+1} = a[β_k + Ω_k h_k], f = β_K + Ω_K h_K. With the default widths::

        Linear(40 → 285)    40·285 + 285  = 11,685 parameters
        Linear(285 → 135)   285·135 + 135 = 38,610
        Linear(135 → 60)    135·60 + 60   =  8,160
        Linear(60 → 10)     60·10 + 10    =    610
                                     total  59,065

    Its hidden layers have as many units as the convolutional network's (15 channels
    x 19, 9 and 4 positions = 285, 135, 60); what differs is that every unit here is
    connected to every unit of the layer below, with its own weights.

    Args:
        config: the widths. Default: ``FullyConnected1DConfig()``, the book's.
        generator: draws the He initialisation (weights N(0, 2/fan_in), biases 0): a
            ``torch.Generator`` or an int seed. Default: None, torch's global generator.

    Attributes:
        depth: the number of hidden layers K, 3 by default.

    Shape:
        x: (N, D_i) → logits (N, D_o).

    Example:
        >>> net = FullyConnected1D(generator=0)
        >>> sum(p.numel() for p in net.parameters())
        59065
        >>> net(torch.zeros(5, 40)).shape
        torch.Size([5, 10])
    """

    config_class = FullyConnected1DConfig

    def __init__(self, config: FullyConnected1DConfig | None = None, *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "FullyConnected1D"
        self._set_config(config, owner)
        generator = as_generator(generator, owner)
        w = self.config.widths
        with initialised_from(self, generator, own_rule_only=True):  # He for every layer: nothing else drawn
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(w[:-1], w[1:]))  # Ω_k: (D_{k+1}, D_k)

    @property
    def depth(self) -> int:
        """K, the number of hidden layers."""
        return len(self.config.widths) - 2

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The hidden layers h_1, ..., h_K for inputs x: K tensors of shape (N, D_k)."""
        check_tensor(x, "x", "FullyConnected1D", shape=("N", self.config.widths[0]))
        return self._relu_layers(x, self.layers[:-1])  # (N, D_{k+1}) each

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The class logits; shape (N, D_i) → (N, D_o)."""
        hidden = self.hidden(x)
        return self.layers[-1](hidden[-1] if hidden else x)  # K = 0: a linear model
