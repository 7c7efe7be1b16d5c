"""udl.nn.conv: the book's weighted-sum convolution against torch.nn.functional.conv1d/conv2d."""

import pytest
import torch
import torch.nn.functional as F

from udl.nn.conv import (Conv1d, Conv2d, conv1d, conv2d, conv_layer, conv_output_length, dilate_kernel,
                         sliding_windows1d, sliding_windows2d)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# (C_in, C_out, L, k, stride, padding, dilation, bias)
CONFIGS_1D = [
    (1, 1, 6, 3, 1, 1, 1, True),
    (1, 1, 6, 3, 1, 0, 1, False),  # "valid"
    (2, 3, 11, 3, 2, 1, 1, True),
    (3, 2, 12, 5, 1, 2, 1, True),
    (2, 2, 13, 3, 1, 2, 2, True),  # dilated
    (4, 5, 17, 4, 3, 0, 2, True),  # even kernel, stride and dilation together
    (2, 3, 9, 2, 1, "same", 1, True),  # even kernel 'same': extra zero on the right
    (2, 3, 9, 3, 1, "same", 3, False),
    (3, 1, 10, 4, 1, "valid", 2, True),
    (1, 2, 7, 7, 1, 0, 1, True),  # kernel as long as the input: one output
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("c_in, c_out, n, k, s, p, d, use_bias", CONFIGS_1D)
def test_conv1d_values_and_gradients_equal_torch(c_in, c_out, n, k, s, p, d, use_bias):
    g = gen(n * 31 + k)
    x = torch.randn(3, c_in, n, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_out, c_in, k, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(c_out, generator=g, dtype=torch.float64, requires_grad=True) if use_bias else None
    ours = conv1d(x, w, b, stride=s, padding=p, dilation=d)
    ref = F.conv1d(x, w, b, stride=s, padding=p, dilation=d)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    upstream = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    inputs = (x, w) + ((b,) if use_bias else ())
    g_ours = torch.autograd.grad(ours, inputs, upstream)
    g_ref = torch.autograd.grad(ref, inputs, upstream)
    for a, r in zip(g_ours, g_ref):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)


# (C_in, C_out, (H, W), kernel, stride, padding, dilation, bias)
CONFIGS_2D = [
    (1, 1, (6, 6), 3, 1, 1, 1, True),
    (3, 4, (7, 9), 3, 1, 0, 1, False),
    (3, 2, (8, 10), (3, 5), (2, 1), (1, 2), 1, True),
    (2, 3, (9, 9), 3, 2, 2, 2, True),
    (2, 2, (10, 7), (2, 4), 1, "same", (2, 1), True),
    (3, 3, (11, 8), 5, (3, 2), "valid", 1, True),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("c_in, c_out, size, k, s, p, d, use_bias", CONFIGS_2D)
def test_conv2d_values_and_gradients_equal_torch(c_in, c_out, size, k, s, p, d, use_bias):
    g = gen(sum(size))
    kh, kw = (k, k) if isinstance(k, int) else k
    x = torch.randn(2, c_in, *size, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_out, c_in, kh, kw, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(c_out, generator=g, dtype=torch.float64, requires_grad=True) if use_bias else None
    ours = conv2d(x, w, b, stride=s, padding=p, dilation=d)
    ref = F.conv2d(x, w, b, stride=s, padding=p, dilation=d)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    upstream = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    inputs = (x, w) + ((b,) if use_bias else ())
    for a, r in zip(torch.autograd.grad(ours, inputs, upstream), torch.autograd.grad(ref, inputs, upstream)):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)


def test_the_books_weighted_sum_by_hand():
    # z_i = ω1 x_{i-1} + ω2 x_i + ω3 x_{i+1} (UDL eq. 10.3), zero outside the input
    x = torch.tensor([[[2.0, -1.0, 3.0, 0.5, 4.0, -2.0]]])
    w1, w2, w3 = 0.5, -1.0, 2.0
    z = conv1d(x, torch.tensor([[[w1, w2, w3]]]), padding=1)[0, 0]
    xp = [0.0, *x[0, 0].tolist(), 0.0]
    expected = [w1 * xp[i] + w2 * xp[i + 1] + w3 * xp[i + 2] for i in range(6)]
    assert z.tolist() == pytest.approx(expected, abs=1e-6)
    valid = conv1d(x, torch.tensor([[[w1, w2, w3]]]), padding="valid")[0, 0]
    assert valid.tolist() == pytest.approx(expected[1:-1], abs=1e-6)


@pytest.mark.parametrize("n, k, s, p, d", [(6, 3, 1, 1, 1), (6, 3, 1, 0, 1), (11, 3, 2, 1, 1), (6, 5, 1, 2, 1),
                                           (13, 3, 3, 2, 2), (40, 3, 2, 0, 1), (19, 3, 2, 0, 1), (10, 4, 1, 0, 3),
                                           (7, 2, 1, "same", 1), (7, 3, 1, "valid", 2)])
def test_output_length_formula_matches_torch(n, k, s, p, d):
    out = F.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p, dilation=d)
    assert conv_output_length(n, k, s, p, d) == out.shape[-1]
    if isinstance(p, int):
        assert conv_output_length(n, k, s, p, d) == (n + 2 * p - d * (k - 1) - 1) // s + 1


def test_output_length_of_the_mnist1d_network():
    lengths = [40]
    for _ in range(3):
        lengths.append(conv_output_length(lengths[-1], 3, stride=2))
    assert lengths == [40, 19, 9, 4]


def test_dilated_kernel_equals_zero_inserted_kernel():
    g = gen(5)
    x = torch.randn(2, 3, 20, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, generator=g, dtype=torch.float64)
    big = dilate_kernel(w, 3)
    assert big.shape == (4, 3, 7)
    assert big[..., 1::3].abs().max() == 0 and big[..., 2::3].abs().max() == 0
    torch.testing.assert_close(conv1d(x, w, dilation=3, padding=3), conv1d(x, big, padding=3), rtol=0, atol=1e-12)
    x2 = torch.randn(1, 2, 9, 9, generator=g, dtype=torch.float64)
    w2 = torch.randn(3, 2, 3, 2, generator=g, dtype=torch.float64)
    torch.testing.assert_close(conv2d(x2, w2, dilation=(2, 3)), conv2d(x2, dilate_kernel(w2, (2, 3))),
                               rtol=0, atol=1e-12)


def test_sliding_windows_hold_the_inputs_each_output_weights():
    x = torch.arange(10.0).view(1, 1, 10)
    w = sliding_windows1d(x, 3, stride=2, dilation=2)
    assert w[0, 0].tolist() == [[0, 2, 4], [2, 4, 6], [4, 6, 8]]
    img = torch.arange(20.0).view(1, 1, 4, 5)
    w2 = sliding_windows2d(img, (2, 3), stride=(2, 1))
    assert w2.shape == (1, 1, 2, 3, 2, 3)
    assert w2[0, 0, 1, 2].tolist() == [[12, 13, 14], [17, 18, 19]]


@pytest.mark.parametrize("module, ref, kwargs, shape", [
    (Conv1d, torch.nn.Conv1d, dict(stride=2, padding=1, dilation=1), (2, 3, 11)),
    (Conv1d, torch.nn.Conv1d, dict(padding="same", dilation=2), (2, 3, 11)),
    (Conv2d, torch.nn.Conv2d, dict(stride=(1, 2), padding=(1, 0), dilation=(2, 1)), (2, 3, 9, 8)),
])
def test_modules_equal_torch_modules_with_the_same_parameters(module, ref, kwargs, shape):
    ours = module(3, 4, 3, generator=gen(1), **kwargs)
    theirs = ref(3, 4, 3, **kwargs)
    theirs.load_state_dict(ours.state_dict())  # same parameter names and shapes as torch
    x = torch.randn(*shape, generator=gen(2))
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_module_initialisation_is_torchs_uniform():
    layer = Conv1d(4, 6, 5, generator=gen(3))
    bound = 1 / (4 * 5) ** 0.5
    assert layer.weight.shape == (6, 4, 5) and layer.bias.shape == (6,)
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.8 * bound
    assert sum(p.numel() for p in layer.parameters()) == (4 * 5 + 1) * 6
    assert Conv2d(3, 2, 3, bias=False).bias is None


@pytest.mark.parametrize("call", [
    lambda: conv1d(torch.zeros(1, 2, 5), torch.zeros(1, 3, 3)),  # channel mismatch
    lambda: conv1d(torch.zeros(2, 5), torch.zeros(1, 2, 3)),  # not batched
    lambda: conv1d(torch.zeros(1, 1, 5), torch.zeros(1, 1, 3), torch.zeros(2)),  # bias shape
    lambda: conv1d(torch.zeros(1, 1, 2), torch.zeros(1, 1, 3)),  # kernel longer than the input
    lambda: conv1d(torch.zeros(1, 1, 5), torch.zeros(1, 1, 3), stride=2, padding="same"),
    lambda: conv1d(torch.zeros(1, 1, 5), torch.zeros(1, 1, 3), padding="full"),
    lambda: conv1d(torch.zeros(1, 1, 5), torch.zeros(1, 1, 3), dilation=0),
    lambda: conv2d(torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3), stride=(1, 2, 3)),
    lambda: conv2d(torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3)),
    lambda: conv_output_length(5, 3, padding=-1),
    lambda: conv_output_length(2, 3, dilation=1),
    lambda: dilate_kernel(torch.zeros(3), 2),
    lambda: Conv1d(1, 1, 3, padding="same", stride=2),
])
def test_bad_arguments_are_refused(call):
    with pytest.raises((ValueError, TypeError), match=r"^The '\w+' parameter of \w+"):
        call()


