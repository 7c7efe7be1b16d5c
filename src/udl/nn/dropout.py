"""Dropout (UDL §9.3.3): train a different random sub-network at every step.

At each training iteration every hidden unit is clamped to zero with probability p,
independently; its incoming and outgoing weights then have no effect on that step
(fig. 9.8). With a keep mask m (m_d ~ Bernoulli(1 - p)) a layer of activations h
becomes::

    h̃ = h ⊙ m / (1 - p)                                  ("inverted" dropout)

The factor 1/(1 - p) keeps the expected activation, E[h̃] = h, so at test time the
whole network is used unchanged. The book describes the equivalent other bookkeeping,
the weight-scaling inference rule: train with h ⊙ m and multiply the weights by
(1 - p) at test time; both give the same test-time network.

- :func:`dropout_mask` draws a keep mask, :func:`apply_dropout_mask` applies one.
- :class:`Dropout` is the layer: inverted dropout in training mode, the identity in
  evaluation mode, with the mask of its last forward pass kept in ``last_mask`` so
  that a figure can draw which units were dropped.
- :func:`drop_one_of` is the book's simplified mechanism of fig. 9.9: remove exactly
  one unit chosen uniformly from a few candidates (scaling the others to keep the mean).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from udl.validate import as_generator, check_float, check_int, check_tensor, is_int

__all__ = ["Dropout", "dropout_mask", "apply_dropout_mask", "drop_one_of"]


def _check_p(p, owner: str) -> float:
    return check_float(p, "p", owner, low=0.0, high=1.0, high_open=True)


def dropout_mask(shape: Sequence[int] | torch.Size, p: float, *, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """A keep mask m with independent entries m_d ~ Bernoulli(1 - p) (True = unit kept).

    Drawn as ``u >= p`` for u ~ U[0, 1), so each entry is dropped with probability p.

    Args:
        shape: the mask's shape (usually the activations' shape, batch first).
        p: the drop probability, 0 <= p < 1.
        generator: the source of randomness; the mask is drawn on the generator's
            device and moved to ``device``. None uses torch's global generator.
        device: where the mask lives. Default: the generator's device (else CPU).

    Shape:
        ``shape`` -> a bool tensor of that shape.

    Example::

        >>> m = dropout_mask((2, 5), 0.5, generator=torch.Generator().manual_seed(0))
        >>> m.dtype, m.shape
        (torch.bool, torch.Size([2, 5]))
    """
    owner = "dropout_mask"
    if is_int(shape):
        shape = (shape,)
    if not isinstance(shape, (tuple, list, torch.Size)) or any(not is_int(s) or s < 0 for s in shape):
        raise TypeError(f"The 'shape' parameter of {owner} must be a tuple of non-negative ints. "
                        f"Got {shape!r} instead.")
    p = _check_p(p, owner)
    generator = as_generator(generator, owner)
    draw_on = generator.device if generator is not None else (device or "cpu")
    u = torch.rand(tuple(shape), generator=generator, device=draw_on)  # u ~ U[0, 1)
    mask = u >= p  # Pr(keep) = 1 - p
    return mask if device is None else mask.to(device)


def apply_dropout_mask(h: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout with a given keep mask: ``h ⊙ m / (1 - p)``.

    Args:
        h: activations.
        mask: the keep mask (bool or 0/1), broadcastable to ``h``.
        p: the drop probability the mask was drawn with, 0 <= p < 1.

    Shape:
        h: any, mask: broadcastable to h -> the shape of h.

    Example::

        >>> apply_dropout_mask(torch.ones(4), torch.tensor([True, False, True, True]), 0.25)
        tensor([1.3333, 0.0000, 1.3333, 1.3333])
    """
    owner = "apply_dropout_mask"
    h = check_tensor(h, "h", owner)
    mask = check_tensor(mask, "mask", owner)
    p = _check_p(p, owner)
    try:
        torch.broadcast_shapes(mask.shape, h.shape)
    except RuntimeError:
        raise ValueError(f"The 'mask' parameter of {owner} must broadcast to h's shape {tuple(h.shape)}. "
                         f"Got {tuple(mask.shape)} instead.") from None
    scale = 1.0 / (1.0 - p)  # as one factor, the same rounding as torch's dropout
    return h * mask.to(h.dtype) * scale  # h̃ = h ⊙ m / (1 - p)


