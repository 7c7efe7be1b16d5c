"""The common tests of every model in udl.models, and of the udl.nn layers they are built from, over one table.

As Hugging Face's shared model tests: each row gives a model's tiny configuration (a
``tiny()`` classmethod or config), an example input, the output's shape and the
arguments it must refuse. Every row must:

a. give identical weights for the same generator and the same int seed (NumPy ints
   too), different weights for another seed, and leave torch's global generator alone;
b. give every trainable parameter a finite gradient from a scalar of its output;
c. build on the meta device without allocating or drawing anything, with the same
   parameters as a real build (and the closed-form count where the model has one);
d. reproduce its outputs exactly in a fresh model (another seed) that loads its state_dict;
e. refuse bad arguments with the one-line template of ``udl.validate``;
f. work with good arguments: the output has the expected shape and is finite.

A new model gets a row here; its own test file then holds only what is specific to it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import numpy as np
import pytest
import torch
from torch import nn

from udl.models.autoencoder import Autoencoder
from udl.models.bert import BERT, BertClassifier, BertConfig, MaskedLanguageModel, parameter_count as bert_count
from udl.models.classifier import BernoulliClassifier
from udl.models.conditional_gan import (AuxiliaryClassifierDiscriminator, ConditionalDiscriminator, ConditionalGAN,
                                        ConditionalGANConfig, ConditionalGenerator, InfoGANDiscriminator)
from udl.models.denoisers import DigitDenoiser, MLPDenoiser
from udl.models.densenet import DenseBlock, DenseLayer, DenseNet, DenseNetConfig, Transition
from udl.models.gabor import GaborModel
from udl.models.gnn import EdgePredictor, GNNConfig, GraphClassifier, NodeClassifier, StructureBlind
from udl.models.gpt import GPT, GPTConfig
from udl.models.hourglass import Hourglass, StackedHourglass
from udl.models.mnist1d_nets import ConvNet1D, ConvNet1DConfig, FullyConnected1D, FullyConnected1DConfig
from udl.models.recurrent import RecurrentNetwork
from udl.models.resnet import ResNet, ResNetConfig
from udl.models.seq2seq import EncoderDecoder, Seq2SeqConfig
from udl.models.srgan import SRDiscriminator, SRGANConfig, SRResNet
from udl.models.swin import PatchMerging, PatchPartition, Swin, SwinConfig, SwinLayer, WindowAttention
from udl.models.transfer import replace_head
from udl.models.unet import UNet, unet_parameter_count
from udl.models.cyclegan import CycleGAN, CycleGANConfig, Translator
from udl.models.gan import GAN, DCGANDiscriminator, DCGANGenerator, GANConfig, MLPDiscriminator, MLPGenerator
from udl.models.progressive_gan import ProgressiveDiscriminator, ProgressiveGANConfig, ProgressiveGenerator
from udl.models.stylegan import AdaIN, MappingNetwork, NoiseInjection, StyleGANConfig, StyleGenerator, StyleLayer
from udl.models.vae import VAE, VAEConfig
from udl.models.vit import PatchEmbedding, ViT, ViTConfig
from udl.models.yolo import YOLO, YOLOConfig
from udl.models.pix2pix import PatchDiscriminator
from udl.train.pix2pix import Colouriser
from udl.nn.conv import Conv1d, Conv2d
from udl.nn.deep import DeepNetwork
from udl.nn.fixed_joints import FixedJointNetwork
from udl.nn.residual import BottleneckBlock, ResidualBlock
from udl.nn.shallow import ShallowNetwork


def _tokens(shape, low, high):
    return lambda: (torch.arange(int(np.prod(shape))).view(shape) % (high - low) + low,)


def _images(*shape):
    return lambda: (torch.randn(shape, generator=torch.Generator().manual_seed(0)),)


def _graphs():
    """Two small graphs as one batch (a 4-cycle and a 3-path, D = 3): 7 nodes, 2 graphs."""
    import networkx as nx

    from udl.data.graphs import batch_graphs, from_networkx

    g = torch.Generator().manual_seed(0)
    return batch_graphs([from_networkx(nx.cycle_graph(4), node_data=torch.randn(3, 4, generator=g)),
                         from_networkx(nx.path_graph(3), node_data=torch.randn(3, 3, generator=g))])


def _blind_nodes(config=None, *, generator=None):
    return StructureBlind(NodeClassifier(GNNConfig.tiny() if config is None else config, generator=generator))


def _mlm(encoder=None, *, generator=None):
    return MaskedLanguageModel(BERT(BertConfig.tiny(), generator=generator) if encoder is None else encoder,
                               generator=generator)


def _bert_classifier(encoder=None, n_classes=3, *, generator=None):
    return BertClassifier(BERT(BertConfig.tiny(), generator=generator) if encoder is None else encoder, n_classes,
                          generator=generator)


def _new_head(d_out=3, *, generator=None):
    """A pre-trained network (fixed) with a fresh output layer drawn from ``generator``."""
    return replace_head(DeepNetwork([4, 6, 5], generator=0), d_out, generator=generator)


def _gan(d_latent=4, *, generator=None):
    from udl.validate import as_generator

    generator = as_generator(generator, "GAN")  # one stream for both networks
    return GAN(DCGANGenerator.tiny(generator=generator), DCGANDiscriminator.tiny(generator=generator), d_latent)


BAD_GENERATORS = [1.5, -1, True, "seed", np.float64(2.0)]


@dataclass(frozen=True)
class Row:
    """One model: how to build it small, what to feed it, what it returns and refuses."""

    name: str
    build: Callable[..., nn.Module]  # build(generator=..., **overrides) -> a tiny model
    example: Callable[[], tuple]  # the positional inputs of forward
    shape: tuple  # the output's shape (a tuple of shapes for a list of outputs)
    bad: dict[str, list[Any]]  # argument -> values it must refuse
    owner: str  # the class named in the error messages
    count: Callable[[], int] | None = None  # the closed-form parameter count, where the model has one
    no_grad: frozenset[str] = field(default_factory=frozenset)  # parameters the output does not use
    random: bool = True  # False: no random initialisation (no generator argument)
    generator_owner: str | None = None  # who checks generator= (composite models: the inner one)


_BERT_POOLER = frozenset({"pooler.weight", "pooler.bias"})  # tanh(Ω h_<cls> + β) feeds only classifiers

ROWS = [
    Row("GPT", partial(GPT, config=GPTConfig.tiny()), _tokens((2, 5), 0, 11), (2, 5, 11),
        {"config": [None, GPTConfig.tiny().to_dict()]}, "GPT", count=GPTConfig.tiny().parameter_count),
    Row("BERT", partial(BERT, config=BertConfig.tiny()), _tokens((2, 5), 3, 13), (2, 5, 16),
        {"config": ["base", None]}, "BERT",
        count=lambda: BertConfig.tiny().parameter_count() - BertConfig.tiny().parameter_formula()["MLM head"],
        no_grad=_BERT_POOLER),
    Row("MaskedLanguageModel", _mlm, _tokens((2, 5), 3, 13), (2, 5, 13), {"encoder": [nn.Linear(2, 2), 3]},
        "MaskedLanguageModel", count=lambda: bert_count(BertConfig.tiny()),
        no_grad=frozenset("encoder." + name for name in _BERT_POOLER),
        generator_owner="BERT"),
    Row("BertClassifier", _bert_classifier, _tokens((2, 5), 3, 13), (2, 3),
        {"encoder": [nn.Linear(2, 2)], "n_classes": [1, 2.5, True]}, "BertClassifier", generator_owner="BERT"),
    Row("EncoderDecoder", partial(EncoderDecoder, config=Seq2SeqConfig.tiny()),
        lambda: (_tokens((2, 6), 3, 13)()[0], _tokens((2, 5), 3, 11)()[0]), (2, 5, 11),
        {"config": ["tiny", None]}, "EncoderDecoder"),
    Row("ViT", partial(ViT, config=ViTConfig.tiny()), _images(2, 1, 8, 8), (2, 3),
        {"config": ["vit_base", None, ViTConfig.tiny().to_dict()]}, "ViT", count=ViTConfig.tiny().parameter_count),
    Row("PatchEmbedding", partial(PatchEmbedding, patch_size=2, in_channels=3, d_model=5), _images(2, 3, 4, 6),
        (2, 6, 5), {"patch_size": [0, 1.5], "d_model": [0]}, "PatchEmbedding", count=lambda: 3 * 4 * 5 + 5),
    Row("Swin", partial(Swin, config=SwinConfig.tiny()), _images(2, 1, 8, 8), (2, 10),
        {"config": [None, "tiny", SwinConfig.tiny().to_dict()]}, "Swin", count=SwinConfig.tiny().parameter_count),
    Row("SwinLayer", partial(SwinLayer, d_model=8, n_heads=2, window=2, shift=1), _images(2, 4, 4, 8), (2, 4, 4, 8),
        {"shift": [2, -1], "window": [0, 1.5], "activation": ["tanh"]}, "SwinLayer",
        count=lambda: 4 * 8 + (4 * 8 * 8 + 4 * 8) + 2 * 3 * 3 + (2 * 8 * 32 + 32 + 8)),
    Row("WindowAttention", partial(WindowAttention, d_model=8, n_heads=2, window=2), _images(2, 3, 4, 8),
        (2, 3, 4, 8), {"window": [0, 2.5]}, "WindowAttention", count=lambda: 4 * 8 * 8 + 4 * 8 + 2 * 3 * 3),
    Row("PatchMerging", partial(PatchMerging, d_model=8), _images(2, 4, 6, 8), (2, 2, 3, 16),
        {"d_model": [0, 2.5], "eps": [0.0]}, "PatchMerging", count=lambda: 2 * 32 + 32 * 16),
    Row("PatchPartition", partial(PatchPartition, patch_size=2, in_channels=1, d_model=4), _images(2, 1, 4, 6),
        (2, 2, 3, 4), {"patch_size": [0], "d_model": [1.5]}, "PatchPartition", count=lambda: 4 * 4 + 4 + 2 * 4),
    Row("ResNet", partial(ResNet, config=ResNetConfig.tiny()), _images(2, 3, 32, 32), (2, 10),
        {"config": ["resnet1", 3, None]}, "ResNet", count=lambda: ResNetConfig.tiny().parameter_count),
    Row("DenseNet", partial(DenseNet, config=DenseNetConfig.tiny()), _images(2, 3, 16, 16), (2, 10),
        {"config": ["huge", 3]}, "DenseNet", count=lambda: DenseNetConfig.tiny().parameter_count),
    Row("UNet", UNet.tiny, _images(2, 1, 44, 44), (2, 2, 4, 4),
        {"levels": [0, 2.5], "padding": ["full"], "batch_norm": [1]}, "UNet",
        count=lambda: unet_parameter_count(levels=3, width=4)),
    Row("UNet-3D", partial(UNet.tiny, dims=3, levels=2, width=2, padding="same", batch_norm=True),
        _images(2, 1, 4, 4, 4), (2, 2, 4, 4, 4), {"dims": [1, 4], "width": [0]}, "UNet",
        count=lambda: unet_parameter_count(dims=3, levels=2, width=2, batch_norm=True)),
    Row("Hourglass", Hourglass.tiny, _images(2, 8, 8, 8), (2, 8, 8, 8),
        {"channels": [1, 2.5], "depth": [0], "n_blocks": [0]}, "Hourglass"),
    Row("StackedHourglass", StackedHourglass.tiny, _images(2, 3, 32, 32), ((2, 4, 8, 8), (2, 4, 8, 8)),
        {"channels": [10, 4], "stride": [3], "n_stacks": [0]}, "StackedHourglass"),
    Row("YOLO", partial(YOLO, config=YOLOConfig.tiny()), _images(2, 3, 32, 32), (2, 4, 4, 13),
        {"config": ["huge", 3]}, "YOLO"),
    Row("Autoencoder", Autoencoder.tiny, _images(5, 8), (5, 8),
        {"d_in": [0, 2.5], "hidden": [6, (6, 0)], "d_code": [-1]}, "Autoencoder"),
    Row("BernoulliClassifier", BernoulliClassifier.tiny, _images(5, 2), (5,),
        {"d_in": [0], "hidden": [4, (4, 0)]}, "BernoulliClassifier"),
    Row("ConvNet1D", partial(ConvNet1D, config=ConvNet1DConfig.tiny()), _images(5, 12), (5, 10),
        {"config": [3, FullyConnected1DConfig.tiny()]}, "ConvNet1D",
        count=lambda: ConvNet1DConfig.tiny().parameter_count()),
    Row("FullyConnected1D", partial(FullyConnected1D, config=FullyConnected1DConfig.tiny()), _images(5, 12), (5, 10),
        {"config": ["big", ConvNet1DConfig.tiny()]}, "FullyConnected1D",
        count=lambda: FullyConnected1DConfig.tiny().parameter_count()),
    Row("replace_head", _new_head, _images(5, 4), (5, 3), {"d_out": [0, 1.5]}, "replace_head",
        count=lambda: 4 * 6 + 6 + 6 * 3 + 3),
    Row("RecurrentNetwork-LSTM", partial(RecurrentNetwork, vocab_size=7, d_embed=3, d_hidden=4, d_out=2, n_layers=2),
        _tokens((2, 5), 0, 7), (2, 5, 2), {"kind": ["rnn", 3], "d_hidden": [0, 2.5], "forget_bias": ["1"]},
        "RecurrentNetwork", count=lambda: RecurrentNetwork.parameter_count(7, 3, 4, 2, n_layers=2)),
    Row("RecurrentNetwork-Elman", partial(RecurrentNetwork, vocab_size=7, d_embed=3, d_hidden=4, d_out=2, kind="elman"),
        _tokens((2, 5), 0, 7), (2, 5, 2), {"n_layers": [0], "forget_bias": [1.0]}, "RecurrentNetwork",
        count=lambda: RecurrentNetwork.parameter_count(7, 3, 4, 2, kind="elman")),
    Row("GaborModel", GaborModel, lambda: (torch.linspace(-5, 5, 7, dtype=torch.float64),), (7,),
        {"phi0": ["a", float("nan")], "phi1": [None], "dtype": [torch.int64]}, "GaborModel", count=lambda: 2,
        random=False),
    # the layers of udl.nn the models are built from (attention and transformer layers: tests/nn)
    Row("ShallowNetwork", partial(ShallowNetwork, d_in=2, d_hidden=3, d_out=2), _images(5, 2), (5, 2),
        {"d_hidden": [0, 1.5]}, "ShallowNetwork", count=lambda: (2 + 1) * 3 + (3 + 1) * 2),
    Row("DeepNetwork", partial(DeepNetwork, widths=[3, 4, 2]), _images(5, 3), (5, 2), {"widths": [[3], 5]},
        "DeepNetwork", count=lambda: 4 * 4 + 5 * 2),
    Row("FixedJointNetwork", partial(FixedJointNetwork, n_hidden=4), lambda: (torch.linspace(0, 1, 7),), (7,),
        {"n_hidden": [0], "hi": [-1.0]}, "FixedJointNetwork", count=lambda: 5),
    Row("Conv1d", partial(Conv1d, in_channels=2, out_channels=3, kernel_size=3), _images(2, 2, 8), (2, 3, 6),
        {"kernel_size": [0], "padding": ["full"]}, "Conv1d", count=lambda: 3 * 2 * 3 + 3),
    Row("Conv2d", partial(Conv2d, in_channels=2, out_channels=3, kernel_size=3, padding="same"), _images(2, 2, 5, 5),
        (2, 3, 5, 5), {"stride": [0, (1, 2, 3)]}, "Conv2d", count=lambda: 3 * 2 * 9 + 3),
    Row("ResidualBlock", partial(ResidualBlock, channels=4, out_channels=6, stride=2), _images(2, 4, 6, 6),
        (2, 6, 3, 3), {"kernel": [2], "scale": [0.0]}, "ResidualBlock",
        count=lambda: 2 * 4 + 9 * 4 * 6 + 2 * 6 + 9 * 6 * 6 + 4 * 6),
    Row("BottleneckBlock", partial(BottleneckBlock, in_channels=8, bottleneck_channels=2), _images(2, 8, 4, 4),
        (2, 8, 4, 4), {"bottleneck_channels": [0], "dims": [4]}, "BottleneckBlock",
        count=lambda: 2 * 8 + 8 * 2 + 2 * 2 + 9 * 2 * 2 + 2 * 2 + 2 * 8),
    Row("DenseLayer", partial(DenseLayer, in_channels=3, growth_rate=4), _images(2, 3, 5, 5), (2, 7, 5, 5),
        {"growth_rate": [0]}, "DenseLayer", count=lambda: 2 * 3 + 9 * 3 * 4),
    Row("DenseBlock", partial(DenseBlock, in_channels=3, n_layers=2, growth_rate=4), _images(2, 3, 5, 5),
        (2, 11, 5, 5), {"n_layers": [0]}, "DenseBlock", count=lambda: (2 * 3 + 9 * 3 * 4) + (2 * 7 + 9 * 7 * 4)),
    Row("Transition", partial(Transition, in_channels=8, out_channels=4), _images(2, 8, 4, 4), (2, 4, 2, 2),
        {"out_channels": [0]}, "Transition", count=lambda: 2 * 8 + 8 * 4),
    # graph networks (fig. 13.6)
    Row("GraphClassifier", partial(GraphClassifier, config=GNNConfig.tiny()), lambda: (_graphs(),), (2, 3),
        {"config": ["huge", 3, GNNConfig.tiny().to_dict()]}, "GraphClassifier",
        count=lambda: GNNConfig.tiny().parameter_count("graph")),
    Row("NodeClassifier-attention", partial(NodeClassifier, config=GNNConfig.tiny(layer="attention", heads=2)),
        lambda: (_graphs(),), (7, 3), {"config": [None, "small"]}, "NodeClassifier",
        count=lambda: GNNConfig.tiny(layer="attention", heads=2).parameter_count("node")),
    Row("EdgePredictor", partial(EdgePredictor, config=GNNConfig.tiny(combine="separate")),
        lambda: (_graphs(), torch.tensor([[0, 1], [0, 2], [4, 6]])), (3,), {"config": ["edges"]}, "EdgePredictor",
        count=lambda: GNNConfig.tiny(combine="separate").parameter_count("edge")),
    Row("StructureBlind", _blind_nodes, lambda: (_graphs(),), (7, 3), {"config": ["tiny2"]}, "NodeClassifier",
        count=lambda: GNNConfig.tiny().parameter_count("node")),
    # diffusion denoisers (fig. 18.1)
    Row("MLPDenoiser", MLPDenoiser.tiny, lambda: (_images(5, 2)()[0], torch.arange(1, 6)), (5, 2),
        {"d_in": [0, 1.5], "depth": [0], "d_time": [3, 0]}, "MLPDenoiser",
        count=lambda: MLPDenoiser.parameter_count(2, 8, 2, 4)),
    Row("DigitDenoiser", DigitDenoiser.tiny, lambda: (_images(2, 1, 8, 8)()[0], torch.tensor([1, 7]),
                                                      torch.tensor([0, 3])), (2, 1, 8, 8),
        {"n_classes": [0], "channels": [(4,), (4, 0), 4], "d_embed": [7], "groups": [3]}, "DigitDenoiser"),
    Row("VAE", VAE.tiny, _images(5, 8), (5, 8), {"config": ["huge", 3, VAEConfig.tiny().__dict__]}, "VAE",
        count=lambda: VAEConfig.tiny().parameter_count()),
    # StyleGAN (fig. 15.19): the generator takes its noise images as a list, one per layer
    Row("StyleGenerator", StyleGenerator.tiny,
        lambda: (_images(2, 4)()[0], [_images(2, 1, r, r)()[0] for r in (4, 4, 8, 8)]), (2, 1, 8, 8),
        {"config": ["huge", 3, None, StyleGANConfig.tiny().__dict__]}, "StyleGenerator",
        count=lambda: StyleGANConfig.tiny().parameter_count()),
    Row("MappingNetwork", partial(MappingNetwork, d_latent=3, d_style=4, depth=2), _images(5, 3), (5, 4),
        {"d_latent": [0, 1.5], "depth": [0]}, "MappingNetwork", count=lambda: 4 * 4 + 5 * 4),
    Row("AdaIN", partial(AdaIN, channels=3, d_style=2), lambda: (_images(2, 3, 4, 4)()[0], _images(2, 2)()[0]),
        (2, 3, 4, 4), {"channels": [0, 2.5], "eps": [0.0, -1.0]}, "AdaIN", count=lambda: 3 * 6),
    Row("StyleLayer", partial(StyleLayer, in_channels=2, channels=3, d_style=2),
        lambda: (_images(2, 2, 4, 4)()[0], _images(2, 1, 4, 4)()[0], _images(2, 2)()[0]), (2, 3, 4, 4),
        {"in_channels": [0, 1.5], "channels": [0]}, "StyleLayer", count=lambda: 9 * 2 * 3 + 3 + 3 + 3 * 6),
    Row("NoiseInjection", partial(NoiseInjection, channels=3),
        lambda: (_images(2, 3, 4, 4)()[0], _images(2, 1, 4, 4)()[0]), (2, 3, 4, 4), {"channels": [0, 2.5]},
        "NoiseInjection", count=lambda: 3, random=False),
    # CycleGAN (fig. 15.18): two translators; forward translates a batch of each domain
    Row("Translator", Translator.tiny, _images(2, 1, 8, 8), (2, 1, 8, 8),
        {"config": ["huge", 3, None, CycleGANConfig.tiny().__dict__]}, "Translator",
        count=lambda: CycleGANConfig.tiny().translator_parameter_count()),
    Row("CycleGAN", CycleGAN.tiny, lambda: (_images(2, 1, 8, 8)()[0], _images(3, 1, 6, 6)()[0]),
        ((2, 1, 8, 8), (3, 1, 6, 6)), {"config": ["huge", 3, None, CycleGANConfig.tiny().__dict__]}, "CycleGAN",
        count=lambda: CycleGANConfig.tiny().parameter_count()),
    # GAN core (figs. 14.2, 15.x): DCGAN's pair, the MLP pair for 2-D data, and the two held together
    Row("DCGANGenerator", DCGANGenerator.tiny, _images(2, 4), (2, 1, 8, 8), {"config": ["huge", 3, None]},
        "DCGANGenerator", count=lambda: GANConfig.tiny().generator_parameter_count()),
    Row("DCGANDiscriminator", DCGANDiscriminator.tiny, _images(2, 1, 8, 8), (2,), {"config": ["huge", 3, None]},
        "DCGANDiscriminator", count=lambda: GANConfig.tiny().discriminator_parameter_count()),
    Row("MLPGenerator", partial(MLPGenerator, d_latent=3, d_out=2, hidden=(4,)), _images(5, 3), (5, 2),
        {"hidden": [(), (0,), 4], "d_out": [0, 1.5]}, "MLPGenerator", count=lambda: 4 * 4 + 5 * 2),
    Row("MLPDiscriminator", partial(MLPDiscriminator, d_in=2, hidden=(4,)), _images(5, 2), (5,),
        {"slope": [1.0, -0.1], "hidden": [()]}, "MLPDiscriminator", count=lambda: 3 * 4 + 5 * 1),
    Row("GAN", _gan, _images(3, 4), (3, 1, 8, 8), {"d_latent": [0, 1.5]}, "GAN",
        count=lambda: GANConfig.tiny().generator_parameter_count() + GANConfig.tiny().discriminator_parameter_count(),
        no_grad=frozenset("discriminator_net." + name for name, _ in DCGANDiscriminator.tiny().named_parameters())),
    # progressive growing (fig. 15.9): both networks at stage 0 (4x4); grown stages in test_progressive_gan.py
    Row("ProgressiveGenerator", ProgressiveGenerator.tiny, _images(2, 4), (2, 1, 4, 4), {"config": ["huge", 3, None]},
        "ProgressiveGenerator", count=lambda: ProgressiveGANConfig.tiny().generator_parameter_count(0)),
    Row("ProgressiveDiscriminator", ProgressiveDiscriminator.tiny, _images(2, 1, 4, 4), (2,),
        {"config": ["huge", 3, None]}, "ProgressiveDiscriminator",
        count=lambda: ProgressiveGANConfig.tiny().discriminator_parameter_count(0)),
    # conditional GANs (fig. 15.13): one generator, the three discriminators, the pair
    Row("ConditionalGenerator", ConditionalGenerator.tiny, lambda: (_images(2, 3)()[0], torch.tensor([0, 2])),
        (2, 1, 8, 8), {"config": ["huge", 3, None]}, "ConditionalGenerator",
        count=lambda: ConditionalGANConfig.tiny().generator_parameter_count()),
    Row("ConditionalDiscriminator", ConditionalDiscriminator.tiny,
        lambda: (_images(2, 1, 8, 8)()[0], torch.tensor([0, 2])), (2,), {"config": ["huge", 3], "condition": ["add"]},
        "ConditionalDiscriminator", count=lambda: ConditionalGANConfig.tiny().discriminator_parameter_count("cgan")),
    Row("ConditionalDiscriminator-concat", partial(ConditionalDiscriminator.tiny, condition="concat"),
        lambda: (_images(2, 1, 8, 8)()[0], torch.tensor([1, 2])), (2,), {"condition": [None]},
        "ConditionalDiscriminator",
        count=lambda: ConditionalGANConfig.tiny().discriminator_parameter_count("cgan", "concat")),
    Row("AuxiliaryClassifierDiscriminator", AuxiliaryClassifierDiscriminator.tiny, _images(2, 1, 8, 8), ((2,), (2, 3)),
        {"config": ["huge", 3]}, "AuxiliaryClassifierDiscriminator",
        count=lambda: ConditionalGANConfig.tiny().discriminator_parameter_count("acgan")),
    Row("InfoGANDiscriminator", partial(InfoGANDiscriminator.tiny, config=ConditionalGANConfig.tiny(n_continuous=2)),
        _images(2, 1, 8, 8), ((2,), (2, 3), (2, 2)), {"config": ["huge", None]}, "InfoGANDiscriminator",
        count=lambda: ConditionalGANConfig.tiny(n_continuous=2).discriminator_parameter_count("infogan")),
    Row("ConditionalGAN", partial(ConditionalGAN.tiny, kind="acgan"), lambda: (_images(2, 3)()[0], torch.tensor([0, 2])),
        (2, 1, 8, 8), {"kind": ["wgan"], "config": ["huge"], "condition": [3]}, "ConditionalGAN",
        count=lambda: (ConditionalGANConfig.tiny().generator_parameter_count()
                       + ConditionalGANConfig.tiny().discriminator_parameter_count("acgan")),
        no_grad=frozenset("discriminator_net." + name
                          for name, _ in AuxiliaryClassifierDiscriminator.tiny().named_parameters())),
    # SRGAN (fig. 15.17): the x4 super-resolver (its last layer starts at zero) and its discriminator
    Row("SRResNet", partial(SRResNet, config=SRGANConfig.tiny()), _images(2, 3, 3, 5), (2, 3, 12, 20),
        {"config": ["huge", 3, None, SRGANConfig.tiny().__dict__]}, "SRResNet",
        count=SRGANConfig.tiny().generator_parameter_count),
    Row("SRResNet-batch-norm", partial(SRResNet, config=SRGANConfig.tiny(batch_norm=True, bicubic_skip=False)),
        _images(2, 3, 3, 5), (2, 3, 12, 20), {"config": ["ledig"]}, "SRResNet",
        count=SRGANConfig.tiny(batch_norm=True).generator_parameter_count),
    Row("SRDiscriminator", partial(SRDiscriminator, config=SRGANConfig.tiny()), _images(2, 3, 16, 12), (2,),
        {"config": ["huge", 3, None]}, "SRDiscriminator", count=SRGANConfig.tiny().discriminator_parameter_count),
    # Pix2Pix (fig. 15.16): the patch discriminator (4x4 convs: 4→2 with bias, 2→4 without + batch norm, 4→1)
    Row("PatchDiscriminator", partial(PatchDiscriminator, in_channels=4, width=2, n_layers=1), _images(2, 4, 8, 8),
        (2, 1, 2, 2), {"width": [0, 2.5], "n_layers": [0, 9], "batch_norm": [1]}, "PatchDiscriminator",
        count=lambda: (4 * 2 * 16 + 2) + 2 * 4 * 16 + 2 * 4 + (4 * 16 + 1)),
    Row("Colouriser", partial(Colouriser, levels=2, width=2), _images(2, 1, 8, 8), (2, 3, 8, 8),
        {"levels": [0, 1.5], "width": [0]}, "UNet", count=lambda: unet_parameter_count(1, 3, levels=2, width=2),
        generator_owner="Colouriser"),
    # DenseNet-BC with the ImageNet stem (the build of DenseNet-121, tiny)
    Row("DenseNet-BC", partial(DenseNet, config=DenseNetConfig.tiny(bottleneck=4, stem="imagenet")),
        _images(2, 3, 32, 32), (2, 10), {"config": ["densenet", 3]}, "DenseNet",
        count=lambda: DenseNetConfig.tiny(bottleneck=4, stem="imagenet").parameter_count),
    # the original post-activation ResNet (He et al. 2015; transformers' and torchvision's), tiny
    Row("ResNet-post", partial(ResNet, config=ResNetConfig.tiny(preact=False)), _images(2, 3, 32, 32), (2, 10),
        {"config": ["resnet1", 3]}, "ResNet", count=lambda: ResNetConfig.tiny(preact=False).parameter_count),
]
RANDOM = [row for row in ROWS if row.random]


def _ids(row: Row) -> str:
    return row.name


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _outputs(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # tied weights once


# --------------------------------------------------------------------------- a. randomness
@pytest.mark.parametrize("row", RANDOM, ids=_ids)
def test_the_generator_decides_the_weights_and_the_global_generator_is_left_alone(row):
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    first = _state(row.build(generator=torch.Generator().manual_seed(7)))
    again = _state(row.build(generator=torch.Generator().manual_seed(7)))
    seed = _state(row.build(generator=7))
    seed_again = _state(row.build(generator=np.int64(7)))  # NumPy ints are seeds too
    other = _state(row.build(generator=8))
    assert torch.equal(state, torch.get_rng_state())  # nothing was drawn from torch's global generator
    assert _same(first, again) and _same(seed, seed_again)
    assert not _same(seed, other)


# --------------------------------------------------------------------------- b. gradients
@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_every_parameter_gets_a_finite_gradient(row):
    model = row.build(generator=0) if row.random else row.build()
    outputs = _outputs(model(*row.example()))
    g = torch.Generator().manual_seed(1)
    # a random projection: a plain sum can be constant (a LayerNorm's outputs sum to D·δ)
    scalar = sum((out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum() for out in outputs)
    scalar.backward()
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing = sorted(name for name, p in trainable.items() if p.grad is None)
    assert missing == sorted(row.no_grad)
    assert all(torch.isfinite(p.grad).all() for p in trainable.values() if p.grad is not None)
    assert any(p.grad.abs().sum() > 0 for p in trainable.values() if p.grad is not None)


# --------------------------------------------------------------------------- c. meta device
@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_a_meta_build_allocates_nothing_and_counts_the_same_parameters(row):
    kwargs = dict(generator=0) if row.random else {}
    state = torch.get_rng_state()
    with torch.device("meta"):
        meta = row.build(**kwargs)
    assert torch.equal(state, torch.get_rng_state())
    assert all(t.is_meta for t in itertools.chain(meta.parameters(), meta.buffers()))
    real = row.build(**kwargs)
    assert _count(meta) == _count(real)
    assert {k: v.shape for k, v in meta.state_dict().items()} == {k: v.shape for k, v in real.state_dict().items()}
    if row.count is not None:
        assert _count(meta) == row.count()


# --------------------------------------------------------------------------- d. state_dict
@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_a_state_dict_round_trip_gives_identical_outputs(row):
    source, target = (row.build(generator=0), row.build(generator=1)) if row.random else (row.build(), row.build())
    source.eval(), target.eval()
    x, g = row.example(), torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in source.parameters():  # away from any special start (zero heads, equal seeds...)
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        before = _outputs(target(*x))
        target.load_state_dict(source.state_dict())
        want, got = _outputs(source(*x)), _outputs(target(*x))
    assert all(torch.equal(a, b) for a, b in zip(want, got))
    assert not all(torch.equal(a, b) for a, b in zip(want, before))  # the weights did change the outputs


# --------------------------------------------------------------------------- e. bad arguments
def _bad_cases():
    for row in ROWS:
        for name, values in row.bad.items():
            for value in values:
                yield pytest.param(row, name, value, row.owner, id=f"{row.name}-{name}={value!r}")
        if row.random:
            for value in BAD_GENERATORS:
                yield pytest.param(row, "generator", value, row.generator_owner or row.owner,
                                   id=f"{row.name}-generator={value!r}")


@pytest.mark.parametrize("row, name, value, owner", list(_bad_cases()))
def test_bad_arguments_get_the_one_line_template_error(row, name, value, owner):
    with pytest.raises((TypeError, ValueError)) as info:
        row.build(**{name: value})
    template = rf"The '{name}' parameter of {re.escape(owner)} must be .+\. Got .+ instead\."
    assert re.fullmatch(template, str(info.value)), str(info.value)


# --------------------------------------------------------------------------- f. good arguments
@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_good_arguments_work(row):
    model = row.build(generator=0) if row.random else row.build()
    with torch.no_grad():
        out = model(*row.example())
    shapes = tuple(tuple(o.shape) for o in _outputs(out))
    assert shapes == (row.shape if isinstance(row.shape[0], tuple) else (row.shape,))
    assert all(torch.isfinite(o).all() for o in _outputs(out))
