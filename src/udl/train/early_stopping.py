"""Early stopping: keep the weights with the lowest validation loss (UDL §9.3.1).

Training loss keeps falling as a model starts to fit the noise in its training data;
the loss on held-out validation data stops falling first. Early stopping watches the
validation loss every ``every`` steps, keeps a copy of the weights at its best value,
and at the end puts that copy back: the number of steps becomes a hyper-parameter
chosen on validation data, and the model is never trained far enough to overfit
(fig. 9.6).

Use it as a ``udl.train.fit`` callback::

    stopper = EarlyStopping(lambda m: loss_fn(m(x_val), y_val).item(), every=50, patience=10)
    fit(model, (x, y), loss_fn, optimizer, steps=10_000, batch_size=5, callback=stopper)
    stopper.restore(model)

or standalone, calling ``stopper.update(step, model)`` from any loop.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from udl.validate import check_callable, check_float, check_int

__all__ = ["EarlyStopping"]

_OWNER = "EarlyStopping"


class EarlyStopping:
    """Track a validation loss, snapshot the best weights, restore them (UDL §9.3.1).

    Args:
        val_fn: ``val_fn(model) -> float``, the validation loss of the model as it is
            (called in eval mode under ``torch.no_grad``; the model's mode is restored).
        every: evaluate on steps that are multiples of ``every``. Default 1.
        patience: stop evaluating (``should_stop`` becomes True) after this many
            evaluations in a row without improvement; None never stops. Default None.
        min_delta: an evaluation counts as an improvement only if it is below the
            best loss by more than ``min_delta``. Default 0.0.

    Attributes:
        best_step: the step of the best evaluation (None before the first).
        best_loss: the best validation loss (inf before the first).
        best_state: a copy (``state_dict`` of cloned tensors) of the weights at ``best_step``.
        steps, losses: every evaluation's step and validation loss.
        stopped_step: the step at which patience ran out (None while running).

    ``udl.train.fit`` cannot be interrupted by a callback: after patience runs out
    the remaining steps still run, but no further evaluations are made, and
    ``restore`` brings back the best weights. Loops of your own can test
    ``should_stop`` and break.

    Example::

        >>> model = nn.Linear(1, 1)
        >>> stopper = EarlyStopping(lambda m: m.weight.abs().item())
        >>> stopper.update(0, model) >= 0
        True
        >>> with torch.no_grad(): _ = model.weight.add_(5.0)     # training moves the weights
        >>> _ = stopper.update(1, model); stopper.best_step
        0
        >>> _ = stopper.restore(model)  # back to the weights of step 0
    """

    def __init__(self, val_fn: Callable[[nn.Module], float], *, every: int = 1, patience: int | None = None,
                 min_delta: float = 0.0):
        check_callable(val_fn, "val_fn", _OWNER)
        self.val_fn = val_fn
        self.every = check_int(every, "every", _OWNER)
        self.patience = None if patience is None else check_int(patience, "patience", _OWNER)
        self.min_delta = check_float(min_delta, "min_delta", _OWNER, low=0)
        self.best_step: int | None = None
        self.best_loss = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.stopped_step: int | None = None
        self._bad = 0  # evaluations since the last improvement

    @property
    def should_stop(self) -> bool:
        """True once ``patience`` evaluations in a row brought no improvement."""
        return self.stopped_step is not None

    def __call__(self, step: int, loss: float, model: nn.Module) -> None:
        """The ``udl.train.fit`` callback: evaluate when ``step`` is a multiple of ``every``."""
        if step % self.every == 0 and not self.should_stop:
            self.update(step, model)

    def update(self, step: int, model: nn.Module) -> float:
        """Evaluate the model now (any step, e.g. 0 before training); snapshot it if it is the best.

        Returns:
            The validation loss.
        """
        check_int(step, "step", f"{_OWNER}.update", minimum=0)
        if not isinstance(model, nn.Module):
            raise TypeError(f"The 'model' parameter of {_OWNER}.update must be an nn.Module. "
                            f"Got {type(model).__name__} instead.")
        was_training = model.training
        model.eval()
        with torch.no_grad():
            value = float(self.val_fn(model))
        model.train(was_training)
        self.steps.append(step)
        self.losses.append(value)
        if value < self.best_loss - self.min_delta:
            self.best_step, self.best_loss, self._bad = step, value, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self._bad += 1
            if self.patience is not None and self._bad >= self.patience:
                self.stopped_step = step
        return value

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best snapshot into ``model`` (in place) and return it."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"The 'model' parameter of {_OWNER}.restore must be an nn.Module. "
                            f"Got {type(model).__name__} instead.")
        if self.best_state is None:
            raise ValueError(f"{_OWNER}.restore needs at least one evaluation; call update() or train first.")
        model.load_state_dict(self.best_state)
        return model
