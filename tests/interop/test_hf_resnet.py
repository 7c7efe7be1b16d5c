"""udl.interop.resnet: udl's post-activation ResNet equals transformers' ResNet after copying the weights.

transformers' models are built from a config with random weights (nothing is downloaded). Batch norms get random
affine parameters and running statistics, so that evaluation mode is a non-trivial test of the mapping.
"""

import warnings

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")

from udl.interop.resnet import (from_transformers_state_dict, hf_resnet_config, load_resnet,  # noqa: E402
                                resnet_config, save_resnet, to_transformers_state_dict)
from udl.models.resnet import ResNet, ResNetConfig, resnet50  # noqa: E402
from udl.nn.residual import count_parameters  # noqa: E402

RESNET50 = dict(layer_type="bottleneck", depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], embedding_size=64,
                downsample_in_bottleneck=False)
TINY = dict(depths=[1, 2, 1], hidden_sizes=[16, 32, 64], embedding_size=8, num_labels=5)


def hf_config(**kwargs):
    return transformers.ResNetConfig(**kwargs)


@torch.no_grad()
def randomise_norms(model: nn.Module, seed: int) -> nn.Module:
    """Random γ, δ and running statistics in every batch norm (a fresh BN is the identity in eval mode)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(torch.empty_like(m.weight).uniform_(0.5, 1.5, generator=g))
            m.bias.copy_(torch.empty_like(m.bias).normal_(0, 0.2, generator=g))
            m.running_mean.copy_(torch.empty_like(m.running_mean).normal_(0, 0.2, generator=g))
            m.running_var.copy_(torch.empty_like(m.running_var).uniform_(0.5, 2.0, generator=g))
            m.num_batches_tracked.fill_(7)
    return model


def images(n, size, dtype=torch.float32, channels=3):
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(1), dtype=dtype)


def max_rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


# --------------------------------------------------------------------------- ResNet-50
def test_resnet50_post_activation_equals_transformers():
    """udl's ResNet-50 (preact=False) -> transformers' ResNetForImageClassification: the same logits at 64×64."""
    net = randomise_norms(resnet50(preact=False, generator=0), seed=2).eval()
    cfg = hf_config(**RESNET50, num_labels=1000)
    assert resnet_config(cfg.to_dict()) == net.config
    with torch.device("meta"):  # no time spent drawing weights that are replaced: the tensors are assigned
        hf = transformers.ResNetForImageClassification(cfg).eval()
    hf.load_state_dict({k: v.clone() for k, v in to_transformers_state_dict(net).items()}, strict=True, assign=True)
    assert count_parameters(hf) == count_parameters(net) == 25_557_032
    assert all(not t.is_meta for t in [*hf.parameters(), *hf.buffers()])  # every tensor was given
    x = images(2, 64)
    with torch.no_grad():
        ours, theirs = net(x), hf(pixel_values=x).logits
    assert theirs.abs().max() > 0.1 and ours.std(0).max() > 1e-3  # non-trivial logits that depend on the image
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4 * theirs.abs().max().item())
    net, hf, x = net.double(), hf.double(), x.double()
    with torch.no_grad():
        assert max_rel(net(x), hf(pixel_values=x).logits) < 1e-10


def test_parameter_counts_equal_on_the_meta_device():
    for depths, layer_type, sizes in [([3, 4, 6, 3], "bottleneck", [256, 512, 1024, 2048]),
                                      ([3, 8, 36, 3], "bottleneck", [256, 512, 1024, 2048]),
                                      ([2, 2, 2, 2], "basic", [64, 128, 256, 512])]:
        cfg = hf_config(layer_type=layer_type, depths=depths, hidden_sizes=sizes, num_labels=1000)
        with torch.device("meta"):
            hf = transformers.ResNetForImageClassification(cfg)
            net = ResNet(resnet_config(cfg.to_dict()))
        assert count_parameters(hf) == count_parameters(net) == net.config.parameter_count
    assert net.config.parameter_count == 11_689_512  # resnet18


# --------------------------------------------------------------------------- small networks, float64, both ways
@pytest.mark.parametrize("layer_type", ["bottleneck", "basic"])
def test_transformers_to_udl_in_float64(layer_type):
    hf = randomise_norms(transformers.ResNetForImageClassification(hf_config(layer_type=layer_type, **TINY)), 3)
    hf = hf.double().eval()
    net = from_transformers_state_dict(hf.state_dict(), hf.config.to_dict()).double().eval()
    assert net.config.block == {"bottleneck": "bottleneck", "basic": "standard"}[layer_type]
    x = images(3, 32, torch.float64)
    with torch.no_grad():
        assert max_rel(net(x), hf(pixel_values=x).logits) < 1e-12
    assert to_transformers_state_dict(net).keys() == hf.state_dict().keys()


def test_base_model_names_without_the_classifier():
    """ResNetModel: no 'resnet.' prefix, no classifier; its pooled features are udl's before the fc layer."""
    net = randomise_norms(ResNet(ResNetConfig.tiny(preact=False), generator=1), 4).double().eval()
    base = transformers.ResNetModel(transformers.ResNetConfig(**hf_resnet_config(net.config))).double().eval()
    base.load_state_dict(to_transformers_state_dict(net, head=False), strict=True)
    x = images(2, 32, torch.float64)
    with torch.no_grad():
        h = net.stem(x)
        for stage in net.stages:
            h = stage(h)
        features = net.head[:2](h)  # pooled and flattened
        assert max_rel(features, base(pixel_values=x).pooler_output.flatten(1)) < 1e-12
    with pytest.warns(UserWarning, match="no classifier"):
        back = from_transformers_state_dict(base.state_dict(), net.config)
    assert all(torch.equal(back.state_dict()[k], v) for k, v in net.state_dict().items() if not k.startswith("head"))


