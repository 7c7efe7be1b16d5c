"""Normalization schemes (UDL §11.4, fig. 11.14): which activations share a mean and variance.

Every scheme standardizes a group of activations h with the group's own mean m and
variance s², then applies a learned per-channel scale γ and offset δ::

    m = (1/|𝒢|) Σ_{j∈𝒢} h_j,     s² = (1/|𝒢|) Σ_{j∈𝒢} (h_j - m)²          (eq. 11.8)
    ĥ_i = (h_i - m) / √(s² + ε)                                            (eq. 11.9)
    h_i ← γ_c ĥ_i + δ_c                   (c = the channel of i)           (eq. 11.10)

The book writes eq. 11.9 as (h_i - m)/(s + ε); like torch (and Ioffe & Szegedy) we add
ε to the variance, which makes the layers equal to torch's. γ starts at 1 and δ at 0.
The schemes differ only in the group 𝒢 that element i = (n, c, spatial) belongs to,
for activations of shape ``(N, C, *spatial)`` (spatial = H·W for images, fig. 11.14):

=========================  ==================================  ====================
scheme                     𝒢: the elements with the same n, c   |𝒢|
=========================  ==================================  ====================
:class:`BatchNorm`         every n, same c, every position      N · H · W
:class:`GhostBatchNorm`    n in the same ghost batch, same c    B_ghost · H · W
:class:`LayerNorm`         same n, every c, every position      C · H · W
:class:`GroupNorm`         same n, c in the same group          (C / G) · H · W
:class:`InstanceNorm`      same n, same c, every position       H · W
=========================  ==================================  ====================

Batch norm (and Ghost batch norm) depend on the other members of the batch, so they
keep running estimates of the statistics for use in evaluation mode; the other
three normalize each batch member on its own and behave the same in both modes.

- :meth:`statistics` of each module returns the mean and variance it uses in
  training mode, broadcastable to the input; :meth:`group_of` returns 𝒢 by definition.
- float16 and bfloat16 inputs are normalized in float32 (the statistics, eq. 11.9 and
  eq. 11.10) and the output rounded once to the input's type, as torch's layers do: in
  bfloat16 the mean of activations around 100 would be rounded to a multiple of 0.5.
- :func:`shared_statistics` *measures* 𝒢 for any normalization module (these or
  torch's) by automatic differentiation, without knowing how it is written.
"""

from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
from torch import nn

from udl.validate import as_generator, check_choice, check_float, check_instance, check_int, check_tensor, is_int

__all__ = ["BatchNorm", "GhostBatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm", "shared_statistics",
           "batch_norm_layer"]


