"""udl.models.swin: windows, the shift mask, the relative position bias and patch merging, against
Hugging Face transformers' Swin with copied weights (values and gradients), and the claims of fig. 12.18.

The common model tests (seeding, meta build, state_dict, bad arguments) are rows of tests/models/test_zoo.py.
"""

from __future__ import annotations

import pytest
import torch

from udl.models.swin import (PatchMerging, PatchPartition, Swin, SwinConfig, SwinLayer, WindowAttention,
                             relative_offsets, shift_mask, window_ids, window_partition, window_reverse)

hf_swin = pytest.importorskip("transformers.models.swin.modeling_swin")
HFConfig = pytest.importorskip("transformers").SwinConfig

TOL = 1e-5


def _randomise(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> None:
    """Every parameter from N(0, scale²): away from the zero bias tables and unit LayerNorms of a fresh model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def _hf_config(**changes) -> HFConfig:
    kw = dict(image_size=8, patch_size=1, num_channels=1, embed_dim=8, depths=[2, 2, 2], num_heads=[1, 2, 2],
              window_size=2, mlp_ratio=2.0, num_labels=10, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
              drop_path_rate=0.0, layer_norm_eps=1e-5, attn_implementation="eager")
    return HFConfig(**{**kw, **changes})


def _layer_weights(hf: dict, prefix: str, window: int, heads: int) -> dict:
    """HF SwinLayer's state (keys under ``prefix``) in udl's SwinLayer names."""
    out = {"norm1.weight": "layernorm_before.weight", "norm1.bias": "layernorm_before.bias",
           "norm2.weight": "layernorm_after.weight", "norm2.bias": "layernorm_after.bias",
           "linear1.weight": "mlp.fc1.weight", "linear1.bias": "mlp.fc1.bias",
           "linear2.weight": "mlp.fc2.weight", "linear2.bias": "mlp.fc2.bias"}
    for ours, theirs in (("q_proj", "q_proj"), ("k_proj", "k_proj"), ("v_proj", "v_proj"), ("out_proj", "o_proj")):
        for t in ("weight", "bias"):
            out[f"attn.attn.{ours}.{t}"] = f"attention.{theirs}.{t}"
    weights = {k: hf[prefix + v] for k, v in out.items()}
    # HF's table is ((2M-1)², H) with row (Δr + M - 1)(2M - 1) + (Δc + M - 1); ours is (H, 2M-1, 2M-1)
    table = hf[prefix + "attention.relative_position_bias.relative_position_bias_table"]
    weights["attn.bias_table"] = table.T.reshape(heads, 2 * window - 1, 2 * window - 1)
    return weights


def _model_weights(hf: dict, config: SwinConfig) -> dict:
    """SwinForImageClassification's state in udl's Swin names."""
    out = {"embed.proj.weight": hf["swin.embeddings.patch_embeddings.projection.weight"],
           "embed.proj.bias": hf["swin.embeddings.patch_embeddings.projection.bias"],
           "embed.norm.weight": hf["swin.embeddings.norm.weight"], "embed.norm.bias": hf["swin.embeddings.norm.bias"],
           "norm.weight": hf["swin.layernorm.weight"], "norm.bias": hf["swin.layernorm.bias"],
           "head.weight": hf["classifier.weight"], "head.bias": hf["classifier.bias"]}
    for s, depth in enumerate(config.depths):
        for i in range(depth):
            layer = _layer_weights(hf, f"swin.encoder.layers.{s}.blocks.{i}.", config.window, config.n_heads[s])
            out.update({f"stages.{s}.layers.{i}.{k}": v for k, v in layer.items()})
        if s < len(config.depths) - 1:
            for t in ("norm.weight", "norm.bias", "reduction.weight"):
                out[f"stages.{s}.merge.{t}"] = hf[f"swin.encoder.layers.{s}.downsample.{t}"]
    return out


def _grads(module, x):
    """Output, and the gradients of a random projection of it w.r.t. the input and every parameter (by name)."""
    x = x.clone().requires_grad_(True)
    out = module(x)
    out = out[0] if isinstance(out, tuple) else out
    out = getattr(out, "logits", out)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(5))
    (out * weight).sum().backward()
    return out.detach(), x.grad


# --------------------------------------------------------------------------- against transformers
@pytest.mark.parametrize("shift", [0, 2])
def test_a_swin_layer_equals_transformers_swin_layer_values_and_gradients(shift):
    hc = _hf_config(embed_dim=12, window_size=4, mlp_ratio=4.0)
    theirs = hf_swin.SwinLayer(hc, dim=12, input_resolution=(8, 8), num_heads=3, shift_size=shift).eval()
    _randomise(theirs)
    ours = SwinLayer(12, 3, window=4, shift=shift, mlp_ratio=4, generator=0).eval()
    ours.load_state_dict(_layer_weights(theirs.state_dict(), "", 4, 3))
    x = torch.randn(2, 8, 8, 12, generator=torch.Generator().manual_seed(1))
    want, want_grad = _grads(lambda t: theirs(t.reshape(2, 64, 12), (8, 8)), x)
    got, got_grad = _grads(ours, x)
    assert torch.allclose(got.reshape(2, 64, 12), want, atol=TOL)
    assert torch.allclose(got_grad, want_grad, atol=TOL)
    table = ours.attn.bias_table.grad.permute(1, 2, 0).reshape(-1, 3)  # back to HF's ((2M-1)², H) layout
    assert torch.allclose(table, theirs.attention.relative_position_bias.relative_position_bias_table.grad, atol=TOL)
    assert torch.allclose(ours.attn.attn.q_proj.weight.grad, theirs.attention.q_proj.weight.grad, atol=TOL)


def test_patch_merging_equals_transformers_concatenation_order_included():
    theirs = hf_swin.SwinPatchMerging(6)
    _randomise(theirs)
    ours = PatchMerging(6, generator=0)
    ours.load_state_dict(theirs.state_dict())  # same names: norm (4C), reduction (4C -> 2C, no bias)
    x = torch.randn(3, 4, 6, 6, generator=torch.Generator().manual_seed(2))
    want, want_grad = _grads(lambda t: theirs(t.reshape(3, 24, 6), (4, 6)), x)
    got, got_grad = _grads(ours, x)
    assert got.shape == (3, 2, 3, 12)  # the resolution halves, the channels double
    assert torch.allclose(got.reshape(3, 6, 12), want, atol=TOL)
    assert torch.allclose(got_grad, want_grad, atol=TOL)


def test_the_whole_classifier_equals_transformers_swin_for_image_classification():
    config = SwinConfig.tiny()
    theirs = hf_swin.SwinForImageClassification(_hf_config()).eval()
    _randomise(theirs)
    ours = Swin(config, generator=0).eval()
    ours.load_state_dict(_model_weights(theirs.state_dict(), config))
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    want, want_grad = _grads(lambda t: theirs(pixel_values=t), x)
    got, got_grad = _grads(ours, x)
    assert torch.allclose(got, want, atol=TOL)
    assert torch.allclose(got_grad, want_grad, atol=TOL)


def test_window_partition_and_reverse_follow_transformers_order():
    x = torch.randn(2, 8, 12, 3)
    windows = window_partition(x, 4)  # (B, n_windows, M·M, C)
    assert windows.shape == (2, 6, 16, 3)
    assert torch.equal(windows.reshape(-1, 4, 4, 3), hf_swin.window_partition(x, 4))
    assert torch.equal(window_reverse(windows, 8, 12), x)


def test_the_shift_mask_blocks_the_pairs_transformers_blocks():
    theirs = hf_swin.SwinLayer(_hf_config(embed_dim=4, window_size=4), dim=4, input_resolution=(8, 12), num_heads=1,
                               shift_size=2)
    want = theirs.get_attn_mask(8, 12, torch.float32, torch.device("cpu"))  # -100 where blocked
    got = shift_mask(8, 12, 4, 2)
    assert got.shape == want.shape == (6, 16, 16)
    assert torch.equal(torch.isinf(got), want == -100.0) and bool((got[~torch.isinf(got)] == 0).all())
    assert shift_mask(8, 8, 4, 0) is None


def test_the_relative_position_bias_is_indexed_as_transformers_indexes_it():
    bias = hf_swin.SwinRelativePositionBias(2, (3, 3))
    _randomise(bias)
    ours = WindowAttention(4, 2, window=3, generator=0)
    with torch.no_grad():
        ours.bias_table.copy_(bias.relative_position_bias_table.T.reshape(2, 5, 5))
    assert torch.equal(ours.position_bias(), bias()[0])  # (H, M·M, M·M)


def test_swin_t_has_the_closed_form_count_and_the_count_of_transformers():
    config = SwinConfig.swin_t()
    with torch.device("meta"):
        ours = sum(p.numel() for p in Swin(config).parameters())
        theirs = sum(p.numel() for p in hf_swin.SwinForImageClassification(HFConfig(num_labels=1000)).parameters())
    assert ours == config.parameter_count() == theirs == 28_288_354  # Swin-T, 1000 classes


# --------------------------------------------------------------------------- windows, written out
def test_relative_offsets_and_window_ids_by_hand():
    dr, dc = relative_offsets(2)
    assert dr.tolist() == [[0, 0, -1, -1], [0, 0, -1, -1], [1, 1, 0, 0], [1, 1, 0, 0]]
    assert dc.tolist() == [[0, -1, 0, -1], [1, 0, 1, 0], [0, -1, 0, -1], [1, 0, 1, 0]]
    assert window_ids(4, 4, 2).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    # shifted by 1: borders after rows/columns 0 and 2, so the windows are 1, 2 and 1 wide
    assert window_ids(4, 4, 2, 1).tolist() == [[0, 1, 1, 2], [3, 4, 4, 5], [3, 4, 4, 5], [6, 7, 7, 8]]


def _dependence(layer, side: int, channels: int) -> torch.Tensor:
    """``(N, N)``: whether output token i of a layer depends on input token j (exact zero gradients)."""
    x = torch.randn(1, side, side, channels, generator=torch.Generator().manual_seed(4), requires_grad=True)
    out = layer(x).reshape(side * side, -1).sum(1)
    rows = [torch.autograd.grad(out[i], x, retain_graph=True)[0].reshape(side * side, -1).abs().sum(1) > 0
            for i in range(side * side)]
    return torch.stack(rows)


@pytest.mark.parametrize("shift", [0, 2])
def test_each_output_depends_on_exactly_its_window(shift):
    layer = SwinLayer(8, 2, window=4, shift=shift, generator=0).eval()
    ids = window_ids(8, 8, 4, shift).flatten()
    assert torch.equal(_dependence(layer, 8, 8), ids[:, None] == ids[None, :])


def test_an_unshifted_then_a_shifted_layer_cross_window_borders():
    layers = torch.nn.Sequential(SwinLayer(8, 2, window=4, generator=0), SwinLayer(8, 2, window=4, shift=2,
                                                                                     generator=1)).eval()
    plain, shifted = window_ids(8, 8, 4).flatten(), window_ids(8, 8, 4, 2).flatten()
    same_plain = (plain[:, None] == plain[None, :]).float()
    same_shifted = (shifted[:, None] == shifted[None, :]).float()
    seen = _dependence(layers, 8, 8)
    assert torch.equal(seen, (same_shifted @ same_plain) > 0)
    assert int(seen[27].sum()) == 64  # a token next to the centre sees all four windows after two layers


def test_the_configuration_shifts_alternate_layers_except_in_a_single_window():
    config = SwinConfig.digits()
    assert config.resolutions() == [8, 4, 2] and config.widths() == [16, 32, 64]
    assert [config.shifts(s) for s in range(3)] == [[0, 1], [0, 1], [0, 0]]
    model = Swin(config, generator=0)
    assert [[layer.shift for layer in stage.layers] for stage in model.stages] == [[0, 1], [0, 1], [0, 0]]
    assert PatchPartition(2, 1, 16, generator=0)(torch.zeros(3, 1, 8, 8)).shape == (3, 4, 4, 16)


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("changes, name", [
    (dict(patch_size=3), "patch_size"), (dict(n_heads=(1, 2)), "n_heads"), (dict(window=3), "window"),
    (dict(n_heads=(3, 2, 2)), "n_heads"), (dict(depths=(2, 0, 2)), "depths"), (dict(activation="tanh"), "activation"),
])
def test_configs_that_cannot_be_built_are_refused(changes, name):
    with pytest.raises(ValueError, match=rf"^The '{name}' parameter of SwinConfig must .+ Got .+ instead\.$"):
        SwinConfig.tiny(**changes)


def test_inputs_of_the_wrong_shape_are_refused_in_one_line():
    layer = SwinLayer(8, 2, window=4, generator=0)
    with pytest.raises(ValueError, match=r"^The 'x' parameter of SwinLayer must .+ multiples of the window 4\. "):
        layer(torch.zeros(1, 6, 8, 8))
    with pytest.raises(ValueError, match=r"^The 'images' parameter of Swin must "):
        Swin(SwinConfig.tiny(), generator=0)(torch.zeros(1, 1, 6, 6))
    with pytest.raises(ValueError, match=r"^The 'x' parameter of PatchMerging must "):
        PatchMerging(8, generator=0)(torch.zeros(1, 3, 4, 8))
