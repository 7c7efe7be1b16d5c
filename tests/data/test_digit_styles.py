"""udl.data.digit_styles: the bold map against scipy's grey dilation, the unpaired split, the held-out pairs."""

import numpy as np
import pytest
import torch
from scipy.ndimage import grey_dilation

from udl.data.digit_styles import digit_domains, embolden
from udl.data.images import load_digits


@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_embolden_is_scipys_grey_dilation_by_a_horizontal_line(width):
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(width))
    # scipy centres the footprint on pixel width // 2; origin -(width // 2) moves it onto x_{i, j-k}, k < width
    origin = (0, -(width // 2))
    ref = np.stack([grey_dilation(img[0].numpy(), footprint=np.ones((1, width), bool), origin=origin,
                                  mode="constant", cval=0.0) for img in x])
    assert np.abs(embolden(x, width=width)[:, 0].numpy() - ref).max() == 0.0


def test_embolden_by_hand_and_its_shapes():
    row = torch.tensor([[0.0, 0.5, 0.0, 0.25, 0.75, 0.125]])
    assert embolden(row, width=2).tolist() == [[0.0, 0.5, 0.5, 0.25, 0.75, 0.75]]
    assert embolden(row, width=3).tolist() == [[0.0, 0.5, 0.5, 0.5, 0.75, 0.75]]
    x = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(embolden(x, width=1), x)
    assert embolden(x).shape == (4, 8, 8) and torch.equal(embolden(x)[:, None], embolden(x[:, None]))
    assert torch.equal(embolden(x.numpy()), embolden(x))
    bold = embolden(x)
    assert bool((bold >= x).all())  # a dilation never removes ink


def test_the_training_domains_are_disjoint_halves_and_the_held_out_digits_are_paired():
    d = digit_domains(seed=3)
    x, y = load_digits("train", seed=0, flat=False)
    x_held, y_held = load_digits("test", seed=0, flat=False)
    assert d.a.shape == d.b.shape == (len(x) // 2, 1, 8, 8)
    assert d.held_a.shape == d.held_b.shape == (len(x_held), 1, 8, 8)
    assert torch.equal(d.held_a[:, 0], torch.from_numpy(x_held))
    assert torch.equal(d.held_labels, torch.from_numpy(y_held))
    assert torch.equal(d.held_b, embolden(d.held_a))
    # each training digit is in A, or in B emboldened, never in both
    flat = torch.from_numpy(x).reshape(len(x), -1)
    a_rows = (torch.cdist(d.a.reshape(len(d.a), -1), flat) == 0).float().argmax(1)
    bold_all = embolden(torch.from_numpy(x)).reshape(len(x), -1)
    b_rows = (torch.cdist(d.b.reshape(len(d.b), -1), bold_all) == 0).float().argmax(1)
    assert torch.equal(torch.from_numpy(y)[a_rows], d.labels_a) and torch.equal(torch.from_numpy(y)[b_rows], d.labels_b)
    assert len(set(a_rows.tolist()) & set(b_rows.tolist())) == 0
    assert len(set(a_rows.tolist())) == len(d.a) and len(set(b_rows.tolist())) == len(d.b)
    # the seed names the halving
    assert torch.equal(digit_domains(seed=3).a, d.a) and not torch.equal(digit_domains(seed=4).a, d.a)
    # bold digits carry more ink: the 2-pixel line adds about a half again
    assert 1.2 < float(d.b.mean() / d.a.mean()) < 1.7


def test_bad_arguments_get_one_line():
    with pytest.raises(ValueError, match="The 'width' parameter of embolden"):
        embolden(torch.zeros(1, 8, 8), width=0)
    with pytest.raises(TypeError, match="The 'images' parameter of embolden"):
        embolden(torch.zeros(1, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="The 'images' parameter of embolden"):
        embolden(torch.zeros(8))
    with pytest.raises(ValueError, match="The 'seed' parameter of digit_domains"):
        digit_domains(seed=-1)