class Dropout(nn.Module):
    """Inverted dropout (UDL §9.3.3): zero each unit with probability p, scale survivors by 1/(1-p).

    In training mode (``module.train()``) a fresh keep mask is drawn at every call; in
    evaluation mode (``module.eval()``) the layer is the identity. The mask of the
    last call is kept in ``last_mask`` (True = kept; all True in evaluation mode).

    Args:
        p: the drop probability, 0 <= p < 1. Default 0.5.
        generator: draws the masks, for reproducible runs; None uses torch's global
            generator (as ``torch.nn.Dropout`` does).

    Shape:
        h: any -> the same shape; ``last_mask`` has that shape too.

    Example::

        >>> layer = Dropout(0.5, generator=torch.Generator().manual_seed(0))
        >>> out = layer(torch.ones(2, 6))
        >>> bool(((out == 0) == ~layer.last_mask).all()), sorted(set(out.flatten().tolist()))
        (True, [0.0, 2.0])
    """

    last_mask: torch.Tensor | None

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None):
        super().__init__()
        self.p = _check_p(p, "Dropout")
        generator = as_generator(generator, "Dropout")
        self.generator = generator
        self.last_mask = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        check_tensor(h, "h", "Dropout.forward")
        if not self.training or self.p == 0.0:
            self.last_mask = torch.ones_like(h, dtype=torch.bool)
            return h
        self.last_mask = dropout_mask(h.shape, self.p, generator=self.generator, device=h.device)
        return apply_dropout_mask(h, self.last_mask, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


def drop_one_of(n_units: int, candidates: Sequence[int], *, inverted: bool = True,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Unit multipliers that remove exactly one of ``candidates``, chosen uniformly (fig. 9.9).

    The book's simplified picture of dropout: at each step remove one unit, chosen
    uniformly among k candidates (the units that make a kink), and take a gradient
    step. Each candidate is then kept with probability (k - 1)/k; with ``inverted``
    the kept candidates are scaled by k/(k - 1), as :class:`Dropout` scales by
    1/(1 - p), so the expected output of the network is unchanged and only the
    spread between the candidates is penalised.

    Args:
        n_units: the number of units D.
        candidates: k distinct unit indices in [0, D) to choose from (k ≥ 2 when
            ``inverted``).
        inverted: scale the kept candidates by k/(k - 1). Default True.
        generator: draws the choice; None uses torch's global generator.

    Shape:
        -> (D,) float32 multipliers: 0 for the removed unit, k/(k - 1) (or 1) for the
        other candidates, 1 for every other unit.

    Example::

        >>> drop_one_of(5, [1, 2, 3], generator=torch.Generator().manual_seed(0)).tolist()
        [1.0, 1.5, 1.5, 0.0, 1.0]
    """
    owner = "drop_one_of"
    n_units = check_int(n_units, "n_units", owner)
    if not isinstance(inverted, bool):
        raise TypeError(f"The 'inverted' parameter of {owner} must be a bool. Got {inverted!r} instead.")
    min_k = 2 if inverted else 1
    if not isinstance(candidates, (list, tuple)) or len(candidates) < min_k or \
            len(set(candidates)) != len(candidates) or \
            any(not is_int(c) or not 0 <= c < n_units for c in candidates):
        raise ValueError(f"The 'candidates' parameter of {owner} must be a list of at least {min_k} distinct unit "
                         f"indices in [0, {n_units}). Got {candidates!r} instead.")
    generator = as_generator(generator, owner)
    k = len(candidates)
    pick = int(torch.randint(k, (), generator=generator,
                             device=generator.device if generator is not None else "cpu"))
    multipliers = torch.ones(n_units)
    if inverted:
        multipliers[list(candidates)] = k / (k - 1)  # keep probability (k-1)/k, inverted scaling
    multipliers[candidates[pick]] = 0.0
    return multipliers
