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

Configs are frozen dataclasses; the defaults are the book's networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from udl.nn.conv import conv_output_length
from udl.nn.init import he_init, initialised_from
from udl.validate import as_generator, check_float, check_instance, check_int, check_sizes, check_tensor

__all__ = ["ConvNet1D", "ConvNet1DConfig", "FullyConnected1D", "FullyConnected1DConfig", "TrainingCurves",
           "classification_error", "train_classifier"]


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


class ConvNet1D(nn.Module):
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

    def __init__(self, config: ConvNet1DConfig | None = None, *, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "ConvNet1D"
        config = ConvNet1DConfig() if config is None else config
        if not isinstance(config, ConvNet1DConfig):
            raise TypeError(f"The 'config' parameter of {owner} must be a ConvNet1DConfig or None. "
                            f"Got {config!r} instead.")
        generator = as_generator(generator, owner)
        self.config = config
        c, k, s = config.channels, config.kernel_size, config.stride
        with initialised_from(self, generator, own_rule_only=True):  # He for every layer: nothing else drawn
            self.convs = nn.ModuleList(nn.Conv1d(1 if i == 0 else c, c, k, stride=s, padding=0)
                                       for i in range(config.n_layers))
            self.linear = nn.Linear(c * config.lengths()[-1], config.n_classes)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation (UDL §7.5) of every layer: weights N(0, 2/fan_in), biases 0."""
        he_init(self, generator)

    @property
    def depth(self) -> int:
        """The number of hidden layers: the convolutional layers (the linear layer is the output)."""
        return self.config.n_layers

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The hidden layers H_1, ..., H_K for inputs x: K tensors of shape (N, C, L_i)."""
        check_tensor(x, "x", "ConvNet1D", shape=("N", self.config.length))
        h, out = x[:, None, :], []  # (N, 1, L): one input channel
        for conv in self.convs:
            h = torch.relu(conv(h))  # (N, C, L_i)
            out.append(h)
        return out

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


class FullyConnected1D(nn.Module):
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

    def __init__(self, config: FullyConnected1DConfig | None = None, *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "FullyConnected1D"
        config = FullyConnected1DConfig() if config is None else config
        if not isinstance(config, FullyConnected1DConfig):
            raise TypeError(f"The 'config' parameter of {owner} must be a FullyConnected1DConfig or None. "
                            f"Got {config!r} instead.")
        generator = as_generator(generator, owner)
        self.config = config
        w = config.widths
        with initialised_from(self, generator, own_rule_only=True):  # He for every layer: nothing else drawn
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(w[:-1], w[1:]))  # Ω_k: (D_{k+1}, D_k)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation (UDL §7.5) of every layer: weights N(0, 2/fan_in), biases 0."""
        he_init(self, generator)

    @property
    def depth(self) -> int:
        """K, the number of hidden layers."""
        return len(self.config.widths) - 2

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The hidden layers h_1, ..., h_K for inputs x: K tensors of shape (N, D_k)."""
        check_tensor(x, "x", "FullyConnected1D", shape=("N", self.config.widths[0]))
        h, out = x, []
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))  # (N, D_{k+1})
            out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The class logits; shape (N, D_i) → (N, D_o)."""
        hidden = self.hidden(x)
        return self.layers[-1](hidden[-1] if hidden else x)  # K = 0: a linear model


# --------------------------------------------------------------------------- training
class TrainingCurves(NamedTuple):
    """Errors recorded while training a classifier (fractions in [0, 1])."""

    steps: np.ndarray  # (T,) the steps after which the errors were measured (0: before training)
    train_error: np.ndarray  # (T,) error on the whole training set
    test_error: np.ndarray  # (T,) error on the whole test set
    losses: np.ndarray  # (S,) the training loss of every step


@torch.no_grad()
def classification_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 10_000) -> float:
    """The fraction of rows whose largest logit is not the label: mean[argmax_k f_k[x_i] ≠ y_i].

    Evaluates in eval mode (restoring the model's mode afterwards), on the model's device.

    Args:
        model: maps (N, ...) inputs to (N, K) logits.
        x: inputs, (N, ...).
        y: labels in 0..K-1, (N,).
        batch_size: rows per forward pass. Default: 10,000.

    Example:
        >>> classification_error(nn.Identity(), torch.tensor([[0.0, 1.0], [2.0, 1.0]]), torch.tensor([1, 1]))
        0.5
    """
    owner = "classification_error"
    check_instance(model, "model", owner, nn.Module)
    check_tensor(x, "x", owner)
    check_tensor(y, "y", owner)
    if y.dim() != 1 or x.dim() < 1 or len(x) != len(y) or len(y) == 0:
        raise ValueError(f"The 'y' parameter of {owner} must hold one label per row of x {tuple(x.shape)}. "
                         f"Got shape {tuple(y.shape)} instead.")
    check_int(batch_size, "batch_size", owner)
    params = list(model.parameters())
    device = params[0].device if params else x.device
    was_training = model.training
    model.eval()
    wrong = 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
        wrong += int((model(xb).argmax(1) != yb).sum())
    model.train(was_training)
    return wrong / len(y)


