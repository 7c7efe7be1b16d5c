"""Argument checks for public entry points, with one message template.

    ValueError: The 'stride' parameter of Conv1d must be a positive int. Got 0 instead.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any, Iterable, Sequence


def _refuse(name: str, owner: str, wanted: str, shown: str, error=ValueError):
    """Raise the one template; ``shown`` is what was got, already written out."""
    raise error(f"The {name!r} parameter of {owner} must be {wanted}. Got {shown} instead.")


def _fail(name: str, owner: str, wanted: str, value: Any, error=ValueError):
    _refuse(name, owner, wanted, repr(value), error)


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer as udl accepts one: Python's or NumPy's (``np.int64``...), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number as udl accepts one: an int or float, Python's or NumPy's, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(value: Any, name: str, owner: str, *, minimum: int | None = 1, maximum: int | None = None) -> int:
    """An int (not a bool; NumPy integers too) in [``minimum``, ``maximum``], returned as a Python int.

    ``minimum`` is 1 by default (a positive int); None for either bound means no bound.

    Example::

        >>> import numpy as np
        >>> check_int(np.int64(3), "k", "f"), type(check_int(np.int64(3), "k", "f"))
        (3, <class 'int'>)
    """
    if not is_int(value):
        _fail(name, owner, "an int", value, TypeError)
    value = int(value)
    if maximum is not None and (value > maximum or (minimum is not None and value < minimum)):
        _fail(name, owner, f"an int in [{minimum}, {maximum}]" if minimum is not None else f"an int <= {maximum}",
              value)
    if minimum is not None and value < minimum:
        wanted = {1: "a positive int", 0: "a non-negative int"}.get(minimum, f"an int >= {minimum}")
        _fail(name, owner, wanted, value)
    return value


def check_float(value: Any, name: str, owner: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number (Python's or NumPy's, not a bool) within the given bounds (closed unless ``*_open``)."""
    if not is_real(value):
        _fail(name, owner, "a float", value, TypeError)
    value = float(value)
    bad = not math.isfinite(value)
    bad |= low is not None and (value <= low if low_open else value < low)
    bad |= high is not None and (value >= high if high_open else value > high)
    if bad:
        left = "" if low is None else f"{'(' if low_open else '['}{low:g}"
        right = "" if high is None else f"{high:g}{')' if high_open else ']'}"
        wanted = f"a float in {left or '(-inf'}, {right or 'inf)'}" if (low is not None or high is not None) \
            else "a finite float"
        _fail(name, owner, wanted, value)
    return value


def check_choice(value: Any, name: str, owner: str, choices: Iterable[Any]) -> Any:
    """One of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        _fail(name, owner, "one of " + ", ".join(map(repr, choices)), value)
    return value


def check_sizes(value: Any, name: str, owner: str, *, min_len: int = 1) -> tuple[int, ...]:
    """A sequence of positive ints (layer widths) with at least ``min_len`` entries, as a tuple of Python ints."""
    if not isinstance(value, (list, tuple)) or len(value) < min_len or any(not is_int(v) or v < 1 for v in value):
        wanted = {0: "a list of positive ints", 1: "a non-empty list of positive ints"}.get(
            min_len, f"a list of at least {min_len} positive ints")
        _fail(name, owner, wanted, value,
              TypeError if not isinstance(value, (list, tuple)) else ValueError)
    return tuple(int(v) for v in value)


def check_ints(value: Any, name: str, owner: str, n: int, *, minimum: int | None = 1) -> tuple[int, ...]:
    """An int, or a sequence of ``n`` ints, each >= ``minimum``; returned as an ``n``-tuple.

    For per-axis settings such as a kernel size: ``3 -> (3, 3)``, ``(3, 5) -> (3, 5)``.
    """
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            _fail(name, owner, f"an int or a sequence of {n} ints", value)
        return tuple(check_int(v, name, owner, minimum=minimum) for v in value)
    return (check_int(value, name, owner, minimum=minimum),) * n


def as_generator(value: Any, owner: str, name: str = "generator", *, optional: bool = True):
    """The ``generator=`` argument of udl's constructors and stochastic functions, as a ``torch.Generator``.

    The one convention for randomness: a keyword-only ``generator=`` that takes a
    ``torch.Generator`` (drawn from, so consecutive calls continue its stream) or an
    int seed, sugar for ``torch.Generator().manual_seed(seed)`` (NumPy integers too).
    None means torch's global generator and is accepted only when ``optional``.

    Returns:
        The generator, a new one seeded with the int, or None.

    Example::

        >>> as_generator(3, "f").initial_seed(), as_generator(None, "f")
        (3, None)
    """
    import torch

    if value is None and optional:
        return None
    if isinstance(value, torch.Generator):
        return value
    wanted = "a torch.Generator, an int seed or None" if optional else "a torch.Generator or an int seed"
    if not is_int(value):
        _fail(name, owner, wanted, value, TypeError)
    if not 0 <= value < 2 ** 64:  # the seeds torch accepts
        _fail(name, owner, "a torch.Generator or an int seed in [0, 2**64)", value)
    return torch.Generator().manual_seed(int(value))


def check_callable(value: Any, name: str, owner: str, *, optional: bool = False) -> None:
    """A function (or None when ``optional``)."""
    if optional and value is None:
        return
    if not callable(value):
        _fail(name, owner, "callable or None" if optional else "callable", value, TypeError)


def check_bool(value: Any, name: str, owner: str) -> bool:
    """A bool (not an int standing in for one)."""
    if not isinstance(value, bool):
        _fail(name, owner, "a bool", value, TypeError)
    return value


def _shown(value: Any) -> str:
    """A refused value in a message: its repr for a plain value, its type's name for anything else."""
    return repr(value) if value is None or isinstance(value, (numbers.Number, str)) else type(value).__name__


