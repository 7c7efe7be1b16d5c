"""udl.validate: the one message template, checked whole; NumPy integers are ints wherever an int is accepted."""

import re

import numpy as np
import pytest
import torch
from torch import nn

from udl.validate import (check_array, check_float, check_instance, check_int, check_ints, check_sequence, check_sizes, check_tensor,
                          is_int, is_real)


def refused(error, message):
    """pytest.raises for exactly ``message`` (the whole text, not a part of it)."""
    return pytest.raises(error, match="^" + re.escape(message) + "$")


# --------------------------------------------------------------------------- check_tensor
def test_check_tensor_returns_a_good_tensor_unchanged():
    x = torch.zeros(2, 3, 4, 5)
    assert check_tensor(x, "x", "f") is x
    assert check_tensor(x, "x", "f", ndim=4, shape=("N", 3, "H", 5), dtype="float") is x
    assert check_tensor(x, "x", "f", ndim=(3, 4), shape=(..., 5), dtype=torch.float32) is x
    assert check_tensor(torch.zeros(7, dtype=torch.int32), "labels", "f", shape=(7,), dtype="int") is not None
    assert check_tensor(torch.zeros(4), "b", "f", shape=(..., 4)) is not None  # "..." may be no axis at all
    assert check_tensor(x, "x", "f", shape=("N", "C", ...)) is x
    assert check_tensor(x, "x", "f", shape=(2, ..., 4, 5)) is x


@pytest.mark.parametrize("value, shown", [([1.0, 2.0], "list"), (np.zeros(3), "ndarray"), (3, "3"), (None, "None"),
                                          ("x", "'x'")])
def test_check_tensor_refuses_what_is_not_a_tensor(value, shown):
    with refused(TypeError, f"The 'x' parameter of Conv1d must be a torch.Tensor. Got {shown} instead."):
        check_tensor(value, "x", "Conv1d")


def test_check_tensor_dimensions():
    with refused(ValueError, "The 'x' parameter of max_pool2d must be a 4D tensor. Got shape (2, 3) instead."):
        check_tensor(torch.zeros(2, 3), "x", "max_pool2d", ndim=4)
    with refused(ValueError, "The 'x' parameter of f must be a 3D or 4D tensor. Got shape (5,) instead."):
        check_tensor(torch.zeros(5), "x", "f", ndim=(3, 4))


@pytest.mark.parametrize("shape, spec, text", [
    ((3, 41), ("N", 40), "(N, 40)"),
    ((3, 40, 1), ("N", 40), "(N, 40)"),
    ((5,), (4,), "(4,)"),
    ((2, 3), (..., 4), "(..., 4)"),
    ((), (..., 4), "(..., 4)"),
    ((2, 4), ("N", "C", "H", "W"), "(N, C, H, W)"),
    ((5,), ("N", "D", ...), "(N, D, ...)"),
    ((2, 3, 4), (2, ..., 5), "(2, ..., 5)"),
])
def test_check_tensor_shape(shape, spec, text):
    with refused(ValueError, f"The 'x' parameter of f must be a tensor of shape {text}. "
                             f"Got shape {tuple(shape)} instead."):
        check_tensor(torch.zeros(shape), "x", "f", shape=spec)


@pytest.mark.parametrize("dtype, wanted, got", [
    ("float", "a floating-point tensor", torch.zeros(2, dtype=torch.int64)),
    ("int", "an integer tensor", torch.zeros(2)),
    ("int", "an integer tensor", torch.zeros(2, dtype=torch.bool)),
    ("real", "a real tensor", torch.zeros(2, dtype=torch.bool)),
    ("real", "a real tensor", torch.zeros(2, dtype=torch.complex64)),
    (torch.int64, "a torch.int64 tensor", torch.zeros(2, dtype=torch.int32)),
])
def test_check_tensor_dtype(dtype, wanted, got):
    with refused(TypeError, f"The 'labels' parameter of f must be {wanted}. Got dtype {got.dtype} instead."):
        check_tensor(got, "labels", "f", dtype=dtype)