# --------------------------------------------------------------------------- helpers
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _mean_var(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and the biased variance of ``x`` over ``dims`` (kept as size-1 axes), eq. 11.8.

    Half-precision ``x`` is summed in float32 and gives float32 statistics.
    """
    if x.dtype in _LOW_PRECISION:
        x = x.float()
    m = x.mean(dims, keepdim=True)
    s2 = (x - m).square().mean(dims, keepdim=True)
    return m, s2


def _check_shape(shape, name: str, owner: str, *, min_dims: int = 2) -> tuple[int, ...]:
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if not isinstance(shape, (tuple, list)) or len(shape) < min_dims or \
            any(not is_int(s) or s < 1 for s in shape):
        error = TypeError if not isinstance(shape, (tuple, list)) else ValueError
        raise error(f"The {name!r} parameter of {owner} must be a tuple of at least {min_dims} positive ints "
                    f"(N, C, *spatial). Got {shape!r} instead.")
    return tuple(int(s) for s in shape)


def _check_index(index, shape: tuple[int, ...], owner: str) -> tuple[int, ...]:
    if not isinstance(index, (tuple, list)) or len(index) != len(shape) or \
            any(not is_int(i) or not 0 <= i < s for i, s in zip(index, shape)):
        error = TypeError if not isinstance(index, (tuple, list)) else ValueError
        raise error(f"The 'index' parameter of {owner} must be a tuple of {len(shape)} ints inside the shape "
                    f"{shape}. Got {index!r} instead.")
    return tuple(int(i) for i in index)


def _channel_view(v: torch.Tensor, ndim: int) -> torch.Tensor:
    return v.view(1, -1, *([1] * (ndim - 2)))  # (C,) -> (1, C, 1, ..., 1)


# --------------------------------------------------------------------------- the common part
class _Normalization(nn.Module):
    """Standardize with :meth:`statistics`, then scale by γ and offset by δ per channel."""

    _min_dims = 2  # (N, C); InstanceNorm needs a spatial axis

    def __init__(self, channels: int, eps: float, affine: bool):
        super().__init__()
        owner = type(self).__name__
        self.channels = check_int(channels, "channels", owner)
        self.eps = check_float(eps, "eps", owner, low=0.0, low_open=True)
        if not isinstance(affine, bool):
            raise TypeError(f"The 'affine' parameter of {owner} must be a bool. Got {affine!r} instead.")
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(channels))  # γ, one scale per channel (init 1)
            self.bias = nn.Parameter(torch.zeros(channels))  # δ, one offset per channel (init 0)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """γ = 1, δ = 0: nothing random (``generator`` is the argument :func:`udl.nn.init.init_parameters` passes)."""
        if self.affine:
            self.weight.fill_(1.0)
            self.bias.zero_()

    # the part each scheme defines ---------------------------------------------------
    def statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean m and biased variance s² of each element's group (training mode), broadcastable to x."""
        raise NotImplementedError

    def _group_slices(self, shape: tuple[int, ...], index: tuple[int, ...]) -> tuple[slice | int, ...]:
        raise NotImplementedError

    # the part they share ------------------------------------------------------------
    def group_of(self, shape: Sequence[int], index: Sequence[int]) -> torch.Tensor:
        """The elements whose statistics element ``index`` is normalized with (training mode), by definition.

        Args:
            shape: the input's shape ``(N, C, *spatial)``.
            index: one element of that shape.

        Shape:
            -> a bool tensor of ``shape``, True on the group 𝒢 of ``index``.
        """
        owner = f"{type(self).__name__}.group_of"
        shape = _check_shape(shape, "shape", owner, min_dims=self._min_dims)
        self._check_channels(shape, "shape", owner)
        index = _check_index(index, shape, owner)
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[self._group_slices(shape, index)] = True
        return mask

    def _check_channels(self, shape: tuple[int, ...], name: str, owner: str) -> None:
        if len(shape) < self._min_dims or shape[1] != self.channels:
            spatial = ", *spatial" if self._min_dims == 2 else ", L, *spatial"
            raise ValueError(f"The {name!r} parameter of {owner} must have shape (N, {self.channels}{spatial}). "
                             f"Got {shape} instead.")

    def _check_input(self, x, owner: str) -> torch.Tensor:
        check_tensor(x, "x", owner, dtype="float")
        self._check_channels(tuple(x.shape), "x", owner)
        return x

    def _scale_and_offset(self, x_hat: torch.Tensor) -> torch.Tensor:
        if not self.affine:
            return x_hat
        return x_hat * _channel_view(self.weight, x_hat.ndim) + _channel_view(self.bias, x_hat.ndim)  # eq. 11.10

    def _forward_statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.statistics(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x, f"{type(self).__name__}.forward")
        if x.dtype in _LOW_PRECISION:  # statistics, eq. 11.9 and eq. 11.10 in float32; one rounding at the end
            dtype = x.dtype if self.weight is None else torch.promote_types(x.dtype, self.weight.dtype)
            return self._normalize(x.float()).to(dtype)
        return self._normalize(x)

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        m, s2 = self._forward_statistics(x)
        x_hat = (x - m) / torch.sqrt(s2 + self.eps)  # eq. 11.9
        return self._scale_and_offset(x_hat)

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps:g}, affine={self.affine}"