def _class_name(cls: type) -> str:
    """The name a reader writes: ``int``, ``torch.Tensor``, ``torch.nn.Module``, ``numpy.ndarray``, ``YOLOConfig``."""
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    if module.startswith("torch.nn.modules"):
        return f"torch.nn.{cls.__qualname__}"
    top = sys.modules.get(module.split(".")[0])
    if top is not None and top.__name__ in ("torch", "numpy") and getattr(top, cls.__name__, None) is cls:
        return f"{top.__name__}.{cls.__name__}"
    return cls.__qualname__


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def check_instance(value: Any, name: str, owner: str, types: type | tuple[type, ...]) -> Any:
    """An instance of ``types`` (a class or a tuple of classes).

    Example::

        >>> check_instance([1], "blocks", "mean_squares", tuple)
        Traceback (most recent call last):
        TypeError: The 'blocks' parameter of mean_squares must be a tuple. Got list instead.
    """
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types):
        _refuse(name, owner, " or ".join(_a(_class_name(t)) for t in types), _shown(value), TypeError)
    return value


def check_sequence(value: Any, name: str, owner: str, *, of: str = "items") -> Any:
    """A list, tuple or other sequence, but not a str: ``of`` says what it holds, for the message.

    Example::

        >>> check_sequence("abc", "boxes", "encode_targets", of="tensors, one per image")
        Traceback (most recent call last):
        TypeError: The 'boxes' parameter of encode_targets must be a list of tensors, one per image. Got 'abc' instead.
    """
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        _refuse(name, owner, f"a list of {of}", _shown(value), TypeError)
    return value


_DTYPE_KINDS = {"float": "a floating-point tensor", "int": "an integer tensor", "real": "a real tensor"}


def _dtype_is(dtype, wanted) -> bool:
    import torch

    if wanted == "float":
        return dtype.is_floating_point
    if wanted == "int":
        return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)
    if wanted == "real":
        return not (dtype.is_complex or dtype == torch.bool)
    return dtype == wanted


def _shape_is(actual: tuple[int, ...], shape: tuple) -> bool:
    if Ellipsis in shape:  # (..., 4) or (N, D, ...): any number of axes there
        cut = shape.index(Ellipsis)
        head, tail = shape[:cut], shape[cut + 1:]
        if len(actual) < len(head) + len(tail):
            return False
        return _shape_is(actual[:len(head)], head) and _shape_is(actual[len(actual) - len(tail):], tail)
    return len(actual) == len(shape) and all(isinstance(want, str) or got == want for got, want in zip(actual, shape))


def _shape_text(shape: tuple) -> str:
    parts = ["..." if s is Ellipsis else str(s) for s in shape]
    return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"


def check_tensor(value: Any, name: str, owner: str, *, ndim: int | tuple[int, ...] | None = None,
                 shape: tuple | None = None, dtype=None):
    """A ``torch.Tensor``, with as many dimensions, such a shape and such a dtype as asked for.

    Args:
        value, name, owner: the argument, its name and the function or class it goes to.
        ndim: the number of dimensions, or a tuple of the numbers allowed. Default: any.
        shape: one entry per dimension: an int (that size) or a str (any size, named in
            the message: ``("N", 40)``); one ``...`` stands for any number of axes:
            ``(..., 4)``, ``("N", "C", ...)``. Default: any.
        dtype: a ``torch.dtype``, or a kind: ``"float"`` (floating point), ``"int"``
            (integers, not bool) or ``"real"`` (neither complex nor bool). Default: any.

    Returns:
        ``value``, unchanged.

    Raises:
        TypeError: not a tensor, or the wrong dtype. ValueError: the wrong dimensions or shape.

    Example::

        >>> import torch
        >>> check_tensor(torch.zeros(3, 41), "x", "ConvNet1D", shape=("N", 40))
        Traceback (most recent call last):
        ValueError: The 'x' parameter of ConvNet1D must be a tensor of shape (N, 40). Got shape (3, 41) instead.
    """
    import torch

    if not isinstance(value, torch.Tensor):
        _refuse(name, owner, "a torch.Tensor", _shown(value), TypeError)
    if dtype is not None and not _dtype_is(value.dtype, dtype):
        wanted = _DTYPE_KINDS[dtype] if isinstance(dtype, str) else f"a {dtype} tensor"
        _refuse(name, owner, wanted, f"dtype {value.dtype}", TypeError)
    if ndim is not None and value.dim() not in (ndim if isinstance(ndim, tuple) else (ndim,)):
        allowed = " or ".join(f"{n}D" for n in (ndim if isinstance(ndim, tuple) else (ndim,)))
        _refuse(name, owner, f"a {allowed} tensor", f"shape {tuple(value.shape)}")
    if shape is not None and not _shape_is(tuple(value.shape), tuple(shape)):
        _refuse(name, owner, f"a tensor of shape {_shape_text(tuple(shape))}", f"shape {tuple(value.shape)}")
    return value


