"""udl.nn.normalization: the five schemes of fig. 11.14 against torch, and the measured statistics groups."""

import copy

import pytest
import torch
from torch import nn

from udl.nn.normalization import (BatchNorm, GhostBatchNorm, GroupNorm, InstanceNorm, LayerNorm,
                                  batch_norm_layer, shared_statistics)

# float32: 2e-6 (≈ 16 ulp; a few float32 round-offs of the same sums in another order), float64: 1e-12
TOL = {torch.float32: 2e-6, torch.float64: 1e-12}
SHAPES = {0: (6, 4), 1: (5, 4, 7), 2: (4, 4, 3, 5), 3: (3, 4, 2, 3, 2)}  # spatial dims -> (N, C=4, *spatial)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def randn(shape, seed, dtype):
    return torch.randn(shape, generator=gen(seed), dtype=dtype)


def torch_batch_norm(dims, c):
    return {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims](c)


def torch_instance_norm(dims, c):
    return {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[dims](c, affine=True)


def pair(scheme, dims):
    """(udl module, torch module computing the same function)."""
    c = 4
    return {"batch": lambda: (BatchNorm(c), torch_batch_norm(dims, c)),
            "layer": lambda: (LayerNorm(c), nn.GroupNorm(1, c)),
            "group": lambda: (GroupNorm(2, c), nn.GroupNorm(2, c)),
            "instance": lambda: (InstanceNorm(c), torch_instance_norm(dims, c))}[scheme]()


def same_random_affine(mine, ref, dtype, seed=1):
    mine.to(dtype), ref.to(dtype)
    with torch.no_grad():
        for name in ("weight", "bias"):
            value = randn(len(mine.weight), seed + len(name), dtype) * 0.5 + (1.0 if name == "weight" else 0.0)
            getattr(mine, name).copy_(value)
            getattr(ref, name).copy_(value)


def outputs_and_gradients(module, x, upstream):
    """y = module(x) and the gradients of <y, upstream> w.r.t. x, γ and δ."""
    x = x.clone().requires_grad_()
    y = module(x)
    grads = torch.autograd.grad((y * upstream).sum(), [x, module.weight, module.bias])
    return [y.detach(), *grads]


def assert_all_close(ours, theirs, tol):
    """Each pair within ``tol · max(1, max|reference|)``: γ and δ gradients are sums of |G| terms of size ~1."""
    for a, b in zip(ours, theirs, strict=True):
        scale = max(1.0, b.abs().max().item())
        assert (a - b).abs().max().item() <= tol * scale


CASES = [(s, d) for s in ("batch", "layer", "group", "instance") for d in SHAPES if not (s == "instance" and d == 0)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scheme, dims", CASES)
def test_values_and_gradients_equal_torch_in_training_mode(scheme, dims, dtype):
    mine, ref = pair(scheme, dims)
    same_random_affine(mine, ref, dtype)
    x = randn(SHAPES[dims], 2, dtype) * 3 + 1
    upstream = randn(SHAPES[dims], 3, dtype)
    assert_all_close(outputs_and_gradients(mine.train(), x, upstream),
                     outputs_and_gradients(ref.train(), x, upstream), TOL[dtype])


def test_layer_norm_on_vectors_equals_torch_layer_norm():
    mine, ref = LayerNorm(5).double(), nn.LayerNorm(5).double()
    same_random_affine_5 = randn(5, 4, torch.float64)
    with torch.no_grad():
        mine.weight.copy_(same_random_affine_5), ref.weight.copy_(same_random_affine_5)
        mine.bias.copy_(-same_random_affine_5), ref.bias.copy_(-same_random_affine_5)
    x, up = randn((7, 5), 5, torch.float64), randn((7, 5), 6, torch.float64)
    assert_all_close(outputs_and_gradients(mine, x, up), outputs_and_gradients(ref, x, up), 1e-12)


@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
@pytest.mark.parametrize("dims", [0, 2])
def test_batch_norm_running_statistics_and_eval_mode_equal_torch(momentum, dims):
    dtype = torch.float64
    mine, ref = BatchNorm(4, momentum=momentum), torch_batch_norm(dims, 4)
    ref.momentum = momentum
    same_random_affine(mine, ref, dtype)
    for step in range(5):
        x = randn(SHAPES[dims], 10 + step, dtype) * (1 + step) + step  # drifting statistics
        mine(x), ref(x)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(mine, name), getattr(ref, name), rtol=1e-12, atol=1e-12)
    assert int(mine.num_batches_tracked) == 5
    x, up = randn(SHAPES[dims], 20, dtype), randn(SHAPES[dims], 21, dtype)
    assert_all_close(outputs_and_gradients(mine.eval(), x, up), outputs_and_gradients(ref.eval(), x, up), 1e-12)
    # evaluation mode uses the running estimates and leaves them alone
    expected = (x - mine.running_mean.view(1, -1, *[1] * dims)) / torch.sqrt(
        mine.running_var.view(1, -1, *[1] * dims) + 1e-5)
    expected = expected * mine.weight.view(1, -1, *[1] * dims) + mine.bias.view(1, -1, *[1] * dims)
    torch.testing.assert_close(mine(x), expected, rtol=1e-12, atol=1e-12)
    assert int(mine.num_batches_tracked) == 5


def test_running_variance_is_the_unbiased_batch_variance():
    bn = BatchNorm(3, momentum=1.0)
    x = randn((4, 3, 5), 7, torch.float64)
    bn.double()(x)
    torch.testing.assert_close(bn.running_mean, x.mean((0, 2)))
    torch.testing.assert_close(bn.running_var, x.transpose(0, 1).reshape(3, -1).var(1, unbiased=True))


def test_state_dict_names_match_torch_and_load_both_ways():
    ref = nn.BatchNorm2d(3)
    ref(torch.randn(4, 3, 2, 2))
    mine = BatchNorm(3)
    assert list(mine.state_dict()) == list(ref.state_dict())
    mine.load_state_dict(ref.state_dict())
    torch.testing.assert_close(mine.running_var, ref.running_var)
    assert list(GroupNorm(2, 4).state_dict()) == list(nn.GroupNorm(2, 4).state_dict())
    assert list(InstanceNorm(4).state_dict()) == list(nn.InstanceNorm2d(4, affine=True).state_dict())
    assert list(GhostBatchNorm(3, 2).state_dict()) == list(ref.state_dict())


@pytest.mark.parametrize("n, ghost", [(8, 2), (7, 3), (4, 4), (3, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ghost_batch_norm_is_batch_norm_applied_chunk_by_chunk(n, ghost, dtype):
    shape = (n, 4, 3, 2)
    mine, ref = GhostBatchNorm(4, ghost, momentum=0.3), nn.BatchNorm2d(4, momentum=0.3)
    same_random_affine(mine, ref, dtype)

    plain_forward = ref.forward
    ref.forward = lambda x: torch.cat([plain_forward(chunk) for chunk in torch.split(x, ghost)])  # chunk by chunk
    for step in range(3):
        x, up = randn(shape, 30 + step, dtype) * 2 + step, randn(shape, 40 + step, dtype)
        assert_all_close(outputs_and_gradients(mine.train(), x, up), outputs_and_gradients(ref.train(), x, up),
                         TOL[dtype])
    chunks = -(-n // ghost)
    assert int(mine.num_batches_tracked) == int(ref.num_batches_tracked) == 3 * chunks
    torch.testing.assert_close(mine.running_mean, ref.running_mean, rtol=TOL[dtype], atol=TOL[dtype])
    torch.testing.assert_close(mine.running_var, ref.running_var, rtol=TOL[dtype], atol=TOL[dtype])
    ref.forward = plain_forward
    x = randn(shape, 50, dtype)
    torch.testing.assert_close(mine.eval()(x), ref.eval()(x), rtol=TOL[dtype], atol=TOL[dtype])


def test_ghost_statistics_are_each_chunks_batch_statistics():
    x = randn((6, 3, 4), 8, torch.float64)
    m, s2 = GhostBatchNorm(3, 2).statistics(x)
    assert m.shape == s2.shape == (6, 3, 1)
    for k in range(3):
        chunk = x[2 * k:2 * k + 2]
        for row in (2 * k, 2 * k + 1):
            torch.testing.assert_close(m[row, :, 0], chunk.mean((0, 2)))
            torch.testing.assert_close(s2[row, :, 0], chunk.var((0, 2), unbiased=False))


@pytest.mark.parametrize("module", [LayerNorm(4), GroupNorm(2, 4), InstanceNorm(4)])
def test_per_example_schemes_are_the_same_in_train_and_eval_mode(module):
    x = randn((3, 4, 5), 9, torch.float32)
    torch.testing.assert_close(module.train()(x), module.eval()(x), rtol=0, atol=0)
    assert not list(module.buffers())


MODULES = {"batch": lambda: BatchNorm(6), "ghost": lambda: GhostBatchNorm(6, 2), "layer": lambda: LayerNorm(6),
           "group": lambda: GroupNorm(3, 6), "instance": lambda: InstanceNorm(6)}


def expected_group(scheme, shape, index):
    """The statistics group of ``index`` written out from the definitions (fig. 11.14)."""
    n, c = index[:2]
    mask = torch.zeros(shape, dtype=torch.bool)
    if scheme == "batch":
        mask[:, c] = True
    elif scheme == "ghost":
        mask[n // 2 * 2:n // 2 * 2 + 2, c] = True
    elif scheme == "layer":
        mask[n] = True
    elif scheme == "group":
        mask[n, c // 2 * 2:c // 2 * 2 + 2] = True  # 3 groups of 2 channels
    else:
        mask[n, c] = True
    return mask


@pytest.mark.parametrize("shape, index", [((8, 6, 4, 4), (3, 2, 1, 0)), ((5, 6, 7), (4, 5, 6)),
                                          ((4, 6, 2, 3, 2), (0, 0, 1, 2, 1))])
@pytest.mark.parametrize("scheme", list(MODULES))
def test_measured_statistics_groups_are_the_reduction_axes(scheme, shape, index):
    module = MODULES[scheme]()
    measured = shared_statistics(module, shape, index)
    expected = expected_group(scheme, shape, index)
    assert torch.equal(measured, expected)
    assert torch.equal(module.group_of(shape, index), expected)
    spatial = int(torch.tensor(shape[2:]).prod())
    size = {"batch": shape[0], "ghost": min(2, shape[0] - index[0] // 2 * 2), "layer": 6, "group": 2, "instance": 1}[scheme]
    assert measured.sum().item() == size * spatial


def test_batch_norm_groups_on_vectors_and_groups_of_two_values():
    # N = 2 and no spatial axes: ẑ = ±1 makes ∂y_i/∂x_j vanish when ε → 0; the measurement still finds both
    assert torch.equal(shared_statistics(BatchNorm(3), (2, 3), (1, 2)),
                       torch.tensor([[False, False, True], [False, False, True]]))
    assert torch.equal(shared_statistics(LayerNorm(3), (2, 3), (0, 1)),
                       torch.tensor([[True, True, True], [False, False, False]]))


@pytest.mark.parametrize("module, scheme", [(nn.BatchNorm2d(6), "batch"), (nn.GroupNorm(1, 6), "layer"),
                                            (nn.GroupNorm(3, 6), "group"), (nn.InstanceNorm2d(6), "instance")])
def test_measures_torch_modules_too(module, scheme):
    shape, index = (4, 6, 3, 3), (2, 3, 0, 2)
    assert torch.equal(shared_statistics(module, shape, index), expected_group(scheme, shape, index))


def test_measurement_leaves_the_module_alone_and_sees_through_zero_scales():
    bn = BatchNorm(3).eval()
    with torch.no_grad():
        bn.weight.zero_()  # γ = 0: the output does not depend on x at all
        bn.running_mean.fill_(2.0)
    mask = shared_statistics(bn, (4, 3, 2), (1, 0, 1))
    assert mask.sum().item() == 8 and mask[:, 0].all()
    assert not bn.training and bn.weight.abs().sum() == 0 and (bn.running_mean == 2.0).all()
    assert int(bn.num_batches_tracked) == 0


@pytest.mark.parametrize("scheme", list(MODULES))
def test_outputs_have_zero_mean_and_unit_variance_over_each_group(scheme):
    module = MODULES[scheme]().double()
    x = randn((4, 6, 3, 3), 11, torch.float64) * 5 - 3
    y = module(x)
    for index in [(0, 0, 0, 0), (3, 5, 2, 1), (2, 3, 1, 1)]:
        group = y[module.group_of(x.shape, index)]
        assert abs(group.mean().item()) < 1e-12
        s2 = x[module.group_of(x.shape, index)].var(unbiased=False).item()
        assert group.var(unbiased=False).item() == pytest.approx(s2 / (s2 + 1e-5), rel=1e-12)


def test_ghost_batch_means_vary_more_by_the_square_root_of_the_batch_ratio():
    n, ghost, repeats = 16, 4, 400
    x = randn((repeats, n, 2, 8), 12, torch.float64)  # iid values, so sd(mean of k values) = 1/√k
    full = torch.stack([BatchNorm(2).statistics(b)[0][0, :, 0] for b in x])  # (repeats, C)
    chunks = torch.stack([GhostBatchNorm(2, ghost).statistics(b)[0][::ghost, :, 0] for b in x])  # (repeats, 4, C)
    assert full.std().item() == pytest.approx(1 / (n * 8) ** 0.5, rel=0.1)
    assert chunks.std().item() / full.std().item() == pytest.approx((n / ghost) ** 0.5, rel=0.1)


# --------------------------------------------------------------------------- half precision
class _TorchGhostBatchNorm(nn.Module):
    """Torch's batch norm applied to each ghost batch in turn (torch has no ghost batch norm)."""

    def __init__(self, channels, ghost_batch_size):
        super().__init__()
        self.bn, self.ghost_batch_size = nn.BatchNorm2d(channels), ghost_batch_size

    def forward(self, x):
        return torch.cat([self.bn(chunk) for chunk in torch.split(x, self.ghost_batch_size)])

    @property
    def weight(self):
        return self.bn.weight

    @property
    def bias(self):
        return self.bn.bias


HALF_PAIRS = {"batch": lambda: (BatchNorm(8), nn.BatchNorm2d(8)),
              "ghost": lambda: (GhostBatchNorm(8, 4), _TorchGhostBatchNorm(8, 4)),
              "layer": lambda: (LayerNorm(8), nn.GroupNorm(1, 8)),
              "group": lambda: (GroupNorm(4, 8), nn.GroupNorm(4, 8)),
              "instance": lambda: (InstanceNorm(8), nn.InstanceNorm2d(8, affine=True))}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("scheme", list(HALF_PAIRS))
def test_half_precision_is_as_accurate_as_torch(scheme, dtype):
    # Inputs around 100: a bfloat16 has 8 significant bits, so h - m computed in bfloat16
    # keeps about 2 of them; statistics in float32 (as torch) leave only the output's rounding.
    mine, ref = HALF_PAIRS[scheme]()
    exact = copy.deepcopy(mine)  # the same function in float64 on the same (rounded) numbers
    same_random_affine(mine, ref, dtype)
    exact.to(torch.float64).load_state_dict(mine.state_dict())
    x = (100 + randn((16, 8, 6, 6), 21, torch.float64)).to(dtype)
    for mode in ("train", "eval"):  # eval: batch norm's running estimates, the same numbers in all three
        mine.train(mode == "train"), ref.train(mode == "train"), exact.train(mode == "train")
        y, y_ref, y_exact = mine(x), ref(x), exact(x.double())
        assert y.dtype == dtype
        error, torch_error = (y.double() - y_exact).abs().max().item(), (y_ref.double() - y_exact).abs().max().item()
        rounding = (y_exact.to(dtype).double() - y_exact).abs().max().item()  # the best a dtype output can do
        assert error <= 1.5 * torch_error and error <= 2 * rounding, (mode, error, torch_error, rounding)
        exact.load_state_dict(mine.state_dict())  # the running estimates as the half module stores them


def test_half_precision_statistics_are_float32_and_float32_parameters_give_float32():
    x = (100 + randn((4, 6, 5), 22, torch.float64)).to(torch.bfloat16)
    m, s2 = GroupNorm(3, 6).statistics(x)
    m64, s264 = GroupNorm(3, 6).statistics(x.double())
    assert m.dtype == s2.dtype == torch.float32
    assert (m - m64).abs().max() < 1e-4 and (s2 - s264).abs().max() < 1e-4
    assert LayerNorm(6)(x).dtype == torch.float32  # γ, δ in float32: type promotion, as before
    assert LayerNorm(6, affine=False)(x).dtype == torch.bfloat16


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="'x' parameter of BatchNorm.forward must have shape \\(N, 3"):
        BatchNorm(3)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="more than one value"):
        BatchNorm(3)(torch.zeros(1, 3))
    assert BatchNorm(3).eval()(torch.zeros(1, 3)).shape == (1, 3)  # a single example is fine in eval mode
    with pytest.raises(ValueError, match="shape \\(N, 3, L"):
        InstanceNorm(3)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="more than one value"):
        InstanceNorm(3)(torch.zeros(2, 3, 1))
    with pytest.raises(TypeError, match="floating-point"):
        LayerNorm(3)(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^The 'channels' parameter of GroupNorm must be a multiple of groups = 4\. "
                                         r"Got 6 instead\.$"):
        GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"^The 'groups' parameter of GroupNorm must be at most channels = 6\. "
                                         r"Got 8 instead\.$"):
        GroupNorm(8, 6)
    with pytest.raises(ValueError, match="must keep the input's shape"):
        shared_statistics(nn.Flatten(), (2, 3, 4), (0, 0, 0))
    with pytest.raises(ValueError, match="'index' parameter"):
        shared_statistics(BatchNorm(3), (2, 3, 4), (0, 3, 0))


# --------------------------------------------------------------------------- batch_norm_layer (torch's kernel)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_batch_norm_layer_is_torch_batch_norm_equal_to_ours(dims):
    bn = batch_norm_layer(dims, 4)
    assert type(bn) is torch_batch_norm(dims, 4).__class__
    assert bn.weight.tolist() == [1.0] * 4 and bn.bias.tolist() == [0.0] * 4  # γ = 1, δ = 0 (fig. 11.6c)
    x = randn(SHAPES[dims], 0, torch.float32)
    torch.testing.assert_close(bn(x), BatchNorm(4)(x), rtol=0, atol=TOL[torch.float32])


def test_batch_norm_layer_refuses_other_dimensions():
    with pytest.raises(ValueError, match=r"^The 'dims' parameter of batch_norm_layer must be one of 1, 2, 3\. "
                                         r"Got 0 instead\.$"):
        batch_norm_layer(0, 4)
