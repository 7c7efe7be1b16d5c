"""What each input of a style-based generator controls, measured (UDL §15.6, fig. 15.19).

Two claims about a trained :class:`udl.models.stylegan.StyleGenerator`:

- :func:`mixing_classes`: with the coarse layers styled by w_a and the fine ones by w_b
  (style mixing), the digit's class follows the coarse style. For pairs whose pure
  images the independent classifier (:func:`udl.analysis.generative.digit_classifier`)
  puts in different classes, the share of mixed images given the coarse source's class
  and the share given the fine source's class.
- :func:`noise_change_bands`: drawing new noise changes only fine detail. The change of
  an image when its noise is drawn again, and when its latent is, are split by spatial
  frequency (:func:`udl.analysis.image_quality.high_frequency_energy`): the share of each
  change's energy (mean square) above a cutoff frequency, and their sizes.

Example::

    >>> model, _ = digits_stylegan()        # 1,500 steps, cached (fig. 15.19's, seed 0)
    >>> mixed = mixing_classes(model, 1000, generator=2)
    >>> round(mixed["coarse_share"], 2), round(mixed["fine_share"], 2)
    (0.43, 0.06)
    >>> bands = noise_change_bands(model, 1000, generator=4)
    >>> bands["noise_high_share"] > bands["style_high_share"], bands["noise_energy"] < bands["style_energy"]
    (True, True)
"""

from __future__ import annotations

import torch

from udl.analysis.generative import digit_classifier
from udl.analysis.image_quality import high_frequency_energy
from udl.models.stylegan import StyleGenerator
from udl.validate import as_generator, check_float, check_instance, check_int

__all__ = ["mixing_classes", "noise_change_bands"]


def _digits(images: torch.Tensor) -> torch.Tensor:
    """The independent classifier's class of each 8x8 image ``(B, 1, 8, 8)``."""
    with torch.enable_grad():  # the first call on a machine trains the classifier
        judge = digit_classifier()
    with torch.no_grad():
        return judge(images.detach().cpu().float().clamp(0, 1)).argmax(1)  # (B,)


@torch.no_grad()
def mixing_classes(model: StyleGenerator, n: int, *, crossover: int | None = None,
                   generator: torch.Generator | int = 0) -> dict:
    """Which source a style-mixed digit's class follows: the coarse style's or the fine style's.

    Draws z_a, z_b ``(n, D_z)`` and one set of noise images, makes the pure images
    x_a = G(z_a), x_b = G(z_b) and the mixed x_m (layers below ``crossover`` styled by
    w_a, the rest by w_b, :meth:`StyleGenerator.mix`), and classifies all three.

    Args:
        model: a generator of 8x8 one-channel images (the digits).
        n: pairs drawn.
        crossover: the first layer styled by w_b. Default: 2 (the 4x4 layers are coarse).
        generator: the draws: a ``torch.Generator`` or an int seed. Default: 0.

    Returns:
        ``{"coarse_share", "fine_share", "other_share", "pairs", "classes_a", "classes_b",
        "classes_mixed"}``: over the ``pairs`` whose pure images are classified
        differently, the shares of mixed images classified as x_a's class, as x_b's, and as
        neither (the three sum to 1; nan when no pair differs); the classes are ``(n,)``.
    """
    owner = "mixing_classes"
    check_instance(model, "model", owner, StyleGenerator)
    n = check_int(n, "n", owner)
    if crossover is not None:
        crossover = check_int(crossover, "crossover", owner, minimum=0, maximum=model.n_styles)
    generator = as_generator(generator, owner, optional=False)
    z_a, z_b = model.latent(n, generator=generator), model.latent(n, generator=generator)
    noise = model.draw_noise(n, generator=generator)
    c_a, c_b = _digits(model(z_a, noise)), _digits(model(z_b, noise))
    c_m = _digits(model.mix(z_a, z_b, noise, crossover))
    differ = c_a != c_b
    pairs = int(differ.sum())
    share = (lambda hit: float((hit & differ).sum()) / pairs) if pairs else (lambda hit: float("nan"))
    coarse, fine = share(c_m == c_a), share(c_m == c_b)
    return {"coarse_share": coarse, "fine_share": fine, "other_share": 1.0 - coarse - fine if pairs else coarse,
            "pairs": pairs, "classes_a": c_a, "classes_b": c_b, "classes_mixed": c_m}


@torch.no_grad()
def noise_change_bands(model: StyleGenerator, n: int, *, cutoff: float = 0.25,
                       generator: torch.Generator | int = 0) -> dict:
    """How an image changes when its noise is drawn again, and when its latent is: size and frequency.

    Draws z, z' ``(n, D_z)`` and noise sets ν, ν'; the changes are
    Δ_noise = G(z, ν') − G(z, ν) and Δ_style = G(z', ν) − G(z, ν). The energy of a change
    is its mean square over pixels (summed over channels); the high-frequency share is
    the part above ``cutoff`` cycles per pixel (by Parseval, from the DFT), summed over
    the n images, over the total.

    Args:
        model: the generator.
        n: images.
        cutoff: the frequency between "coarse" and "fine", in cycles per pixel, in [0, 0.5].
            Default: 0.25 (detail finer than 4 pixels).
        generator: the draws. Default: 0.

    Returns:
        ``{"noise_energy", "style_energy", "noise_high_share", "style_high_share",
        "noise_change", "style_change"}``: the mean energies of the two changes, their
        high-frequency shares (nan for a change of zero energy) and the changes
        themselves, ``(n, C, H, W)``.
    """
    owner = "noise_change_bands"
    check_instance(model, "model", owner, StyleGenerator)
    n = check_int(n, "n", owner)
    cutoff = check_float(cutoff, "cutoff", owner, low=0.0, high=0.5)
    generator = as_generator(generator, owner, optional=False)
    z, z2 = model.latent(n, generator=generator), model.latent(n, generator=generator)
    nu, nu2 = model.draw_noise(n, generator=generator), model.draw_noise(n, generator=generator)
    x = model(z, nu)
    out = {}
    for name, change in (("noise", model(z, nu2) - x), ("style", model(z2, nu) - x)):
        change = change.double()
        energy = change.pow(2).mean((2, 3)).sum(1)  # (n,): mean square, channels summed
        high = high_frequency_energy(change, cutoff=cutoff)  # (n,)
        total = float(energy.sum())
        out[f"{name}_energy"] = float(energy.mean())
        out[f"{name}_high_share"] = float(high.sum()) / total if total > 0 else float("nan")
        out[f"{name}_change"] = change.float().cpu()
    return out