def check_input(value: Any, name: str, owner: str, *, shape: tuple, dtype):
    """The input of a module whose weights have ``dtype``: a tensor of that dtype and ``shape`` (as :func:`check_tensor`).

    Under ``torch.autocast`` on the tensor's device any floating-point dtype is accepted:
    autocast casts the operands of each operation itself. A forward pass calls this only
    when its own quick comparison of shape and dtype fails, so the fast path pays nothing.

    Example::

        >>> import torch
        >>> check_input(torch.zeros(2, 3, dtype=torch.float64), "x", "DeepNetwork", shape=(..., 3), dtype=torch.float32)
        Traceback (most recent call last):
        TypeError: The 'x' parameter of DeepNetwork must be a torch.float32 tensor. Got dtype torch.float64 instead.
    """
    check_tensor(value, name, owner)
    if value.dtype != dtype and not (value.dtype.is_floating_point and is_autocasting(value.device.type)):
        check_tensor(value, name, owner, dtype=dtype)
    return check_tensor(value, name, owner, shape=shape)


def is_autocasting(device_type: str) -> bool:
    """Whether ``torch.autocast`` is on for ``device_type`` ("cpu", "cuda"...); False for a device it does not know."""
    import torch

    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:  # a device autocast does not know, such as "meta"
        return False


def check_array(value: Any, name: str, owner: str, *, ndim: int = 1, min_size: int = 1, increasing: bool = False):
    """Finite numbers in ``ndim`` dimensions (a NumPy array, list, tuple or tensor), as a float64 NumPy array.

    For grids and sampled functions given as data: a tensor is detached and copied
    to the CPU, anything else goes through ``np.asarray(value, dtype=np.float64)``.

    Args:
        value, name, owner: the argument, its name and the function or class it goes to.
        ndim: the number of dimensions. Default 1.
        min_size: the least length of every axis. Default 1 (not empty).
        increasing: each entry must exceed the one before (a grid); only for ``ndim=1``.
            Default False.

    Returns:
        The values, a new float64 ``np.ndarray`` (or ``value`` itself when it is one).

    Raises:
        TypeError: not an array, list, tuple or tensor of numbers. ValueError: the wrong
        number of dimensions, an axis shorter than ``min_size``, a value that is not
        finite, or (``increasing``) a step that does not go up.

    Example::

        >>> check_array([[0, 1, 2]] * 2, "surface", "surface_roughness", ndim=2, min_size=3)
        Traceback (most recent call last):
        ValueError: The 'surface' parameter of surface_roughness must be a 2D array of finite floats, at least 3x3. Got shape (2, 3) instead.
    """
    import numpy as np
    import torch

    assert ndim >= 1 and min_size >= 1 and not (increasing and ndim != 1), "check_array: unsupported request"
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    wanted_type = f"a {ndim}D array of floats"
    if not isinstance(value, (np.ndarray, list, tuple)):
        _refuse(name, owner, wanted_type, _shown(value), TypeError)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):  # strings, None, ragged lists
        _refuse(name, owner, wanted_type, _shown(value), TypeError)
    if min_size == 1:
        wanted = f"a non-empty {ndim}D array of finite floats"
    elif ndim == 1:
        wanted = f"a 1D array of at least {min_size} finite floats"
    else:
        wanted = f"a {ndim}D array of finite floats, at least {'x'.join([str(min_size)] * ndim)}"
    if array.ndim != ndim or min(array.shape) < min_size:
        _refuse(name, owner, wanted, f"shape {array.shape}")
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        where = tuple(int(i) for i in bad[0])
        _refuse(name, owner, wanted, f"{float(array[where])} at index {where[0] if ndim == 1 else where}")
    if increasing and not np.all(np.diff(array) > 0):
        i = int(np.argmax(np.diff(array) <= 0))
        _refuse(name, owner, "strictly increasing", f"{array[i]:g} then {array[i + 1]:g} at index {i}")
    return array


def check_config(config: Any, name: str, owner: str, cls: type, presets: Iterable[str], make) -> Any:
    """An instance of the config dataclass ``cls``, or a preset's name (built by ``make(name)``)."""
    presets = tuple(presets)
    if isinstance(config, str):
        if config not in presets:
            _fail(name, owner, f"a {cls.__name__} or one of " + ", ".join(map(repr, presets)), config)
        return make(config)
    if not isinstance(config, cls):
        _fail(name, owner, f"a {cls.__name__} or a preset name", config, TypeError)
    return config