def _check_group_size(n: int, owner: str) -> None:
    if n < 2:
        raise ValueError(f"{owner} in training mode needs more than one value per statistics group. Got {n} "
                         "instead (use a larger batch or more positions).")


# --------------------------------------------------------------------------- batch norm
class BatchNorm(_Normalization):
    """Batch normalization (UDL §11.4): each channel standardized over the batch and every position.

    In training mode (``module.train()``) the statistics of channel c come from all
    N · H · W values of c in the batch (eqs. 11.8-11.10), and running estimates are
    updated as torch does::

        μ_c ← (1 - momentum) μ_c + momentum · m_c
        σ²_c ← (1 - momentum) σ²_c + momentum · s²_c · n / (n - 1)    (unbiased, n = N·H·W)

    (``momentum=None`` gives the plain average of all batches so far: momentum =
    1 / batches seen). In evaluation mode the running estimates replace m and s², so
    each example is processed on its own.

    Args:
        channels: C, the number of channels (axis 1 of the input).
        eps: ε added to the variance. Default 1e-5.
        momentum: weight of the newest batch in the running estimates, in [0, 1], or
            None for a cumulative average. Default 0.1.
        affine: learn a scale γ and offset δ per channel. Default True.

    Attributes:
        weight, bias: γ and δ, shape ``(C,)``; running_mean, running_var: shape ``(C,)``;
        num_batches_tracked: training batches seen. Names as in ``torch.nn.BatchNorm2d``,
        whose ``state_dict`` loads into this module and vice versa.

    Shape:
        ``(N, C)`` or ``(N, C, *spatial)`` -> the same shape.

    Example::

        >>> bn = BatchNorm(3)
        >>> y = bn(torch.randn(8, 3, 4, 4))
        >>> y.mean((0, 2, 3)).abs().max() < 1e-6, bn.running_mean.shape
        (tensor(True), torch.Size([3]))
    """

    def __init__(self, channels: int, *, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True):
        super().__init__(channels, eps, affine)
        if momentum is not None:
            momentum = check_float(momentum, "momentum", type(self).__name__, low=0.0, high=1.0)
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """γ = 1, δ = 0 and fresh running estimates (mean 0, variance 1, no batches seen)."""
        super().reset_parameters(generator)
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and biased variance over the batch and every position: shapes ``(1, C, 1, ...)``."""
        dims = (0, *range(2, x.ndim))  # N and every spatial axis
        _check_group_size(math.prod(x.shape[d] for d in dims), type(self).__name__)
        return _mean_var(x, dims)

    def _group_slices(self, shape, index):
        return (slice(None), index[1])  # every n, every position, channel c

    def _update_running(self, m: torch.Tensor, s2: torch.Tensor, n: int) -> None:
        """One update of the running estimates from a batch of n values per channel."""
        with torch.no_grad():
            self.num_batches_tracked += 1
            mu = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean.mul_(1 - mu).add_(mu * m.reshape(-1))
            self.running_var.mul_(1 - mu).add_(mu * s2.reshape(-1) * (n / (n - 1)))  # unbiased s²

    def _batch_statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, s2 = self.statistics(x)
        self._update_running(m, s2, x.numel() // x.shape[1])
        return m, s2

    def _forward_statistics(self, x):
        if self.training:
            return self._batch_statistics(x)
        mean, var = self.running_mean, self.running_var
        if var.dtype in _LOW_PRECISION:  # a half-precision module: s² + ε and its root in float32 too
            mean, var = mean.float(), var.float()
        return _channel_view(mean, x.ndim), _channel_view(var, x.ndim)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, momentum={self.momentum}"


class GhostBatchNorm(BatchNorm):
    """Ghost batch normalization (fig. 11.14b): batch norm computed separately on parts of the batch.

    In training mode the batch is cut along N into consecutive "ghost batches" of
    ``ghost_batch_size`` examples (the last one smaller when N is not a multiple, as
    ``torch.split`` does), and each is standardized with its own per-channel
    statistics over B_ghost · H · W values. Smaller groups give noisier statistics
    (their standard error grows by √(N / B_ghost)), which acts as a regularizer.

    The running estimates are updated once per ghost batch, in order, with the
    :class:`BatchNorm` rule: a training call is exactly ``BatchNorm`` called on each
    chunk in turn (the outputs concatenated), and ``num_batches_tracked`` counts
    ghost batches. Evaluation mode uses the running estimates, as batch norm does.

    Args:
        channels: C.
        ghost_batch_size: B_ghost, the examples per ghost batch.
        eps, momentum, affine: as :class:`BatchNorm`.

    Shape:
        ``(N, C)`` or ``(N, C, *spatial)`` -> the same shape.

    Example::

        >>> gbn = GhostBatchNorm(3, ghost_batch_size=2)
        >>> y = gbn(torch.randn(8, 3, 5))
        >>> int(gbn.num_batches_tracked), y[:2].mean((0, 2)).abs().max() < 1e-6
        (4, tensor(True))
    """

    def __init__(self, channels: int, ghost_batch_size: int, *, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True):
        super().__init__(channels, eps=eps, momentum=momentum, affine=affine)
        self.ghost_batch_size = check_int(ghost_batch_size, "ghost_batch_size", type(self).__name__)

    def statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each example's ghost-batch mean and biased variance per channel: shapes ``(N, C, 1, ...)``."""
        return self._chunk_statistics(x, update=False)

    def _chunk_statistics(self, x: torch.Tensor, update: bool) -> tuple[torch.Tensor, torch.Tensor]:
        means, variances = [], []
        for chunk in torch.split(x, self.ghost_batch_size):  # (B_ghost, C, *spatial) each
            m, s2 = BatchNorm.statistics(self, chunk)  # (1, C, 1, ...)
            if update:
                self._update_running(m, s2, chunk.numel() // chunk.shape[1])
            means.append(m.expand(len(chunk), *m.shape[1:]))  # (B_ghost, C, 1, ...)
            variances.append(s2.expand(len(chunk), *s2.shape[1:]))
        return torch.cat(means), torch.cat(variances)  # (N, C, 1, ...)

    def _batch_statistics(self, x):
        return self._chunk_statistics(x, update=True)

    def _group_slices(self, shape, index):
        start = index[0] // self.ghost_batch_size * self.ghost_batch_size
        return (slice(start, start + self.ghost_batch_size), index[1])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ghost_batch_size={self.ghost_batch_size}"


# --------------------------------------------------------------------------- per-example schemes
class GroupNorm(_Normalization):
    """Group normalization (fig. 11.14d): each example's channels standardized in G groups.

    The C channels are cut into G consecutive groups of C/G; each example's group is
    standardized over its (C/G) · H · W values. γ and δ stay one per channel. G = 1
    is :class:`LayerNorm` and G = C is :class:`InstanceNorm`. Equal to
    ``torch.nn.GroupNorm(groups, channels)``. No running statistics: training and
    evaluation mode compute the same function.

    Args:
        groups: G, which must divide ``channels``.
        channels: C.
        eps: ε. Default 1e-5.
        affine: learn γ and δ per channel. Default True.

    Shape:
        ``(N, C)`` or ``(N, C, *spatial)`` -> the same shape.

    Example::

        >>> gn = GroupNorm(2, 6)
        >>> y = gn(torch.randn(4, 6, 5, 5))
        >>> y[:, :3].mean((1, 2, 3)).abs().max() < 1e-6
        tensor(True)
    """

    def __init__(self, groups: int, channels: int, *, eps: float = 1e-5, affine: bool = True):
        owner = type(self).__name__
        groups = check_int(groups, "groups", owner)
        channels = check_int(channels, "channels", owner)
        if groups > channels:  # more groups than channels: the groups are wrong whatever the width
            raise ValueError(f"The 'groups' parameter of {owner} must be at most channels = {channels}. "
                             f"Got {groups} instead.")
        if channels % groups:  # as torch.nn.GroupNorm, the width is what must fit the groups
            raise ValueError(f"The 'channels' parameter of {owner} must be a multiple of groups = {groups}. "
                             f"Got {channels} instead.")
        super().__init__(channels, eps, affine)
        self.groups = groups

    def statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each element's group mean and biased variance: shapes ``(N, C, 1, ...)``."""
        N, C, G = x.shape[0], x.shape[1], self.groups
        _check_group_size(x[0].numel() // G, type(self).__name__)
        m, s2 = _mean_var(x.reshape(N, G, -1), (2,))  # (N, G, (C/G)·spatial) -> (N, G, 1)
        per_channel = (N, C, *([1] * (x.ndim - 2)))
        m = m.repeat_interleave(C // G, dim=1).view(per_channel)  # (N, G, 1) -> (N, C, 1, ...)
        s2 = s2.repeat_interleave(C // G, dim=1).view(per_channel)
        return m, s2

    def _group_slices(self, shape, index):
        size = self.channels // self.groups
        start = index[1] // size * size
        return (index[0], slice(start, start + size))

    def extra_repr(self) -> str:
        return f"{self.groups}, {super().extra_repr()}"


class LayerNorm(GroupNorm):
    """Layer normalization (fig. 11.14c): each example standardized over all its channels and positions.

    Statistics over the C · H · W values of one example; as in the book's figure the
    learned scale γ and offset δ are one per channel (``torch.nn.LayerNorm`` over
    ``(C, H, W)`` would learn one per element instead). Equal to
    ``torch.nn.GroupNorm(1, channels)``, and on ``(N, C)`` input to
    ``torch.nn.LayerNorm(channels)``.

    Args:
        channels: C.
        eps: ε. Default 1e-5.
        affine: learn γ and δ per channel. Default True.

    Shape:
        ``(N, C)`` or ``(N, C, *spatial)`` -> the same shape.

    Example::

        >>> ln = LayerNorm(4)
        >>> ln(torch.randn(3, 4, 7)).mean((1, 2)).abs().max() < 1e-6
        tensor(True)
    """

    def __init__(self, channels: int, *, eps: float = 1e-5, affine: bool = True):
        super().__init__(1, channels, eps=eps, affine=affine)

    def extra_repr(self) -> str:
        return _Normalization.extra_repr(self)


class InstanceNorm(_Normalization):
    """Instance normalization (fig. 11.14e): each channel of each example standardized over positions.

    Statistics over the H · W values of one channel of one example, so the input
    needs at least one spatial axis. Equal to ``torch.nn.InstanceNorm1d/2d/3d``
    with ``affine=True, track_running_stats=False``: no running statistics.

    Args:
        channels: C.
        eps: ε. Default 1e-5.
        affine: learn γ and δ per channel. Default True.

    Shape:
        ``(N, C, *spatial)`` with at least one spatial axis -> the same shape.

    Example::

        >>> inorm = InstanceNorm(2)
        >>> inorm(torch.randn(3, 2, 8, 8)).mean((2, 3)).abs().max() < 1e-6
        tensor(True)
    """

    _min_dims = 3

    def __init__(self, channels: int, *, eps: float = 1e-5, affine: bool = True):
        super().__init__(channels, eps, affine)

    def statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example, per-channel mean and biased variance over positions: shapes ``(N, C, 1, ...)``."""
        dims = tuple(range(2, x.ndim))  # every spatial axis
        _check_group_size(math.prod(x.shape[2:]), type(self).__name__)
        return _mean_var(x, dims)

    def _group_slices(self, shape, index):
        return (index[0], index[1])


# --------------------------------------------------------------------------- measuring the groups
def shared_statistics(module: nn.Module, shape: Sequence[int], index: Sequence[int], *, n_probes: int = 2,
                      generator: torch.Generator | int = 0) -> torch.Tensor:
    """Measure which input elements share normalization statistics with element ``index``.

    Output i of a normalization layer, y_i = γ_c (x_i - m)/√(s² + ε) + δ_c, depends on
    another input x_j only through the statistics m and s² of i's group 𝒢, so
    ∂y_i/∂x_j is exactly zero for j outside 𝒢 and, for j in 𝒢,

        ∂y_i/∂x_j = γ_c / σ · (1[i=j] - 1/|𝒢| - ẑ_i ẑ_j / |𝒢|),   σ² = s² + ε, ẑ = (x - m)/σ,

    which vanishes only on a set of inputs of measure zero. The function therefore
    differentiates y_i with respect to the whole input (autograd, float64) at
    ``n_probes`` random Gaussian inputs and marks every j with a non-zero derivative
    in any of them. It works on a copy of the module in training mode (batch norm's
    batch statistics, the module's own running estimates untouched) with γ = 1 and
    ε = 1 when the copy has them, so that neither a zero scale nor a group of two
    values (where ẑ = ±1 makes the derivative ≈ 0 for small ε) hides a member.

    Args:
        module: a normalization layer (udl's or torch's) whose output has the
            input's shape.
        shape: the input's shape ``(N, C, *spatial)``.
        index: the element i, a tuple of ``len(shape)`` ints.
        n_probes: random inputs tried. Default 2.
        generator: draws the random inputs: a ``torch.Generator`` or an int seed. Default 0.

    Shape:
        -> a bool tensor of ``shape``, True on the elements whose values enter the
        statistics of ``index`` (``index`` included).

    Example::

        >>> mask = shared_statistics(GroupNorm(2, 4), (2, 4, 3), (1, 3, 0))
        >>> mask.sum().item(), mask[1, 2:].all().item()
        (6, True)
    """
    owner = "shared_statistics"
    check_instance(module, "module", owner, nn.Module)
    shape = _check_shape(shape, "shape", owner)
    index = _check_index(index, shape, owner)
    n_probes = check_int(n_probes, "n_probes", owner)
    generator = as_generator(generator, owner, optional=False)

    probe = copy.deepcopy(module).to(dtype=torch.float64).train()
    with torch.no_grad():
        if isinstance(getattr(probe, "weight", None), torch.Tensor):
            probe.weight.fill_(1.0)  # γ = 1: a zero scale would hide the whole group
    if isinstance(getattr(probe, "eps", None), float):
        probe.eps = 1.0
    mask = torch.zeros(shape, dtype=torch.bool)
    for _ in range(n_probes):
        x = torch.randn(shape, generator=generator, dtype=torch.float64, requires_grad=True)
        y = probe(x)
        if y.shape != x.shape:
            raise ValueError(f"The 'module' parameter of {owner} must keep the input's shape {shape}. "
                             f"Got output shape {tuple(y.shape)} instead.")
        (dy_dx,) = torch.autograd.grad(y[index], x)  # row i of the Jacobian, shaped like x
        mask |= dy_dx != 0
    return mask


# --------------------------------------------------------------------------- torch's layer, by dimension
_TORCH_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def batch_norm_layer(dims: int, channels: int) -> nn.Module:
    """Torch's batch norm (:class:`BatchNorm`'s fast equal) for a ``dims``-dimensional signal.

    The offset δ starts at 0 and the scale γ at 1 (eq. 11.10), as fig. 11.6c needs.

    Args:
        dims: 1, 2 or 3 (``nn.BatchNorm1d``, ``nn.BatchNorm2d``, ``nn.BatchNorm3d``).
        channels: C.

    Shape:
        ``(N, C, *spatial)`` -> the same, ``dims`` spatial axes (``(N, C)`` or
        ``(N, C, L)`` for ``dims=1``).

    Example::

        >>> bn = batch_norm_layer(2, 3)
        >>> type(bn).__name__, bn.weight.tolist(), bn.bias.tolist()
        ('BatchNorm2d', [1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    """
    check_choice(dims, "dims", "batch_norm_layer", (1, 2, 3))
    return _TORCH_BATCH_NORM[dims](channels)
