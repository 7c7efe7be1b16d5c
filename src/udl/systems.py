"""The registry of complete learning systems udl implements, tagged by paradigm.

Figure 1.1 draws the book's taxonomy (supervised, unsupervised, reinforcement
learning) from this list, so it grows as chapters land: add one line per system.
Each entry names the class (``"module:Class"``) and the keyword arguments of a
small instance; the figure imports and builds every entry and measures its depth.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import torch

from udl.models.gpt import GPTConfig
from udl.models.vae import VAEConfig

PARADIGMS = ("supervised", "unsupervised", "reinforcement")


@dataclass(frozen=True)
class System:
    name: str  # what a reader calls it
    paradigm: str  # one of PARADIGMS
    target: str  # "package.module:Class" of its torch.nn.Module
    kwargs: dict[str, Any] = field(default_factory=dict)  # a small instance
    chapter: int = 0  # where the book introduces it
    declares_depth: bool = True  # False where the module's ``depth`` counts something else than its hidden layers

    def build(self, **extra: Any) -> Any:
        """Import and instantiate the system (``extra`` adds arguments, e.g. ``generator``).

        Most systems are ``torch.nn.Module`` networks; a mixture of Gaussians is a plain
        object holding its parameter tensors.
        """
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)(**self.kwargs, **extra)


SYSTEMS: tuple[System, ...] = (
    System("shallow network (regression)", "supervised", "udl.nn.shallow:ShallowNetwork",
           dict(d_in=1, d_hidden=3, d_out=1), chapter=3),
    System("deep network (regression)", "supervised", "udl.nn.deep:DeepNetwork",
           dict(widths=[3, 4, 2, 3, 2]), chapter=4),
    System("binary classifier (Bernoulli)", "supervised", "udl.models.classifier:BernoulliClassifier",
           dict(d_in=1, hidden=(16, 16)), chapter=5),
    System("deep autoencoder", "unsupervised", "udl.models.autoencoder:Autoencoder",
           dict(d_in=64, hidden=(32, 16), d_code=8), chapter=1),
    System("policy network (REINFORCE)", "reinforcement", "udl.rl.reinforce:PolicyNetwork",
           dict(n_states=16, n_actions=4, hidden=(32, 32)), chapter=19),
    System("convolutional network (MNIST-1D)", "supervised", "udl.models.mnist1d_nets:ConvNet1D", chapter=10),
    System("fully connected network (MNIST-1D)", "supervised", "udl.models.mnist1d_nets:FullyConnected1D",
           chapter=10),
    System("YOLO detector (object detection)", "supervised", "udl.models.yolo:YOLO", dict(config="tiny"),
           chapter=10),
    System("ResNet (image classification)", "supervised", "udl.models.resnet:ResNet", dict(config="tiny"),
           chapter=11),
    System("DenseNet (image classification)", "supervised", "udl.models.densenet:DenseNet", dict(config="tiny"),
           chapter=11),
    System("U-Net (image segmentation)", "supervised", "udl.models.unet:UNet", dict(levels=3, width=8), chapter=11),
    System("3D U-Net (volume segmentation)", "supervised", "udl.models.unet:UNet",
           dict(dims=3, levels=3, width=8, padding="same", batch_norm=True), chapter=11),
    System("stacked hourglass (pose estimation)", "supervised", "udl.models.hourglass:StackedHourglass",
           dict(n_joints=14, n_stacks=2, channels=16, depth=2), chapter=11),
    # unsupervised models of chapters 12-18, sized for udl.analysis.taxonomy's probes (fig. 14.1)
    System("mixture of Gaussians", "unsupervised", "udl.models.mixture:MixtureOfGaussians",
           dict(weights=(0.3, 0.7), means=(-1.5, 1.0), covariances=(0.5, 1.0)), chapter=17),
    System("variational autoencoder", "unsupervised", "udl.models.vae:VAE",
           dict(config=VAEConfig(d_in=2, hidden=(16, 16), d_latent=1, n_trials=4)), chapter=17),
    # the denoiser's ``depth`` counts its main path; the time embedding's layers sit beside it
    System("diffusion model (denoiser)", "unsupervised", "udl.models.denoisers:MLPDenoiser",
           dict(d_in=1, width=16, depth=2, d_time=8), chapter=18, declares_depth=False),
    System("GPT decoder (language model)", "unsupervised", "udl.models.gpt:GPT",
           dict(config=GPTConfig.tiny(vocab_size=5, context=8)), chapter=12),
    # the generative model of a GAN is its generator (z ~ N(0, I) -> g[z]); the discriminator only trains it
    System("GAN (DCGAN generator)", "unsupervised", "udl.models.gan:DCGANGenerator", dict(config="tiny"),
           chapter=15),
)


def weight_layers(module: torch.nn.Module) -> int:
    """The number of ``nn.Linear`` and convolution layers (each holds one weight matrix or kernel)."""
    kinds = (torch.nn.Linear, torch.nn.modules.conv._ConvNd)
    return sum(isinstance(m, kinds) for m in module.modules())


def parameter_count(system: Any) -> int:
    """The numbers a system learns: a module's parameters, or the tensors a plain model object holds."""
    if isinstance(system, torch.nn.Module):
        return sum(p.numel() for p in system.parameters())
    return sum(v.numel() for k, v in vars(system).items() if torch.is_tensor(v) and not k.startswith("_"))


def survey(systems: tuple[System, ...] = SYSTEMS) -> list[dict[str, Any]]:
    """Build every system and measure it: parameters, weight layers, hidden layers.

    "Hidden layers" counts the weight layers less the output layer (none for a model
    without weight layers, such as a mixture of Gaussians); a network with two or more
    is deep (UDL §4.3). A system that fails to build, or builds something that holds
    no parameters, is reported, not raised.
    """
    rows = []
    for system in systems:
        row = {"name": system.name, "paradigm": system.paradigm, "target": system.target,
               "chapter": system.chapter, "builds": False, "error": "", "params": 0,
               "weight_layers": 0, "hidden_layers": -1, "declared_depth": -1}
        try:
            module = system.build()
        except Exception as error:  # noqa: BLE001 - a broken entry is reported by the caller's checks
            row["error"] = f"{type(error).__name__}: {error}"
            rows.append(row)
            continue
        row["params"] = parameter_count(module)
        row["builds"] = row["params"] > 0
        if not row["builds"]:
            row["error"] = f"{type(module).__name__} holds no parameters"
        row["weight_layers"] = weight_layers(module) if isinstance(module, torch.nn.Module) else 0
        row["hidden_layers"] = max(row["weight_layers"] - 1, 0)
        depth = getattr(module, "depth", None) if system.declares_depth else None
        row["declared_depth"] = int(depth) if isinstance(depth, int) else -1
        rows.append(row)
    return rows
