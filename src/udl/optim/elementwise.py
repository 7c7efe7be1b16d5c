"""The step that the book's per-parameter rules share (UDL §6.3-6.4).

Momentum, sign descent and Adam each update every parameter from its own gradient
(and its own running averages), the same way in every parameter group. What differs
is only the rule; :class:`ElementwiseOptimizer` holds the rest: calling the optional
closure with gradients enabled, visiting each parameter that has a gradient, and
returning the closure's loss, as ``torch.optim.SGD`` and ``torch.optim.Adam`` do.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer

__all__: list[str] = []  # a base class for udl.optim's optimizers, not an entry point


class ElementwiseOptimizer(Optimizer):
    """A ``torch.optim.Optimizer`` whose step applies :meth:`update` to each parameter with a gradient.

    Subclasses store their hyper-parameters in the parameter groups (``defaults``) and
    write :meth:`update`; ``self.state[p]`` keeps what a rule carries between steps.
    """

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict) -> None:
        """Move ``p`` in place from its gradient ``g``, with ``group``'s hyper-parameters."""
        raise NotImplementedError

    def _update_all(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p, p.grad, group)

    @torch.no_grad()
    def step(self, closure=None):
        """One step; ``closure`` (optional) re-evaluates the loss and its gradient, and its loss is returned."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._update_all()
        return loss
