"""The vision transformer (ViT): an image read as a sequence of patches (UDL §12.10.2, fig. 12.17).

A transformer needs a sequence of embeddings. ViT makes one from an image by cutting it
into a grid of non-overlapping P x P patches (16 x 16 in the original, so a 224 x 224
image gives 14 x 14 = 196 of them) and flattening each patch into a vector of C·P²
numbers. A learned linear map Ω_p (the same for every patch) turns each vector into a
patch embedding of size D::

    x_n = Ω_p · vec(patch_n) + β_p                  n = 1..N,  N = (H/P)·(W/P)

Because the patches do not overlap, this is exactly a convolution with kernel P and
stride P whose C_out = D filters are the rows of Ω_p (:meth:`PatchEmbedding.to_conv`).
A learned ``<cls>`` embedding is put in front, a learned position embedding is added
to each of the N + 1 tokens (the patches carry no other clue to where they came from),
and the sequence passes through L pre-LN transformer layers (§12.4, GELU in the MLP)
and a final LayerNorm. The output at ``<cls>`` feeds a linear layer whose softmax gives
the class probabilities::

    X = [e_cls; x_1; ...; x_N] + P                 (N + 1, D)
    X ← X + MhSa[LayerNorm[X]];  X ← X + mlp[LayerNorm[X]]      L times
    logits = Ω_h · LayerNorm[X]_cls + β_h

Nothing in this network knows that neighbouring patches are related: unlike a
convolutional network, it must learn that from the data (the position embeddings start
random), which is why the book says transformers need more training data than CNNs.

The layout follows Hugging Face ``transformers``' ``ViTModel`` and
``ViTForImageClassification`` (the tests copy weights between the two and compare
outputs and gradients): pre-LN layers with exact GELU, LayerNorm ε = 10⁻¹² (the original
JAX code uses 10⁻⁶), a final LayerNorm, and a linear head on ``<cls>`` (the ``tanh``
pooler of ``ViTModel`` is not part of its classifier, nor of this one).

Sizes: :meth:`ViTConfig.vit_base` is ViT-B/16 (86.6 million parameters, counted in
closed form by :meth:`ViTConfig.parameter_formula` and on the meta device);
:meth:`ViTConfig.digits` a model that learns scikit-learn's 8 x 8 digits in seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.init import initialised_from
from udl.nn.transformer import LearnedPositions, TransformerLayer, check_transformer_config
from udl.validate import as_generator, check_float, check_input, check_int, check_tensor

__all__ = ["ViTConfig", "ViT", "PatchEmbedding", "image_patches", "parameter_count"]


# --------------------------------------------------------------------------- patches
def image_patches(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping P x P patches and flatten each one (fig. 12.17).

    The patches are listed row by row (left to right, then top to bottom), and each is
    flattened channel by channel, then row by row, the order of a convolution's weights
    ``(C_out, C, P, P)``, so that :class:`PatchEmbedding` equals a strided convolution.

    Args:
        images: ``(B, C, H, W)``, H and W multiples of P.
        patch_size: P.

    Returns:
        ``(B, N, C·P²)`` with N = (H/P)·(W/P).

    Example::

        >>> image_patches(torch.arange(16.0).view(1, 1, 4, 4), 2)[0, 1].tolist()  # the top-right patch
        [2.0, 3.0, 6.0, 7.0]
    """
    owner = "image_patches"
    p = check_int(patch_size, "patch_size", owner)
    if not (isinstance(images, torch.Tensor) and images.dim() == 4):
        check_tensor(images, "images", owner, shape=("B", "C", "H", "W"))
    b, c, h, w = images.shape
    if h % p or w % p:
        raise ValueError(f"The 'patch_size' parameter of {owner} must divide the image's height and width "
                         f"({h} x {w}). Got {p} instead.")
    x = images.reshape(b, c, h // p, p, w // p, p)  # (B, C, H/P, P, W/P, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, H/P, W/P, C, P, P)
    return x.reshape(b, (h // p) * (w // p), c * p * p)  # (B, N, C·P²)


class PatchEmbedding(nn.Module):
    """The linear patch embedding: x_n = Ω_p · vec(patch_n) + β_p for every patch n.

    Args:
        patch_size: P.
        in_channels: C.
        d_model: D.
        generator: the initial weights' randomness (torch's default for a linear layer,
            U(-1/√(C·P²), 1/√(C·P²))), a ``torch.Generator`` or an int seed (keyword-only).
            Default: torch's global generator.

    Attributes:
        linear: ``nn.Linear(C·P², D)``; its weight is Ω_p ``(D, C·P²)``.

    Shape:
        ``(B, C, H, W)`` -> ``(B, N, D)``, N = (H/P)·(W/P).

    Example::

        >>> embed = PatchEmbedding(2, 1, 8, generator=0)
        >>> embed(torch.zeros(3, 1, 8, 8)).shape
        torch.Size([3, 16, 8])
    """

    def __init__(self, patch_size: int, in_channels: int, d_model: int, *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "PatchEmbedding"
        self.patch_size = check_int(patch_size, "patch_size", owner)
        self.in_channels = check_int(in_channels, "in_channels", owner)
        self.d_model = check_int(d_model, "d_model", owner)
        with initialised_from(self, as_generator(generator, owner)):
            self.linear = nn.Linear(in_channels * patch_size ** 2, d_model)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(image_patches(images, self.patch_size))  # (B, N, C·P²) -> (B, N, D)

    def to_conv(self) -> nn.Conv2d:
        """The equal convolution: kernel P, stride P, its D filters the rows of Ω_p reshaped to ``(C, P, P)``.

        Its output ``(B, D, H/P, W/P)``, flattened to ``(B, D, N)`` and transposed, is
        this module's output (Hugging Face's ``ViTPatchEmbeddings`` computes it so).
        """
        p, c, d = self.patch_size, self.in_channels, self.d_model
        weight = self.linear.weight
        conv = nn.Conv2d(c, d, p, stride=p, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight.view(d, c, p, p))  # (D, C·P²) -> (D, C, P, P)
            conv.bias.copy_(self.linear.bias)
        return conv


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class ViTConfig:
    """The shape of a :class:`ViT`; the defaults are ViT-B/16.

    Presets: :meth:`vit_base` (ViT-B/16, 86.6 million parameters), :meth:`digits`
    (8 x 8 grey digits cut into 2 x 2 patches: 16 tokens and ``<cls>``) and
    :meth:`tiny` (for tests).

    Example::

        >>> ViTConfig.vit_base().n_patches
        196
    """

    image_size: int = 224  # H = W, the side of the (square) input image
    patch_size: int = 16  # P: each patch is P x P pixels; P must divide the image size
    in_channels: int = 3  # C, the image's channels (3 for RGB)
    n_classes: int = 1000  # K, the classifier's outputs
    n_layers: int = 12  # L, transformer layers
    d_model: int = 768  # D, the embedding size
    n_heads: int = 12  # H; each head has D/H dimensions
    d_mlp: int | None = None  # hidden width of each token's MLP; None means 4·D
    dropout: float = 0.0  # dropout on embeddings, attention weights and block outputs (training only)
    activation: str = "gelu"  # the MLP's activation: exact "gelu" as ViT, or "relu", "gelu_tanh"
    norm_first: bool = True  # True: pre-LN as ViT (with a final LayerNorm); False: the book's post-LN
    eps: float = 1e-12  # LayerNorm's ε (Hugging Face's ViT; the original uses 1e-6)
    init_std: float = 0.02  # σ of the initial <cls> and position embeddings, N(0, σ²)

    def __post_init__(self):
        owner = "ViTConfig"
        check_transformer_config(self, owner, ("image_size", "patch_size", "in_channels", "n_layers", "d_model",
                                               "n_heads"), ("norm_first",))
        check_int(self.n_classes, "n_classes", owner, minimum=2)
        if self.image_size % self.patch_size:
            raise ValueError(f"The 'patch_size' parameter of {owner} must divide image_size = {self.image_size}. "
                             f"Got {self.patch_size} instead.")
        check_float(self.eps, "eps", owner, low=0.0, low_open=True)
        check_float(self.init_std, "init_std", owner, low=0.0, low_open=True)

    @property
    def grid(self) -> int:
        """Patches along each side, H/P."""
        return self.image_size // self.patch_size

    @property
    def n_patches(self) -> int:
        """N = (H/P)², the number of patch tokens (``<cls>`` not counted)."""
        return self.grid ** 2

    @property
    def d_patch(self) -> int:
        """C·P², the length of a flattened patch."""
        return self.in_channels * self.patch_size ** 2

    @classmethod
    def vit_base(cls, **changes) -> ViTConfig:
        """ViT-B/16: 224 x 224 RGB images in 16 x 16 patches, 12 layers, D = 768, 12 heads, MLP 3,072, 1,000 classes."""
        return cls(**changes)

    @classmethod
    def digits(cls, **changes) -> ViTConfig:
        """8 x 8 grey digits in 2 x 2 patches (16 tokens and <cls>), 10 classes, 2 layers, D = 64, 4 heads, MLP 128.

        ``<cls>`` and the positions start at N(0, 0.2²): with ViT's 0.02 they are about a
        tenth of the patch embeddings of a 4-pixel patch, the patches look alike to
        attention wherever they are, and the model learns slowly (on digits, 600 AdamW
        steps reach 0.975 held-out accuracy from either, but from 100 images 0.83 with
        0.2 and 0.66 with 0.02).
        """
        return cls(**{**dict(image_size=8, patch_size=2, in_channels=1, n_classes=10, n_layers=2, d_model=64,
                             n_heads=4, d_mlp=128, init_std=0.2), **changes})

    @classmethod
    def tiny(cls, **changes) -> ViTConfig:
        """A test-sized model: 8 x 8 grey images in 2 x 2 patches, 3 classes, 2 layers, D = 16, 2 heads, MLP 32."""
        return cls(**{**dict(image_size=8, patch_size=2, in_channels=1, n_classes=3, n_layers=2, d_model=16,
                             n_heads=2, d_mlp=32), **changes})

    def parameter_formula(self) -> dict[str, int]:
        """The parameters of each part, in closed form.

        With N patches of C·P² numbers, F the MLP width and K classes::

            patch embedding   C·P²·D + D           Ω_p and β_p
            <cls>             D
            positions         (N + 1)·D
            attention         L·(4D² + 4D)         Ω_q, Ω_k, Ω_v, Ω_c and their biases
            MLP               L·(2DF + F + D)
            LayerNorm         L·4D (+ 2D pre-LN)   two per layer (+ the final one), gain and offset
            head              D·K + K

        ViT-B/16 (D = 768, L = 12, F = 3,072, N = 196, K = 1,000) has 86,567,656.
        """
        D, F_, L, K = self.d_model, self.d_mlp, self.n_layers, self.n_classes
        return {"patch embedding": self.d_patch * D + D, "<cls>": D, "positions": (self.n_patches + 1) * D,
                "attention": L * (4 * D * D + 4 * D), "MLP": L * (2 * D * F_ + F_ + D),
                "LayerNorm": L * 4 * D + 2 * D * int(self.norm_first), "head": D * K + K}

    def parameter_count(self) -> int:
        """The total of :meth:`parameter_formula`."""
        return sum(self.parameter_formula().values())

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- the model
class ViT(nn.Module):
    """A vision transformer classifier (fig. 12.17): patches, ``<cls>``, positions, L layers, a head on ``<cls>``.

    Args:
        config: a :class:`ViTConfig`.
        generator: randomness of the initial weights, a ``torch.Generator`` or an int
            seed (keyword-only): torch's defaults for the linear layers, N(0, σ²) with
            σ = ``config.init_std`` for ``<cls>`` and the positions, LayerNorm gains 1
            and offsets 0, and a head of zeros (every class equally likely at the start,
            as in ViT). Default: torch's global generator. Built under
            ``torch.device("meta")`` the model holds shapes only and draws nothing.

    Attributes:
        patch_embed: :class:`PatchEmbedding`. cls_token: e_cls ``(D,)``.
        positions: :class:`~udl.nn.transformer.LearnedPositions` for N + 1 tokens.
        layers: L :class:`~udl.nn.transformer.TransformerLayer`. norm: the final
        LayerNorm (pre-LN; identity for post-LN). head: ``nn.Linear(D, K)``.

    Shape:
        ``images``: ``(B, C, H, W)`` with H = W = ``config.image_size`` -> logits ``(B, K)``.

    Example::

        >>> vit = ViT(ViTConfig.tiny(), generator=0)
        >>> vit(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 3])
    """

    def __init__(self, config: ViTConfig, *, generator: torch.Generator | int | None = None):
        super().__init__()
        if not isinstance(config, ViTConfig):
            raise TypeError(f"The 'config' parameter of ViT must be a ViTConfig. Got {config!r} instead.")
        generator = as_generator(generator, "ViT")
        self.config = c = config
        with initialised_from(self, generator):  # every layer drawn from the generator on leaving
            self.patch_embed = PatchEmbedding(c.patch_size, c.in_channels, c.d_model)
            self.cls_token = nn.Parameter(torch.empty(c.d_model))
            self.positions = LearnedPositions(c.n_patches + 1, c.d_model, std=c.init_std)
            self.layers = nn.ModuleList(
                TransformerLayer(c.d_model, c.n_heads, c.d_mlp, dropout=c.dropout, norm_first=c.norm_first,
                                 activation=c.activation, eps=c.eps) for _ in range(c.n_layers))
            # pre-LN leaves the residual stream un-normalised: one more LayerNorm at the end
            self.norm = nn.LayerNorm(c.d_model, eps=c.eps) if c.norm_first else nn.Identity()
            self.head = nn.Linear(c.d_model, c.n_classes)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """e_cls ~ N(0, σ²) and a zero head; run after the layers' own initialisation."""
        self.cls_token.copy_(torch.randn(self.cls_token.shape, generator=generator) * self.config.init_std)
        self.head.weight.zero_()
        self.head.bias.zero_()

    def _check(self, images) -> None:
        c, weight = self.config, self.patch_embed.linear.weight
        if not (isinstance(images, torch.Tensor) and images.dim() == 4 and images.dtype == weight.dtype
                and images.shape[1:] == (c.in_channels, c.image_size, c.image_size)):
            check_input(images, "images", "ViT", shape=("B", c.in_channels, c.image_size, c.image_size),
                        dtype=weight.dtype)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's input: ``[e_cls; x_1..x_N] + P``, ``(B, C, H, W)`` -> ``(B, N + 1, D)``."""
        self._check(images)
        x = self.patch_embed(images)  # (B, N, D)
        cls = self.cls_token.expand(len(x), 1, -1)  # (B, 1, D)
        x = self.positions(torch.cat([cls, x], 1))  # (B, N + 1, D)
        return F.dropout(x, self.config.dropout, self.training) if self.config.dropout > 0 else x

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The output embedding of every token, ``<cls>`` first: ``(B, C, H, W)`` -> ``(B, N + 1, D)``.

        Equals ``transformers``' ``ViTModel(...).last_hidden_state`` with the same weights.
        """
        x = self.embed(images)
        for layer in self.layers:
            x = layer(x)  # every token attends to every token
        return self.norm(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits from the output at ``<cls>``: ``(B, C, H, W)`` -> ``(B, K)``."""
        return self.head(self.encode(images)[:, 0])


def parameter_count(config: ViTConfig) -> int:
    """The parameters of a :class:`ViT` with ``config``, counted on a model built on the meta device."""
    if not isinstance(config, ViTConfig):
        raise TypeError(f"The 'config' parameter of parameter_count must be a ViTConfig. Got {config!r} instead.")
    with torch.device("meta"):
        model = ViT(config)
    return sum(p.numel() for p in model.parameters())