# --------------------------------------------------------------------------- conv_layer (torch's kernels)
@pytest.mark.parametrize("dims, spatial", [(1, (11,)), (2, (7, 6)), (3, (5, 4, 3))])
def test_conv_layer_picks_torch_by_dimension_and_keeps_the_size(dims, spatial):
    layer = conv_layer(dims, 2, 3, 3)
    assert type(layer) is {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[dims]
    assert layer.bias is None and layer.padding == (1,) * dims  # padding k // 2: "same" for odd k
    assert layer(torch.zeros(1, 2, *spatial)).shape == (1, 3, *spatial)


def test_conv_layer_stride_padding_and_bias():
    layer = conv_layer(2, 1, 4, 7, stride=2, bias=True)
    assert layer(torch.zeros(1, 1, 16, 16)).shape == (1, 4, 8, 8)  # ⌊(16 + 6 - 6 - 1)/2⌋ + 1
    assert layer.bias.shape == (4,)
    assert conv_layer(1, 1, 1, 3, padding=0)(torch.zeros(1, 1, 10)).shape == (1, 1, 8)  # "valid"


def test_conv_layer_refuses_other_dimensions():
    with pytest.raises(ValueError, match=r"^The 'dims' parameter of conv_layer must be one of 1, 2, 3\. "
                                         r"Got 4 instead\.$"):
        conv_layer(4, 1, 1, 3)
