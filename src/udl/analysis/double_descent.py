"""Double descent: test error against model capacity, past the interpolation threshold (UDL §8.4).

A classifier with two hidden layers of equal width h is trained without any
regularization until it fits its (noisy) training labels as well as it can, for a
sweep of widths. Classically, test error falls and then rises as capacity grows
(bias-variance trade-off, §8.3). Beyond the width where the network can first fit
every training label -- roughly where the number of parameters equals the number
of training examples -- the test error falls a second time (fig. 8.10). Label noise
makes the peak at the threshold stand out: there the network is just able to
memorise the wrong labels, and does so with a wild function.

For inputs of dimension D_i, K hidden layers of width h and D_o outputs the number
of parameters is (UDL §8.4, for D_i = 40, K = 2, D_o = 10: 40h+h + h²+h + 10h+10)::

    P(h) = (D_i + 1) h + (K - 1)(h + 1) h + (h + 1) D_o
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from udl.validate import check_float, check_int, check_sizes

__all__ = ["double_descent", "interpolation_width", "mlp_parameter_count",
           "randomize_labels"]  # DoubleDescent: a return type


def mlp_parameter_count(d_in: int, width: int, d_out: int, layers: int = 2) -> int:
    """P(h), the weights and biases of a ReLU network with ``layers`` hidden layers of width h.

    P(h) = (D_i + 1) h + (K - 1)(h + 1) h + (h + 1) D_o; for the book's MNIST-1D
    network (D_i = 40, K = 2, D_o = 10) that is 40h+h + h²+h + 10h+10 (UDL §8.4).

    Args:
        d_in: input dimension D_i.
        width: hidden width h of every hidden layer.
        d_out: output dimension D_o.
        layers: number K of hidden layers, at least 1. Default: 2.

    Example::

        >>> mlp_parameter_count(40, 100, 10)
        15210
    """
    owner = "mlp_parameter_count"
    for name, value in (("d_in", d_in), ("width", width), ("d_out", d_out), ("layers", layers)):
        check_int(value, name, owner)
    return (d_in + 1) * width + (layers - 1) * (width + 1) * width + (width + 1) * d_out


def interpolation_width(n_train: int, d_in: int, d_out: int, layers: int = 2) -> float:
    """The (real) width h* at which P(h*) = N, the number of training examples.

    Solves (K - 1) h² + (D_i + 1 + K - 1 + D_o) h + D_o - N = 0 for its positive root;
    for N = 10,000 and the book's network h* ≈ 77.3, for N = 4,000 h* ≈ 42.3.

    Args:
        n_train: number of training examples N (more than D_o).
        d_in, d_out, layers: as :func:`mlp_parameter_count`.

    Example::

        >>> round(interpolation_width(4000, 40, 10), 2)
        42.31
    """
    owner = "interpolation_width"
    for name, value in (("d_in", d_in), ("d_out", d_out), ("layers", layers)):
        check_int(value, name, owner)
    check_int(n_train, "n_train", owner, minimum=d_out + 1)
    a, b, c = layers - 1, d_in + 1 + (layers - 1) + d_out, d_out - n_train  # a h² + b h + c = 0
    if a == 0:
        return -c / b
    return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)


def randomize_labels(y, fraction: float, n_classes: int, seed: int = 0):
    """Replace a ``fraction`` of class labels by a different class chosen uniformly at random.

    Exactly round(fraction · N) labels, chosen without replacement, each move to one
    of the other n_classes - 1 classes with equal probability; the rest are kept. The
    book randomises 15% of the MNIST-1D training labels for fig. 8.10.

    Args:
        y: labels in 0..n_classes-1, a 1D NumPy array or torch tensor (not changed).
        fraction: the share of labels to corrupt, in [0, 1].
        n_classes: number of classes, at least 2.
        seed: seeds the choice of labels and of their new classes. Default: 0.

    Returns:
        The new labels, of the same kind, dtype and device as ``y``.

    Shape:
        y: (N,) -> (N,).

    Example::

        >>> y = np.zeros(10, dtype=np.int64)
        >>> int((randomize_labels(y, 0.3, 10, seed=0) != y).sum())
        3
    """
    owner = "randomize_labels"
    check_float(fraction, "fraction", owner, low=0.0, high=1.0)
    check_int(n_classes, "n_classes", owner, minimum=2)
    check_int(seed, "seed", owner, minimum=0)
    is_tensor = isinstance(y, torch.Tensor)
    if not is_tensor and not isinstance(y, np.ndarray):
        raise TypeError(f"The 'y' parameter of {owner} must be a numpy array or torch tensor. "
                        f"Got {type(y).__name__} instead.")
    labels = y.detach().cpu().numpy() if is_tensor else y
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= n_classes)) \
            or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"The 'y' parameter of {owner} must be a 1D array of integer labels in "
                         f"0..{n_classes - 1}. Got {labels.dtype} labels of shape {labels.shape} instead.")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(labels.size, size=int(round(fraction * labels.size)), replace=False)
    shift = rng.integers(1, n_classes, size=chosen.size)  # 1..C-1: never the original class
    noisy = labels.copy()
    noisy[chosen] = (labels[chosen] + shift) % n_classes
    return torch.as_tensor(noisy, device=y.device) if is_tensor else noisy


@dataclass(frozen=True)
class DoubleDescent:
    """The outcome of :func:`double_descent`; every array is indexed by width.

    Attributes:
        widths: (W,) the hidden widths h.
        parameters: (W,) P(h), from the trained networks themselves.
        train_error: (W,) error on the training labels the networks were fitted to
            (noisy ones included), mean over repeats.
        test_error: (W,) error on the clean test set, mean over repeats.
        train_loss: (W,) final training cross-entropy, mean over repeats.
        test_loss: (W,) test cross-entropy, mean over repeats.
        test_error_runs: (R, W) the test error of each repeat.
        n_train: number N of training examples.
        label_noise: the fraction of training labels randomised.
        interpolation_width: h* with P(h*) = N.
    """

    widths: np.ndarray
    parameters: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    test_error_runs: np.ndarray
    n_train: int
    label_noise: float
    interpolation_width: float


def _split(data: Any) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test) as CPU tensors from an MNIST1D or a 4-tuple."""
    parts = data.tensors("cpu") if hasattr(data, "tensors") else data
    if not isinstance(parts, (tuple, list)) or len(parts) != 4:
        raise TypeError("The 'data' parameter of double_descent must be an MNIST1D dataset or a tuple "
                        f"(x_train, y_train, x_test, y_test). Got {type(data).__name__} instead.")
    x_train, y_train, x_test, y_test = (torch.as_tensor(t) for t in parts)
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.dim() != 2 or y.shape != x.shape[:1] or len(x) == 0:
            raise ValueError(f"The 'data' parameter of double_descent must hold x_{name} (N, D) and y_{name} (N,). "
                             f"Got shapes {tuple(x.shape)} and {tuple(y.shape)} instead.")
    if x_test.shape[1] != x_train.shape[1]:
        raise ValueError(f"The 'data' parameter of double_descent must have test inputs of dimension "
                         f"{x_train.shape[1]}. Got {x_test.shape[1]} instead.")
    return x_train.float(), y_train.long(), x_test.float(), y_test.long()


