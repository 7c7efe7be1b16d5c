"""Training a classifier as the book trains the MNIST-1D networks of §10.2.7, with its error curves.

The recipe (UDL §10.2.7, for both :class:`~udl.models.mnist1d_nets.ConvNet1D` and
:class:`~udl.models.mnist1d_nets.FullyConnected1D`):

1. **the loss**: the mean multiclass cross-entropy (UDL eq. 5.24) of each batch;
2. **the optimiser**: plain SGD without momentum (eq. 6.3), φ ← φ - α ∂L/∂φ
   (the book: α = 0.01, batches of 100, 100,000 steps);
3. **the batches**: drawn epoch by epoch without replacement through
   :func:`udl.train.fit`, their order a function of ``seed``;
4. **the measurements**: the error :func:`classification_error` on the whole training
   and test sets, before training and every ``eval_every`` steps (:class:`TrainingCurves`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from udl.devices import resolve_device
from udl.train.loop import fit
from udl.validate import check_callable, check_float, check_instance, check_int, check_tensor

__all__ = ["TrainingCurves", "classification_error", "train_classifier"]


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
        >>> from udl.models.mnist1d_nets import ConvNet1D
        >>> curves = train_classifier(ConvNet1D(generator=0), x, y, x, y, steps=20, eval_every=10, device="cpu")
        >>> curves.steps.tolist()
        [0, 10, 20]
    """
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
    check_callable(on_eval, "on_eval", owner, optional=True)

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