def test_checkpoint_folders_both_ways(tmp_path):
    hf = randomise_norms(transformers.ResNetForImageClassification(hf_config(**TINY)), 5).eval()
    hf.save_pretrained(tmp_path / "hf")
    net = load_resnet(tmp_path / "hf")
    assert not net.training
    x = images(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), hf(pixel_values=x).logits, rtol=1e-5, atol=1e-5)
    net = randomise_norms(ResNet(ResNetConfig.tiny(preact=False), generator=6), 7).eval()
    save_resnet(net, tmp_path / "udl")
    back, info = transformers.ResNetForImageClassification.from_pretrained(tmp_path / "udl",
                                                                          output_loading_info=True)
    assert not any(info.values())  # no missing, unexpected or mismatched keys
    with torch.no_grad():
        torch.testing.assert_close(back.eval()(pixel_values=x).logits, net(x), rtol=1e-5, atol=1e-5)
    assert load_resnet(tmp_path / "udl", dtype=torch.float64).stem[0].weight.dtype == torch.float64
    with pytest.raises(TypeError, match="'dtype' parameter of load_resnet"):
        load_resnet(tmp_path / "udl", dtype=torch.int64)


# --------------------------------------------------------------------------- refusals
def test_what_transformers_cannot_express_is_refused():
    with pytest.raises(ValueError, match="post-activation ResNet"):
        to_transformers_state_dict(ResNet("tiny", generator=0))
    with pytest.raises(ValueError, match="expansion is 4"):
        hf_resnet_config(ResNetConfig.tiny(preact=False, expansion=2))
    base = hf_config(**TINY).to_dict()
    for change, match in [(dict(model_type="bert"), "model_type 'bert'"), (dict(hidden_act="gelu"), "ReLU"),
                          (dict(downsample_in_bottleneck=True), "downsample_in_bottleneck true"),
                          (dict(downsample_in_first_stage=True), "downsample_in_first_stage true"),
                          (dict(layer_type="wide"), "layer_type"), (dict(hidden_sizes=[16, 30, 64]), "multiples")]:
        with pytest.raises(ValueError, match=match):
            resnet_config({**base, **change})


def test_wrong_tensors_are_refused():
    net = ResNet(ResNetConfig.tiny(preact=False), generator=0)
    tensors = to_transformers_state_dict(net)
    cfg = net.config
    with pytest.raises(ValueError, match="missing 'resnet.embedder.embedder.convolution.weight'"):
        from_transformers_state_dict({k: v for k, v in tensors.items() if "embedder.convolution" not in k}, cfg)
    with pytest.raises(ValueError, match="unexpected 'resnet.extra'"):
        from_transformers_state_dict({**tensors, "resnet.extra": torch.zeros(1)}, cfg)
    with pytest.raises(ValueError, match="shapes"):
        from_transformers_state_dict({**tensors, "classifier.1.bias": torch.zeros(3)}, cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a full ResNetForImageClassification state dict: no warning
        back = from_transformers_state_dict(tensors, cfg)
    assert all(torch.equal(back.state_dict()[k], v) for k, v in net.state_dict().items())