def _error_and_loss(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Classification error and mean cross-entropy of logits (N, C) against labels (N,)."""
    error = (logits.argmax(dim=1) != y).float().mean().item()
    return error, nn.functional.cross_entropy(logits, y).item()


def double_descent(widths: Sequence[int], data: Any, *, label_noise: float = 0.15, steps: int = 4000,
                   lr: float = 0.005, layers: int = 2, repeats: int = 1, seed: int = 0,
                   device: str | torch.device = "cpu",
                   progress: bool | Callable[..., Any] = False) -> DoubleDescent:
    """Train one network per hidden width on noisy labels and measure train and test error (fig. 8.10).

    For each repeat r (r = 0..R-1) a fraction ``label_noise`` of the training labels
    is randomised once (:func:`randomize_labels`, seed ``seed + r``), shared by all
    widths. For each width h a :class:`udl.nn.deep.DeepNetwork` with ``layers`` hidden
    layers of width h (initialised from seed ``seed + r``) is trained by full-batch
    Adam (step ``lr``) on the cross-entropy for ``steps`` steps with
    :func:`udl.train.fit`, with no regularization, as in UDL §8.4. The test set keeps
    its clean labels.

    Args:
        widths: the hidden widths h to sweep (positive ints).
        data: an :class:`udl.data.mnist1d.MNIST1D` or a tuple ``(x_train, y_train,
            x_test, y_test)`` of arrays or tensors; labels in 0..C-1.
        label_noise: fraction of training labels randomised, in [0, 1). Default: 0.15.
        steps: full-batch Adam steps per network. Default: 4000 (book).
        lr: Adam's step size. Default: 0.005 (book).
        layers: number K of hidden layers. Default: 2 (book).
        repeats: independent runs (label noise and initialisation) averaged. Default: 1.
        seed: the first run's seed. Default: 0.
        device: where to train (``"cpu"``, ``"cuda"``, ``"auto"``). Default: "cpu".
        progress: a progress bar over the networks: True for tqdm, or a callable used
            as ``progress(iterable, desc=..., total=...)`` (e.g. ``run.progress``).
            Default: False.

    Returns:
        :class:`DoubleDescent` with the parameter count, train and test error and loss per width.

    Shape:
        x_train: (N, D_i), y_train: (N,), x_test: (M, D_i), y_test: (M,).

    Example::

        >>> from udl.data.mnist1d import load_mnist1d
        >>> dd = double_descent([4, 16, 64], load_mnist1d(num_samples=500), steps=200)
        >>> dd.parameters.tolist()
        [234, 1098, 7434]
    """
    from udl.devices import resolve_device
    from udl.nn.deep import DeepNetwork
    from udl.train import fit

    owner = "double_descent"
    widths = check_sizes(list(widths) if isinstance(widths, (list, tuple, np.ndarray)) else widths,
                         "widths", owner)
    check_float(label_noise, "label_noise", owner, low=0.0, high=1.0, high_open=True)
    check_int(steps, "steps", owner)
    check_float(lr, "lr", owner, low=0.0, low_open=True)
    check_int(layers, "layers", owner)
    check_int(repeats, "repeats", owner)
    check_int(seed, "seed", owner, minimum=0)
    device = resolve_device(device, owner)
    if not (isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"The 'progress' parameter of {owner} must be a bool or a callable. Got {progress!r} instead.")
    x_train, y_train, x_test, y_test = _split(data)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    if int(min(y_train.min(), y_test.min())) < 0 or n_classes < 2:
        raise ValueError(f"The 'data' parameter of {owner} must have labels in 0..C-1 with C >= 2. "
                         f"Got labels from {int(min(y_train.min(), y_test.min()))} to {n_classes - 1} instead.")
    n, d_in = x_train.shape
    x_train, x_test, y_test = x_train.to(device), x_test.to(device), y_test.to(device)

    jobs = [(r, i) for r in range(repeats) for i in range(len(widths))]  # one network per (repeat, width)
    if progress is True:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="networks", leave=False)
    elif callable(progress):
        jobs = progress(jobs, desc="networks", total=len(jobs))
    shape = (repeats, len(widths))
    train_error, test_error, train_loss, test_loss = (np.zeros(shape) for _ in range(4))
    noisy = {}
    for r, i in jobs:
        if r not in noisy:  # the same corrupted labels for every width of repeat r
            noisy[r] = randomize_labels(y_train, label_noise, n_classes, seed + r).to(device)
        h = widths[i]
        net = DeepNetwork([d_in, *[h] * layers, n_classes], generator=torch.Generator().manual_seed(seed + r))
        fit(net, (x_train, noisy[r]), nn.functional.cross_entropy, lambda params: torch.optim.Adam(params, lr=lr),
            steps=steps, batch_size=n, shuffle=False, device=device, progress=False)
        net.eval()
        with torch.no_grad():
            train_error[r, i], train_loss[r, i] = _error_and_loss(net(x_train).float(), noisy[r])
            test_error[r, i], test_loss[r, i] = _error_and_loss(net(x_test).float(), y_test)
    parameters = np.array([mlp_parameter_count(d_in, h, n_classes, layers) for h in widths])
    return DoubleDescent(widths=np.asarray(widths), parameters=parameters, train_error=train_error.mean(0),
                         test_error=test_error.mean(0), train_loss=train_loss.mean(0), test_loss=test_loss.mean(0),
                         test_error_runs=test_error, n_train=n, label_noise=float(label_noise),
                         interpolation_width=interpolation_width(n, d_in, n_classes, layers))