def test_check_tensor_dtype_kinds_accept():
    for dtype in (torch.int8, torch.int32, torch.int64, torch.uint8):
        check_tensor(torch.zeros(1, dtype=dtype), "x", "f", dtype="int")
        check_tensor(torch.zeros(1, dtype=dtype), "x", "f", dtype="real")
    for dtype in (torch.float16, torch.float32, torch.float64):
        check_tensor(torch.zeros(1, dtype=dtype), "x", "f", dtype="float")


# --------------------------------------------------------------------------- check_array
def test_check_array_gives_float64_numpy_from_lists_arrays_and_tensors():
    for value in ([0, 1, 2.5], (0, 1, 2.5), np.array([0, 1, 2.5], dtype=np.float32), torch.tensor([0, 1, 2.5])):
        got = check_array(value, "x", "f")
        assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.tolist() == [0.0, 1.0, 2.5]
    grid = np.linspace(0, 1, 5)
    assert check_array(grid, "x", "f", min_size=5, increasing=True) is grid
    surface = check_array(torch.ones(3, 4, dtype=torch.float64, requires_grad=True), "s", "f", ndim=2, min_size=3)
    assert surface.shape == (3, 4) and surface.sum() == 12.0


@pytest.mark.parametrize("value, shown", [("abc", "'abc'"), (None, "None"), (3.0, "3.0"), ({1: 2}, "dict"),
                                          (["a", "b"], "list"), ([[1, 2], [3]], "list")])
def test_check_array_refuses_what_is_not_an_array_of_numbers(value, shown):
    with refused(TypeError, f"The 'x_test' parameter of decompose must be a 1D array of floats. Got {shown} instead."):
        check_array(value, "x_test", "decompose")


@pytest.mark.parametrize("value, kwargs, wanted, got", [
    (np.zeros((2, 2)), {}, "a non-empty 1D array of finite floats", "shape (2, 2)"),
    ([], {}, "a non-empty 1D array of finite floats", "shape (0,)"),
    ([0.0, np.nan], {}, "a non-empty 1D array of finite floats", "nan at index 1"),
    ([0.0, 1.0], dict(min_size=3), "a 1D array of at least 3 finite floats", "shape (2,)"),
    (np.zeros(9), dict(ndim=2, min_size=3), "a 2D array of finite floats, at least 3x3", "shape (9,)"),
    (np.zeros((2, 5)), dict(ndim=2, min_size=3), "a 2D array of finite floats, at least 3x3", "shape (2, 5)"),
    ([[0, 1, 2], [0, np.inf, 2], [0, 1, 2]], dict(ndim=2, min_size=3), "a 2D array of finite floats, at least 3x3",
     "inf at index (1, 1)"),
    ([0.0, 0.5, 0.5, 1.0], dict(increasing=True), "strictly increasing", "0.5 then 0.5 at index 1"),
])
def test_check_array_shape_finiteness_and_order_in_the_template(value, kwargs, wanted, got):
    with refused(ValueError, f"The 'x' parameter of f must be {wanted}. Got {got} instead."):
        check_array(value, "x", "f", **kwargs)


# --------------------------------------------------------------------------- check_instance
def test_check_instance_returns_the_value():
    f = nn.ReLU()
    assert check_instance(f, "f", "Residual", nn.Module) is f
    assert check_instance(3, "n", "f", (int, str)) == 3


@pytest.mark.parametrize("value, types, wanted, shown", [
    (3, nn.Module, "a torch.nn.Module", "3"),
    (nn.Identity(), nn.Sequential, "a torch.nn.Sequential", "Identity"),
    ([1], tuple, "a tuple", "list"),
    ("seed", torch.Generator, "a torch.Generator", "'seed'"),
    (None, (torch.Tensor, np.ndarray), "a torch.Tensor or a numpy.ndarray", "None"),
    (2.5, int, "an int", "2.5"),
])
def test_check_instance_refuses_with_the_template(value, types, wanted, shown):
    with refused(TypeError, f"The 'blocks' parameter of mean_squares must be {wanted}. Got {shown} instead."):
        check_instance(value, "blocks", "mean_squares", types)


