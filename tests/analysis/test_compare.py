"""udl.analysis.compare.max_difference: the largest |a - b|, for tensors and arrays."""

import math

import numpy as np
import pytest
import torch

from udl.analysis.compare import max_difference


def test_the_largest_gap_of_tensors_arrays_and_mixtures():
    a = torch.tensor([[1.0, -2.0], [3.0, 4.0]], dtype=torch.float64)
    b = torch.tensor([[1.5, -2.0], [0.0, 4.25]], dtype=torch.float64)
    assert max_difference(a, b) == 3.0
    assert max_difference(a.numpy(), b.numpy()) == 3.0
    assert max_difference(a, b.numpy()) == 3.0
    assert max_difference(2.0, 1.25) == 0.75
    assert isinstance(max_difference(a, b), float)


def test_gradients_are_detached_and_equal_inputs_give_zero():
    x = torch.randn(3, 4, requires_grad=True)
    assert max_difference(x * 2, x + x) == 0.0


def test_empty_inputs_give_zero_and_nan_propagates():
    assert max_difference(torch.zeros(0, 3), torch.zeros(0, 3)) == 0.0
    assert math.isnan(max_difference(torch.tensor([0.0, float("nan")]), torch.zeros(2)))


def test_shapes_must_match():
    with pytest.raises(ValueError, match=r"^The 'b' parameter of max_difference must have the shape of a, \(3,\)\. "
                                         r"Got \(1, 3\) instead\.$"):
        max_difference(np.zeros(3), np.zeros((1, 3)))
