"""The vision transformer: patches, the patch embedding as a strided convolution, sizes, equality with
Hugging Face's ViT (values and gradients), no built-in notion of neighbouring patches, training on digits."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from udl.models.vit import PatchEmbedding, ViT, ViTConfig, image_patches, parameter_count

transformers = pytest.importorskip("transformers")


# --------------------------------------------------------------------------- patches
def test_patches_are_listed_row_by_row_and_flattened_as_a_convolution_reads_them():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)  # (B, C, H, W)
    patches = image_patches(images, 2)
    assert patches.shape == (2, 6, 12)  # N = (4/2)·(6/2) patches of C·P² = 12 numbers
    for n in range(6):
        row, col = divmod(n, 3)
        block = images[:, :, 2 * row:2 * row + 2, 2 * col:2 * col + 2]  # (B, C, P, P)
        assert torch.equal(patches[:, n], block.reshape(2, 12))
    # unfold (torch's im2col) lists the same numbers in the same order
    assert torch.equal(patches, F.unfold(images, 2, stride=2).transpose(1, 2))
    with pytest.raises(ValueError, match=r"^The 'patch_size' parameter of image_patches must divide .+ Got 4 instead\.$"):
        image_patches(images, 4)


def test_the_linear_patch_embedding_equals_a_strided_convolution():
    g = torch.Generator().manual_seed(0)
    embed = PatchEmbedding(4, 3, 10, generator=1)
    conv = nn.Conv2d(3, 10, 4, stride=4)  # built independently, the same numbers copied in
    with torch.no_grad():
        conv.weight.copy_(embed.linear.weight.view(10, 3, 4, 4))
        conv.bias.copy_(embed.linear.bias)
    x = torch.randn(2, 3, 8, 12, generator=g, requires_grad=True)
    ours = embed(x)
    theirs = conv(x).flatten(2).transpose(1, 2)  # (B, D, 2, 3) -> (B, 6, D)
    assert ours.shape == (2, 6, 10)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    torch.testing.assert_close(embed.to_conv()(x).flatten(2).transpose(1, 2), ours, atol=1e-6, rtol=0)
    w = torch.randn(ours.shape, generator=g)
    (gx_ours, gw_ours) = torch.autograd.grad((ours * w).sum(), (x, embed.linear.weight))
    (gx_conv, gw_conv) = torch.autograd.grad((theirs * w).sum(), (x, conv.weight))
    torch.testing.assert_close(gx_ours, gx_conv, atol=1e-5, rtol=0)
    torch.testing.assert_close(gw_ours, gw_conv.view(10, -1), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- sizes
def test_vit_base_has_86_6_million_parameters():
    config = ViTConfig.vit_base()
    assert (config.n_patches, config.d_patch, config.d_mlp) == (196, 768, 3072)
    assert config.parameter_count() == parameter_count(config) == 86_567_656


@pytest.mark.parametrize("config", [ViTConfig.vit_base(), ViTConfig.digits(), ViTConfig.tiny(),
                                    ViTConfig.tiny(norm_first=False, in_channels=3, patch_size=4, n_classes=7)])
def test_the_closed_form_counts_every_part(config):
    with torch.device("meta"):
        model = ViT(config)
    parts = {"patch embedding": model.patch_embed, "positions": model.positions, "head": model.head}
    measured = {name: sum(p.numel() for p in m.parameters()) for name, m in parts.items()}
    measured["<cls>"] = model.cls_token.numel()
    layers = [dict(layer.named_parameters()) for layer in model.layers]
    measured["attention"] = sum(p.numel() for ps in layers for k, p in ps.items() if k.startswith("self_attn."))
    measured["MLP"] = sum(p.numel() for ps in layers for k, p in ps.items() if k.startswith("linear"))
    measured["LayerNorm"] = sum(p.numel() for ps in layers for k, p in ps.items() if k.startswith("norm")) + \
        sum(p.numel() for p in model.norm.parameters())
    assert measured == config.parameter_formula()
    assert sum(measured.values()) == sum(p.numel() for p in model.parameters()) == config.parameter_count()


def test_config_validation():
    with pytest.raises(ValueError, match=r"^The 'patch_size' parameter of ViTConfig must divide image_size = 8\. "):
        ViTConfig.tiny(patch_size=3)
    with pytest.raises(ValueError, match="'n_heads'"):
        ViTConfig.tiny(n_heads=3)
    with pytest.raises(ValueError, match="'n_classes'"):
        ViTConfig.tiny(n_classes=1)
    with pytest.raises(TypeError, match="'config'"):
        ViT("base")
    with pytest.raises(ValueError, match=r"^The 'images' parameter of ViT must be a tensor of shape \(B, 1, 8, 8\)"):
        ViT(ViTConfig.tiny(), generator=0)(torch.zeros(2, 1, 8, 6))


def test_initialisation():
    model = ViT(ViTConfig.digits(init_std=0.5), generator=0)
    assert torch.equal(model.head.weight, torch.zeros(10, 64)) and torch.equal(model.head.bias, torch.zeros(10))
    table = torch.cat([model.positions.weight.flatten(), model.cls_token]).detach()  # N(0, 0.5²), 17·64 + 64 numbers
    assert abs(float(table.std()) - 0.5) < 0.05 and abs(float(table.mean())) < 0.05
    assert torch.equal(model(torch.rand(3, 1, 8, 8)), torch.zeros(3, 10))  # every class equally likely


# --------------------------------------------------------------------------- Hugging Face's ViT
def _hf_config(config: ViTConfig, **changes):
    return transformers.ViTConfig(hidden_size=config.d_model, num_hidden_layers=config.n_layers,
                                  num_attention_heads=config.n_heads, intermediate_size=config.d_mlp,
                                  image_size=config.image_size, patch_size=config.patch_size,
                                  num_channels=config.in_channels, num_labels=config.n_classes,
                                  layer_norm_eps=config.eps, hidden_act="gelu", initializer_range=0.3, **changes)


def _copy_from_hf(ours: ViT, hf_vit, classifier=None) -> None:
    """Hugging Face's weights into ours: the convolution's filters are the rows of Ω_p."""
    e = hf_vit.embeddings
    with torch.no_grad():
        ours.cls_token.copy_(e.cls_token.view(-1))  # (1, 1, D) -> (D,)
        ours.positions.weight.copy_(e.position_embeddings[0])  # (1, N + 1, D) -> (N + 1, D)
        conv = e.patch_embeddings.projection
        ours.patch_embed.linear.weight.copy_(conv.weight.flatten(1))  # (D, C, P, P) -> (D, C·P²)
        ours.patch_embed.linear.bias.copy_(conv.bias)
        for mine, theirs in zip(ours.layers, hf_vit.layers, strict=True):
            attn = theirs.attention
            for a, b in [(mine.self_attn.q_proj, attn.q_proj), (mine.self_attn.k_proj, attn.k_proj),
                         (mine.self_attn.v_proj, attn.v_proj), (mine.self_attn.out_proj, attn.o_proj),
                         (mine.norm1, theirs.layernorm_before), (mine.norm2, theirs.layernorm_after),
                         (mine.linear1, theirs.mlp.fc1), (mine.linear2, theirs.mlp.fc2)]:
                a.load_state_dict(b.state_dict())
        ours.norm.load_state_dict(hf_vit.layernorm.state_dict())
        if classifier is not None:
            ours.head.load_state_dict(classifier.state_dict())


def _gradients(model, names) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {name: params[name].grad for name in names}


# ours -> Hugging Face's names, for comparing gradients
def _pairs(n_layers: int) -> dict[str, str]:
    pairs = {"cls_token": "vit.embeddings.cls_token", "positions.weight": "vit.embeddings.position_embeddings",
             "patch_embed.linear.weight": "vit.embeddings.patch_embeddings.projection.weight",
             "norm.weight": "vit.layernorm.weight", "head.weight": "classifier.weight", "head.bias": "classifier.bias"}
    for i in range(n_layers):
        for mine, theirs in [("self_attn.q_proj", "attention.q_proj"), ("self_attn.out_proj", "attention.o_proj"),
                             ("norm1", "layernorm_before"), ("norm2", "layernorm_after"), ("linear1", "mlp.fc1"),
                             ("linear2", "mlp.fc2")]:
            for kind in ("weight", "bias"):
                pairs[f"layers.{i}.{mine}.{kind}"] = f"vit.layers.{i}.{theirs}.{kind}"
    return pairs


@pytest.mark.parametrize("config", [ViTConfig.tiny(in_channels=3, n_classes=5, d_model=16, n_heads=4, d_mlp=24),
                                    ViTConfig.tiny(image_size=12, patch_size=4, n_layers=3, eps=1e-6),
                                    ViTConfig.digits()])
def test_equals_hugging_face_vit_for_image_classification(config):
    torch.manual_seed(0)  # Hugging Face draws its weights from torch's global generator
    hf = transformers.ViTForImageClassification(_hf_config(config)).eval()
    ours = ViT(config, generator=1).eval()
    _copy_from_hf(ours, hf.vit, hf.classifier)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, config.in_channels, config.image_size, config.image_size, generator=g)
    x_ours, x_hf = x.clone().requires_grad_(), x.clone().requires_grad_()
    logits, reference = ours(x_ours), hf(x_hf).logits
    assert float(reference.detach().std()) > 0.1  # random weights (σ = 0.3): outputs far from zero
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=0)

    w = torch.randn(logits.shape, generator=g)
    (logits * w).sum().backward()
    (reference * w).sum().backward()  # gradients are compared to 1e-5 absolute or relative (some exceed 1)
    torch.testing.assert_close(x_ours.grad, x_hf.grad, atol=1e-5, rtol=0)
    theirs = dict(hf.named_parameters())
    for mine, name in _pairs(config.n_layers).items():
        want = theirs[name].grad
        got = dict(ours.named_parameters())[mine].grad
        torch.testing.assert_close(got, want.view(got.shape), atol=1e-5, rtol=1e-5, msg=lambda m: f"{mine}: {m}")
    torch.testing.assert_close(ours.patch_embed.linear.weight.grad,
                               theirs["vit.embeddings.patch_embeddings.projection.weight"].grad.flatten(1),
                               atol=1e-5, rtol=1e-5)


def test_encode_equals_hugging_face_vit_model_and_the_layer_norm_placement_matters():
    config = ViTConfig.tiny(in_channels=3, d_model=16, n_heads=4)
    torch.manual_seed(0)
    hf = transformers.ViTModel(_hf_config(config)).eval()
    ours = ViT(config, generator=1).eval()
    _copy_from_hf(ours, hf)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    out = hf(x)
    torch.testing.assert_close(ours.encode(x), out.last_hidden_state, atol=1e-5, rtol=0)
    # ViTModel's pooler, tanh(Ω h_cls + β), feeds no classifier (ViTForImageClassification builds none)
    torch.testing.assert_close(out.pooler_output, torch.tanh(hf.pooler.dense(out.last_hidden_state[:, 0])))
    assert transformers.ViTForImageClassification(_hf_config(config)).vit.pooler is None

    # the same weights in the book's post-LN order, or with GELU swapped for ReLU, give other outputs
    for change in (dict(norm_first=False), dict(activation="relu")):
        other = ViT(ViTConfig.tiny(in_channels=3, d_model=16, n_heads=4, **change), generator=1).eval()
        other.load_state_dict(ours.state_dict(), strict=False)
        assert (other.encode(x) - out.last_hidden_state).abs().max() > 1e-2


# --------------------------------------------------------------------------- what the architecture knows
def _shuffle_patches(images: torch.Tensor, order: torch.Tensor, p: int) -> torch.Tensor:
    b, c, h, w = images.shape
    blocks = image_patches(images, p)[:, order]  # (B, N, C·P²), patches reordered
    g = w // p
    return blocks.view(b, h // p, g, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def test_without_positions_the_prediction_ignores_where_each_patch_is():
    """No inductive bias for images: with the position embeddings at zero, reshuffling the patches changes nothing."""
    model = ViT(ViTConfig.tiny(), generator=0).eval()
    with torch.no_grad():
        model.head.weight.normal_(generator=torch.Generator().manual_seed(1))
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    order = torch.randperm(16, generator=torch.Generator().manual_seed(3))
    shuffled = _shuffle_patches(x, order, 2)
    assert torch.equal(image_patches(shuffled, 2), image_patches(x, 2)[:, order])
    assert (model(shuffled) - model(x)).abs().max() > 1e-3  # the positions tell the patches apart
    with torch.no_grad():
        model.positions.weight.zero_()
    torch.testing.assert_close(model(shuffled), model(x), atol=1e-5, rtol=0)


def test_trains_on_held_out_digits():
    from udl.data.images import load_digits
    from udl.train import fit
    from udl.train.classifiers import classification_error
    from udl.train.recipes import adamw

    x, y = (torch.from_numpy(a) for a in load_digits("train", seed=0, flat=False))
    x_test, y_test = (torch.from_numpy(a) for a in load_digits("test", seed=0, flat=False))
    model = ViT(ViTConfig.digits(n_layers=1), generator=0)
    fit(model, (x[:, None], y), F.cross_entropy, lambda p: adamw(p, lr=2e-3, weight_decay=0.05), steps=300,
        batch_size=64, device="cpu", progress=False)
    assert 1 - classification_error(model, x_test[:, None], y_test) > 0.9  # 0.94-0.95 for seeds 0-2 (chance: 0.1)


# --------------------------------------------------------------------------- fig. 12.17's parameters
@pytest.mark.parametrize("overrides, message", [
    ({"batch_size": 128}, r"^The 'batch_size' parameter of figure 12\.17 must be at most small_train \(100\)\. "
                          r"Got 128 instead\.$"),
    ({"n_heads": 3}, r"^The 'n_heads' parameter of ViTConfig must divide d_model = 32\. Got 3 instead\.$"),
    ({"patch_size": 3}, r"^The 'patch_size' parameter of figure 12\.17 must be one of 1, 2, 4, 8\. Got 3 instead\.$"),
])
def test_figure_parameters_that_cannot_be_used_are_refused_before_training(overrides, message):
    from udl import registry

    with pytest.raises(ValueError, match=message):
        registry.get("12.17").resolve("tiny", overrides)
