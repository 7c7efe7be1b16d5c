"""How close a reconstructed image is to the truth, and how much fine detail it holds (UDL §15.4.4).

Super-resolution is judged two ways that pull apart (fig. 15.17):

- :func:`psnr`, the peak signal-to-noise ratio, measures fidelity pixel by pixel::

      PSNR = 10 log₁₀( peak² / MSE ),   MSE = mean over pixels and channels of (x̂ − x)²

  in decibels, higher is better; peak is the largest possible value (1 for images in
  [0, 1]). A network trained on the squared error maximises it, and the best it can do
  when the fine detail is uncertain is to predict its average: a blur.
- :func:`high_frequency_energy` measures how much fine detail there is: the mean
  square of the part of the image above a spatial frequency, computed from the
  discrete Fourier transform. By Parseval's theorem the mean square of an image equals
  the sum of its power spectrum |X̂(u, v)|² / (H W)², so the part above a cutoff is the
  sum over the frequencies (u, v) with √(u² + v²) > cutoff (in cycles per pixel; 0.5 is
  the Nyquist frequency along one axis). A blurred image has less of it than the truth;
  an adversarial loss pushes it back towards the truth's (Ledig et al. 2017).
- :func:`radial_power_spectrum` gives the power at every frequency radius, to draw.

The transform treats each image as periodic, so the jump between opposite edges adds
some high-frequency power; it adds about the same to images that agree at their edges
(a reconstruction and its truth), and comparisons are between such images.

All functions take batches ``(N, C, H, W)`` and return one value per image.

Example::

    >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> psnr(x.clamp(0, 0.9), x).shape, high_frequency_energy(x).shape
    (torch.Size([2]), torch.Size([2]))
"""

from __future__ import annotations

import math

import torch

from udl.validate import _refuse, check_float, check_int, check_tensor

__all__ = ["psnr", "frequency_radius", "high_frequency_energy", "radial_power_spectrum"]

_NCHW = ("N", "C", "H", "W")


def psnr(estimate: torch.Tensor, target: torch.Tensor, *, peak: float = 1.0, border: int = 0) -> torch.Tensor:
    """The peak signal-to-noise ratio of each image, in decibels.

        PSNR = 10 log₁₀( peak² / MSE ),  MSE over the pixels and channels of one image

    Args:
        estimate: x̂, ``(N, C, H, W)``.
        target: x, the same shape.
        peak: the largest value a pixel can take. Default 1 (images in [0, 1]).
        border: pixels left out on every side (super-resolution results are often
            compared without a border as wide as the scale factor, where a network
            sees zero padding). Default 0.

    Returns:
        ``(N,)``; +inf where the images are equal.

    Example::

        >>> psnr(torch.full((1, 1, 2, 2), 0.1), torch.zeros(1, 1, 2, 2))  # MSE 0.01: 20 dB
        tensor([20.])
    """
    owner = "psnr"
    check_tensor(estimate, "estimate", owner, shape=_NCHW, dtype="float")
    check_tensor(target, "target", owner, shape=tuple(estimate.shape), dtype="float")
    peak = check_float(peak, "peak", owner, low=0.0, low_open=True)
    border = check_int(border, "border", owner, minimum=0)
    if 2 * border >= min(estimate.shape[2:]):
        _refuse("border", owner, f"less than half the image's shorter side {min(estimate.shape[2:])}", str(border))
    if border:
        estimate = estimate[..., border:-border, border:-border]
        target = target[..., border:-border, border:-border]
    mse = (estimate - target).pow(2).flatten(1).mean(1)  # (N,)
    return 10.0 * torch.log10(peak ** 2 / mse)


def frequency_radius(height: int, width: int, *, device: torch.device | str = "cpu") -> torch.Tensor:
    """√(u² + v²) at every entry of a ``height x width`` DFT, in cycles per pixel (``torch.fft.fftfreq`` order).

    Shape:
        ``(height, width)``, values in [0, √2 / 2].
    """
    u = torch.fft.fftfreq(check_int(height, "height", "frequency_radius"), device=device, dtype=torch.float64)
    v = torch.fft.fftfreq(check_int(width, "width", "frequency_radius"), device=device, dtype=torch.float64)
    return (u[:, None] ** 2 + v[None, :] ** 2).sqrt()  # (H, W)


def _power(x: torch.Tensor) -> torch.Tensor:
    """|X̂(u, v)|² / (H W)², summed over channels: sums to the image's mean square per channel summed (Parseval)."""
    h, w = x.shape[-2:]
    spectrum = torch.fft.fft2(x.double())  # (N, C, H, W), complex
    return (spectrum.abs() ** 2).sum(1) / (h * w) ** 2  # (N, H, W)


def high_frequency_energy(images: torch.Tensor, *, cutoff: float = 0.25) -> torch.Tensor:
    """The mean square of each image's content above a spatial frequency (the fine detail).

        E = Σ_{√(u²+v²) > cutoff} |X̂(u, v)|² / (H W)²,   summed over channels

    which by Parseval's theorem is the mean square over pixels of the image high-pass
    filtered at ``cutoff`` (an ideal filter); with ``cutoff=0`` it is the variance of
    each channel, summed.

    Args:
        images: ``(N, C, H, W)``.
        cutoff: in cycles per pixel, in [0, 0.5] (0.5: the Nyquist frequency of one
            axis; 0.25: details finer than 4 pixels). Default 0.25.

    Returns:
        ``(N,)``, float64.

    Example::

        >>> x = torch.cos(math.pi * torch.arange(8.0))[None, None, None].expand(1, 1, 8, 8)  # ±1, 0.5 cycles/pixel
        >>> high_frequency_energy(x), high_frequency_energy(x, cutoff=0.5)
        (tensor([1.], dtype=torch.float64), tensor([0.], dtype=torch.float64))
    """
    owner = "high_frequency_energy"
    check_tensor(images, "images", owner, shape=_NCHW, dtype="float")
    cutoff = check_float(cutoff, "cutoff", owner, low=0.0, high=0.5)
    radius = frequency_radius(*images.shape[-2:], device=images.device)
    return (_power(images) * (radius > cutoff)).sum((-2, -1))  # (N,)


def radial_power_spectrum(images: torch.Tensor, n_bins: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """The power of the images by frequency radius: |X̂|² / (H W)² summed in rings, averaged over the images.

    Args:
        images: ``(N, C, H, W)``.
        n_bins: rings of equal width between 0 and √2 / 2 cycles per pixel (the DC term
            is left out). Default 16.

    Returns:
        ``(centres, power)``, each ``(n_bins,)``: the middle radius of each ring and the
        power in it (summed over channels, averaged over images); the powers sum to the
        images' mean variance, summed over channels.
    """
    owner = "radial_power_spectrum"
    check_tensor(images, "images", owner, shape=_NCHW, dtype="float")
    n_bins = check_int(n_bins, "n_bins", owner)
    radius = frequency_radius(*images.shape[-2:], device=images.device).flatten()  # (H·W,)
    top = math.sqrt(2) / 2
    ring = (radius / top * n_bins).ceil().long().clamp(1, n_bins) - 1  # (0, w] -> 0, ..., the DC term -> 0 too
    power = _power(images).mean(0).flatten()  # (H·W,)
    power = torch.where(radius > 0, power, torch.zeros_like(power))  # leave out the mean
    totals = torch.zeros(n_bins, dtype=power.dtype, device=power.device).index_add_(0, ring, power)
    centres = (torch.arange(n_bins, dtype=torch.float64) + 0.5) * top / n_bins
    return centres, totals.cpu()
