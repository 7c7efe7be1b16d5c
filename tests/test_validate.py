"""udl.validate: the one message template, checked whole, for check_tensor, check_instance and check_sequence."""

import re

import numpy as np
import pytest
import torch
from torch import nn

from udl.validate import check_instance, check_sequence, check_tensor


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
