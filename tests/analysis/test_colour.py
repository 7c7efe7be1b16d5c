import numpy as np
import pytest
import torch

from udl.analysis.colour import colourfulness, opponent_channels


def _reference(img: np.ndarray) -> float:
    """The paper's formula written out on one (H, W, 3) 8-bit-scaled image, in NumPy."""
    r, g, b = (img[..., k].astype(np.float64).ravel() for k in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def test_equals_the_formula_on_random_images():
    x = torch.rand(4, 3, 5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = [_reference(255 * img.permute(1, 2, 0).numpy()) for img in x]
    np.testing.assert_allclose(colourfulness(x).numpy(), expected, rtol=1e-12)


def test_closed_forms():
    grey = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(1)).expand(1, 3, 6, 6)
    assert float(colourfulness(grey)) == 0.0  # R = G = B: no colour, however bright or varied
    half = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    half[0, 0, :, 0] = 1.0  # left column red, right column black: rg ∈ {255, 0}, yb ∈ {127.5, 0}
    sigma = np.sqrt((255 / 2) ** 2 + (127.5 / 2) ** 2)  # a two-valued variable's σ is half its range
    mean = np.sqrt((255 / 2) ** 2 + (127.5 / 2) ** 2)
    assert float(colourfulness(half)) == pytest.approx(sigma + 0.3 * mean, rel=1e-12)
    rg, yb = opponent_channels(half)
    assert rg.shape == (1, 2, 2) and float(rg[0, 0, 0]) == 1.0 and float(yb[0, 0, 0]) == 0.5


def test_desaturating_lowers_it():
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grey = x.mean(1, keepdim=True)
    scores = [colourfulness(grey + t * (x - grey)) for t in (1.0, 0.5, 0.0)]
    torch.testing.assert_close(scores[1], 0.5 * scores[0])  # M is linear in the distance from grey
    assert bool((scores[2] == 0).all())


def test_bad_input():
    with pytest.raises(ValueError, match=r"^The 'rgb' parameter of colourfulness must be a tensor of shape"):
        colourfulness(torch.zeros(2, 1, 4, 4))
