"""Binary classification with a Bernoulli output (UDL §5.4).

The network f[x, φ] outputs one unbounded number, the logit. The logistic sigmoid
(eq. 5.18) maps it to λ = sig[f[x, φ]] ∈ (0, 1), the parameter of a Bernoulli
distribution over the label (eq. 5.19)::

    Pr(y = 1 | x) = sig[f[x, φ]]

Training minimises the binary cross-entropy (eq. 5.20), the negative log-likelihood
of the training labels under this distribution.
"""

from __future__ import annotations

import torch
from torch import nn

from udl.nn.init import initialised_from
from udl.nn.losses import binary_cross_entropy_with_logits
from udl.validate import as_generator, check_float, check_int, check_sizes


class BernoulliClassifier(nn.Module):
    """A fully connected ReLU network whose single output is the logit of Pr(y=1|x).

    ``forward`` returns the logit f[x, φ]; :meth:`prob` returns λ = sig[f[x, φ]]
    (UDL eqs. 5.18-5.19); :meth:`fit` minimises the binary cross-entropy (eq. 5.20).

    Args:
        d_in: input dimension D_i.
        hidden: widths of the hidden layers, default ``(16, 16)``; ``()`` gives
            logistic regression.
        generator: the random numbers of the initial weights, each layer's weights and
            biases uniform in ±1/√fan_in as ``torch.nn.Linear`` draws them: a
            ``torch.Generator`` or an int seed. Default: None, torch's global generator.

    Shape:
        x: (N, d_in) → logits (N,).

    Example:
        >>> model = BernoulliClassifier(1, hidden=(16, 16), generator=0)
        >>> model.prob(torch.zeros(5, 1)).shape
        torch.Size([5])
    """

    def __init__(self, d_in: int, hidden: tuple[int, ...] | list[int] = (16, 16), *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "BernoulliClassifier"
        self.d_in = check_int(d_in, "d_in", owner)
        self.hidden = check_sizes(hidden, "hidden", owner, min_len=0)
        generator = as_generator(generator, owner)
        widths = (self.d_in, *self.hidden)
        with initialised_from(self, generator):
            layers: list[nn.Module] = []
            for d_from, d_to in zip(widths[:-1], widths[1:]):
                layers += [nn.Linear(d_from, d_to), nn.ReLU()]
            layers.append(nn.Linear(widths[-1], 1))  # the logit f[x, φ]
            self.net = nn.Sequential(*layers)

    @classmethod
    def tiny(cls, **changes) -> BernoulliClassifier:
        """A test-sized classifier: 2 inputs, one hidden layer of 4; ``changes`` override (``generator=0``, ...)."""
        return cls(**{**dict(d_in=2, hidden=(4,)), **changes})

    def _check_x(self, x, where: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"The 'x' parameter of BernoulliClassifier.{where} must be a torch.Tensor. "
                            f"Got {type(x).__name__} instead.")
        if x.dim() != 2 or x.shape[1] != self.d_in:
            raise ValueError(f"The 'x' parameter of BernoulliClassifier.{where} must have shape "
                             f"(N, {self.d_in}). Got {tuple(x.shape)} instead.")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logit f[x, φ] of Pr(y=1|x); shape (N, d_in) → (N,)."""
        self._check_x(x, "forward")
        return self.net(x)[:, 0]  # (N, 1) -> (N,)

    def prob(self, x: torch.Tensor) -> torch.Tensor:
        """λ = Pr(y=1|x) = sig[f[x, φ]] (UDL eq. 5.19); shape (N, d_in) → (N,)."""
        return torch.sigmoid(self(x))

    def fit(self, x: torch.Tensor, y: torch.Tensor, *, steps: int = 1000, lr: float = 0.01,
            batch_size: int | None = None, generator: torch.Generator | int = 0) -> list[float]:
        """Minimise the binary cross-entropy (UDL eq. 5.20) with Adam.

        The loss is averaged over each batch (``reduction="mean"``), so that the
        learning rate does not depend on the batch size; the book's sum differs only
        by the factor N.

        Args:
            x: inputs, (N, d_in).
            y: labels in {0, 1}, (N,) (any numeric dtype).
            steps: optimiser steps, default 1000.
            lr: Adam's learning rate α, default 0.01.
            batch_size: examples per step; ``None`` (default) uses the whole set.
            generator: draws each mini-batch (unused for full batches): a
                ``torch.Generator`` (continued) or an int seed. Default: 0.

        Returns:
            The training loss (mean binary cross-entropy over the batch) before each step.
        """
        owner = "BernoulliClassifier.fit"
        self._check_x(x, "fit")
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"The 'y' parameter of {owner} must be a torch.Tensor. Got {type(y).__name__} instead.")
        if y.shape != (x.shape[0],):
            raise ValueError(f"The 'y' parameter of {owner} must have shape ({x.shape[0]},). "
                             f"Got {tuple(y.shape)} instead.")
        if y.numel() and not bool(((y == 0) | (y == 1)).all()):
            raise ValueError(f"The 'y' parameter of {owner} must hold labels 0 or 1. Got other values instead.")
        check_int(steps, "steps", owner)
        check_float(lr, "lr", owner, low=0, low_open=True)
        if batch_size is not None:
            check_int(batch_size, "batch_size", owner)
        generator = as_generator(generator, owner, optional=False)
        if x.shape[0] == 0:
            raise ValueError(f"The 'x' parameter of {owner} must hold at least one example. Got none instead.")

        device, dtype = self.net[0].weight.device, self.net[0].weight.dtype
        x, y = x.to(device, dtype), y.to(device, dtype)
        n = x.shape[0]
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        history = []
        self.train()
        for _ in range(steps):
            if batch_size is None or batch_size >= n:
                xb, yb = x, y
            else:
                idx = torch.randperm(n, generator=generator, device=generator.device)[:batch_size].to(device)
                xb, yb = x[idx], y[idx]
            loss = binary_cross_entropy_with_logits(self(xb), yb, reduction="mean")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append(loss.item())
        self.eval()
        return history


__all__ = ["BernoulliClassifier"]
