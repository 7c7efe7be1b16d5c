"""How colourful an image is: the colourfulness metric of Hasler and Süsstrunk (2003).

A colouriser trained with an L1 loss alone hedges where a colour is uncertain: the
median of the plausible colours, often a washed-out brownish grey (UDL §15.4.2). The
metric measures that. From the opponent colour axes

    rg = R − G,    yb = ½ (R + G) − B

over the pixels of one image,

    M = √(σ_rg² + σ_yb²) + 0.3 · √(μ_rg² + μ_yb²),

where σ and μ are the standard deviation and the mean over the pixels. A grey image
(R = G = B) scores 0. Hasler and Süsstrunk fitted the form to people's ratings of
8-bit images, so the values here are on their 0-255 scale: RGB in [0, 1] is multiplied
by 255 first (about 15 reads "slightly colourful", 33 "moderately", 59 "quite", 82
"highly colourful").

Example::

    >>> grey = torch.full((1, 3, 4, 4), 0.5)
    >>> red = torch.zeros(1, 3, 4, 4); red[:, 0] = 1.0
    >>> [round(m, 2) for m in colourfulness(torch.cat([grey, red])).tolist()]   # 0.3 · 255 · √(1 + ¼)
    [0.0, 85.53]
"""

from __future__ import annotations

import torch

from udl.validate import check_tensor

__all__ = ["colourfulness", "opponent_channels"]

SCALE = 255.0  # the metric was fitted to 8-bit values


def opponent_channels(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The opponent colour axes rg = R − G and yb = ½(R + G) − B, each ``(N, H, W)``, in the input's units."""
    check_tensor(rgb, "rgb", "opponent_channels", shape=("N", 3, "H", "W"), dtype="float")
    r, g, b = rgb.unbind(1)  # each (N, H, W)
    return r - g, 0.5 * (r + g) - b


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler and Süsstrunk's colourfulness M of each image, on the 0-255 scale.

    Args:
        rgb: RGB images with values in [0, 1]. σ is the population standard deviation
            over an image's pixels (as the paper's).

    Returns:
        ``(N,)``: M = √(σ_rg² + σ_yb²) + 0.3 √(μ_rg² + μ_yb²) per image, ≥ 0.

    Shape:
        ``(N, 3, H, W) -> (N,)``.
    """
    check_tensor(rgb, "rgb", "colourfulness", shape=("N", 3, "H", "W"), dtype="float")
    rg, yb = opponent_channels(rgb * SCALE)
    spread = (rg.var(dim=(1, 2), unbiased=False) + yb.var(dim=(1, 2), unbiased=False)).sqrt()
    mean = (rg.mean(dim=(1, 2)) ** 2 + yb.mean(dim=(1, 2)) ** 2).sqrt()
    return spread + 0.3 * mean