def test_check_instance_names_a_udl_class_by_its_name():
    from udl.models.yolo import YOLOConfig

    with refused(TypeError, "The 'config' parameter of YOLOLoss must be a YOLOConfig. Got 'tiny' instead."):
        check_instance("tiny", "config", "YOLOLoss", YOLOConfig)


# --------------------------------------------------------------------------- check_sequence
def test_check_sequence_takes_lists_and_tuples_and_refuses_strings():
    assert check_sequence([1, 2], "boxes", "f") == [1, 2]
    assert check_sequence((), "boxes", "f") == ()
    for value, shown in (("abc", "'abc'"), (b"ab", "bytes"), (torch.zeros(2), "Tensor"), (None, "None"), ({1}, "set")):
        with refused(TypeError, f"The 'boxes' parameter of encode_targets must be a list of tensors, one per image. "
                                f"Got {shown} instead."):
            check_sequence(value, "boxes", "encode_targets", of="tensors, one per image")


# --------------------------------------------------------------------------- ints, NumPy's included
NUMPY_INTS = [np.int8(3), np.int16(3), np.int32(3), np.int64(3), np.uint8(3), np.uint64(3)]


@pytest.mark.parametrize("value", [3, *NUMPY_INTS], ids=lambda v: type(v).__name__)
def test_check_int_takes_numpy_integers_and_returns_a_python_int(value):
    got = check_int(value, "k", "f")
    assert got == 3 and type(got) is int
    assert is_int(value) and is_real(value)
    assert check_ints(value, "kernel_size", "Conv2d", 2) == (3, 3)
    assert all(type(v) is int for v in check_ints((value, value), "kernel_size", "Conv2d", 2))
    assert check_sizes([value, 1], "widths", "f") == (3, 1) and type(check_sizes([value], "widths", "f")[0]) is int
    assert check_float(value, "lr", "f") == 3.0 and type(check_float(value, "lr", "f")) is float


@pytest.mark.parametrize("value", [True, np.bool_(True), 3.0, np.float64(3.0), "3", None], ids=repr)
def test_check_int_refuses_bools_floats_and_strings(value):
    assert not is_int(value)
    with refused(TypeError, f"The 'k' parameter of f must be an int. Got {value!r} instead."):
        check_int(value, "k", "f")


def test_check_int_bounds_in_the_template():
    with refused(ValueError, "The 'k' parameter of f must be a positive int. Got 0 instead."):
        check_int(np.int64(0), "k", "f")
    with refused(ValueError, "The 'k' parameter of f must be a non-negative int. Got -1 instead."):
        check_int(-1, "k", "f", minimum=0)
    with refused(ValueError, "The 'state' parameter of f must be an int in [0, 10]. Got 11 instead."):
        check_int(np.int32(11), "state", "f", minimum=0, maximum=10)
    assert check_int(np.int32(10), "state", "f", minimum=0, maximum=10) == 10
    assert check_int(-5, "k", "f", minimum=None) == -5


def test_check_float_takes_numpy_numbers_and_refuses_bools():
    assert check_float(np.float32(0.5), "p", "f", low=0.0, high=1.0) == 0.5
    with refused(TypeError, "The 'p' parameter of f must be a float. Got True instead."):
        check_float(True, "p", "f")


def test_public_entry_points_take_numpy_integers():
    from udl.models.resnet import ResNet, ResNetConfig
    from udl.nn.conv import Conv1d
    from udl.nn.deep import DeepNetwork
    from udl.nn.dropout import dropout_mask
    from udl.rl.penguin import PenguinEnv

    i = np.int64
    config = ResNetConfig.tiny(stages=(i(1), i(1)), widths=(i(4), i(8)))
    assert all(type(s) is int for s in config.stages)
    assert sum(p.numel() for p in ResNet(config, generator=i(0)).parameters()) > 0
    conv = Conv1d(i(2), i(3), i(3))
    assert conv.weight.shape == (3, 2, 3)
    assert DeepNetwork([i(3), i(4), i(2)])(torch.zeros(5, 3)).shape == (5, 2)
    assert dropout_mask((i(2), i(5)), 0.5, generator=i(0)).shape == (2, 5)
    assert PenguinEnv(max_steps=i(4)).max_steps == 4
