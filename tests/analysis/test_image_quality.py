"""udl.analysis.image_quality: PSNR against scikit-image, spectral energies against closed forms."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from udl.analysis.image_quality import frequency_radius, high_frequency_energy, psnr, radial_power_spectrum


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_psnr_equals_scikit_image_per_image():
    from skimage.metrics import peak_signal_noise_ratio

    truth = rand(3, 3, 12, 10)
    noisy = (truth + 0.05 * rand(3, 3, 12, 10, seed=1) - 0.025).clamp(0, 1)
    ours = psnr(noisy, truth)
    for i in range(3):
        ref = peak_signal_noise_ratio(truth[i].numpy(), noisy[i].numpy(), data_range=1.0)
        assert abs(float(ours[i]) - ref) < 1e-10
    # another peak, and a border left out
    ref = peak_signal_noise_ratio(255 * truth[0, :, 2:-2, 2:-2].numpy(), 255 * noisy[0, :, 2:-2, 2:-2].numpy(),
                                  data_range=255.0)
    assert abs(float(psnr(255 * noisy, 255 * truth, peak=255.0, border=2)[0]) - ref) < 1e-10


def test_psnr_closed_form_and_equal_images():
    x = torch.zeros(2, 1, 4, 4)
    assert psnr(x + 0.1, x).tolist() == pytest.approx([20.0, 20.0], abs=1e-5)  # MSE 0.01
    assert psnr(x + 0.01, x)[0].item() == pytest.approx(40.0, abs=1e-4)  # ten times smaller error: +20 dB
    assert math.isinf(psnr(x, x)[0].item())


def test_high_frequency_energy_of_cosines_is_half_the_squared_amplitude_above_the_cutoff():
    n = 32
    rows = torch.arange(n, dtype=torch.float64)
    for f, a in ((0.125, 2.0), (0.3125, 0.5), (0.0625, 1.0)):  # cycles per pixel, on the DFT's grid
        image = (a * torch.cos(2 * math.pi * f * rows))[:, None].expand(n, n)[None, None]  # varies down the rows
        for cutoff in (0.0, 0.1, 0.25, 0.4):
            expected = a ** 2 / 2 if f > cutoff else 0.0
            assert abs(float(high_frequency_energy(image, cutoff=cutoff)[0]) - expected) < 1e-12
    # a diagonal wave: radius √(u² + v²)
    i, j = torch.meshgrid(rows, rows, indexing="ij")
    diagonal = torch.cos(2 * math.pi * 0.1875 * (i + j))[None, None]  # u = v = 0.1875: radius 0.265
    assert abs(float(high_frequency_energy(diagonal, cutoff=0.26)[0]) - 0.5) < 1e-12
    assert abs(float(high_frequency_energy(diagonal, cutoff=0.27)[0])) < 1e-12


def test_parseval_cutoff_zero_is_the_variance_and_the_high_pass_image_has_the_energy():
    x = rand(2, 3, 9, 14, seed=2)
    var = x.var(dim=(-2, -1), unbiased=False).sum(1)
    torch.testing.assert_close(high_frequency_energy(x, cutoff=0.0), var, rtol=1e-12, atol=1e-12)
    # the ideal high-pass image built in the frequency domain has that mean square
    keep = frequency_radius(9, 14) > 0.2
    high = torch.fft.ifft2(torch.fft.fft2(x) * keep).real
    torch.testing.assert_close(high_frequency_energy(x, cutoff=0.2), high.pow(2).mean((-2, -1)).sum(1),
                               rtol=1e-10, atol=1e-12)
    centres, power = radial_power_spectrum(x, 8)
    assert centres.shape == power.shape == (8,)
    assert abs(float(power.sum()) - float(var.mean())) < 1e-12


def test_blurring_lowers_the_high_frequency_energy_and_the_psnr():
    x = rand(4, 3, 32, 32, seed=3)
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="circular"), 3, stride=1)  # a 3x3 box blur
    assert (high_frequency_energy(blurred) < 0.2 * high_frequency_energy(x)).all()
    assert (psnr(blurred, x) < 20).all()


@pytest.mark.parametrize("call", [
    lambda: psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5)),
    lambda: psnr(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)),
    lambda: psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), peak=0.0),
    lambda: psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), border=2),
    lambda: high_frequency_energy(torch.zeros(1, 1, 4, 4), cutoff=0.6),
    lambda: high_frequency_energy(np.zeros((1, 1, 4, 4))),
    lambda: radial_power_spectrum(torch.zeros(1, 1, 4, 4), 0),
])
def test_bad_arguments_are_refused(call):
    with pytest.raises((ValueError, TypeError), match=r"^The '\w+' parameter of \w+ must be .+\. Got .+ instead\.$"):
        call()