def train_classifier(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                     y_test: torch.Tensor, *, steps: int = 100_000, lr: float = 0.01, batch_size: int = 100,
                     eval_every: int = 1000, seed: int = 0, device: str | torch.device = "auto",
                     progress: bool | None = False,
                     on_eval: Callable[[int, float, float], None] | None = None) -> TrainingCurves:
    """Train a classifier as the book trains both MNIST-1D networks (§10.2.7) and record its errors.

    Plain SGD without momentum (eq. 6.3), φ ← φ - α ∂L/∂φ, on the mean multiclass
    cross-entropy (eq. 5.24) of each batch, through :func:`udl.train.fit` (batches
    drawn epoch by epoch without replacement, ``seed`` fixes their order). The
    training and test errors are measured on the whole sets before training and
    after every ``eval_every`` steps (and after the last).

    Args:
        model: maps (N, D) inputs to (N, K) logits; trained in place.
        x_train, y_train: training inputs (N, D) and labels (N,).
        x_test, y_test: test inputs (M, D) and labels (M,).
        steps: SGD steps. Default: 100,000 (the book's).
        lr: learning rate α. Default: 0.01 (the book's).
        batch_size: examples per step. Default: 100 (the book's).
        eval_every: steps between error measurements. Default: 1000.
        seed: the order of the batches. Default: 0.
        device: ``"auto"`` (CUDA when present; fit then computes in bf16 autocast),
            ``"cpu"`` or ``"cuda"``. Default: "auto".
        progress: show fit's progress bar (None: on a terminal). Default: False.
        on_eval: called as ``on_eval(step, train_error, test_error)`` at each measurement.

    Returns:
        :class:`TrainingCurves`.

    Example:
        >>> x, y = torch.randn(200, 40), torch.randint(0, 10, (200,))
        >>> curves = train_classifier(ConvNet1D(generator=0), x, y, x, y, steps=20, eval_every=10, device="cpu")
        >>> curves.steps.tolist()
        [0, 10, 20]
    """
    from udl.train import fit

    owner = "train_classifier"
    check_instance(model, "model", owner, nn.Module)
    for name, value in (("x_train", x_train), ("y_train", y_train), ("x_test", x_test), ("y_test", y_test)):
        check_tensor(value, name, owner)
    for split, (x, y) in (("train", (x_train, y_train)), ("test", (x_test, y_test))):
        if y.dim() != 1 or x.dim() < 2 or len(x) != len(y) or len(y) == 0:
            raise ValueError(f"The 'y_{split}' parameter of {owner} must hold one label per row of x_{split} "
                             f"{tuple(x.shape)}. Got shape {tuple(y.shape)} instead.")
    check_int(steps, "steps", owner)
    check_float(lr, "lr", owner, low=0, low_open=True)
    check_int(batch_size, "batch_size", owner)
    if batch_size > len(x_train):
        raise ValueError(f"The 'batch_size' parameter of {owner} must be at most the {len(x_train)} training "
                         f"examples. Got {batch_size!r} instead.")
    check_int(eval_every, "eval_every", owner)
    check_int(seed, "seed", owner, minimum=0)
    if on_eval is not None and not callable(on_eval):
        raise TypeError(f"The 'on_eval' parameter of {owner} must be a callable or None. Got {on_eval!r} instead.")

    from udl.devices import resolve_device

    dev = resolve_device(device, owner=owner)
    model.to(dev)
    x_train, y_train, x_test, y_test = (t.to(dev) for t in (x_train, y_train, x_test, y_test))
    record: list[tuple[int, float, float]] = []

    def measure(step: int, model: nn.Module) -> None:
        train_error = classification_error(model, x_train, y_train)
        test_error = classification_error(model, x_test, y_test)
        record.append((step, train_error, test_error))
        if on_eval is not None:
            on_eval(step, train_error, test_error)

    def callback(step: int, loss: float, model: nn.Module) -> None:
        if step % eval_every == 0 or step == steps:
            measure(step, model)

    measure(0, model)
    losses = fit(model, (x_train, y_train), nn.functional.cross_entropy,
                 torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0), steps=steps, batch_size=batch_size,
                 seed=seed, device=dev, callback=callback, progress=progress)
    steps_, train_, test_ = (np.array(v) for v in zip(*record))
    return TrainingCurves(steps=steps_.astype(np.int64), train_error=train_.astype(np.float64),
                          test_error=test_.astype(np.float64), losses=np.asarray(losses, dtype=np.float64))
