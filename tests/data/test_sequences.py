"""udl.data.sequences: the first-token task's labels, distractors and seeding."""

import torch

from udl.data.sequences import first_token_task


def test_the_label_is_the_first_token_and_the_rest_are_distractors():
    tokens, labels = first_token_task(2000, 12, n_classes=3, vocab_size=8, seed=4)
    assert tokens.shape == (2000, 12) and tokens.dtype == torch.long
    assert torch.equal(tokens[:, 0], labels)
    assert set(labels.tolist()) == {0, 1, 2} and set(tokens[:, 1:].unique().tolist()) == set(range(3, 8))
    counts = torch.bincount(labels, minlength=3).double() / 2000
    assert (counts - 1 / 3).abs().max() < 0.05  # balanced on average: chance is 1/K
    # the distractors say nothing about the label: their mean is the same in every class
    means = [tokens[labels == k, 1:].double().mean().item() for k in range(3)]
    assert max(means) - min(means) < 0.05


def test_example_i_does_not_depend_on_how_many_are_asked_for():
    few, _ = first_token_task(3, 6, seed=1)
    many, _ = first_token_task(50, 6, seed=1)
    other, _ = first_token_task(3, 6, seed=2)
    assert torch.equal(few, many[:3]) and not torch.equal(few, other)


def test_length_one_is_the_label_alone():
    tokens, labels = first_token_task(5, 1, seed=0)
    assert tokens.shape == (5, 1) and torch.equal(tokens[:, 0], labels)
