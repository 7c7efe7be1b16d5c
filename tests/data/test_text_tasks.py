"""The word-order task: labels exact by construction, balanced, deterministic, split by topic."""

from collections import Counter

import numpy as np
import pytest
import torch

from udl.data.text import python_docs_tokenizer, sentences
from udl.data.text_tasks import shuffle_inner_words, word_order


@pytest.fixture(scope="module")
def task():
    return word_order("validation", n_sentences=60, seed=3)


def test_shuffle_keeps_the_words_the_ends_and_changes_the_order():
    rng = np.random.default_rng(0)
    for _ in range(50):
        out = shuffle_inner_words("The  cat sat on the\nmat.", rng).split()
        assert out[0] == "The" and out[-1] == "mat." and sorted(out[1:-1]) == ["cat", "on", "sat", "the"]
        assert out != ["The", "cat", "sat", "on", "the", "mat."]
    # every one of the 3! - 1 = 5 other orders of three inner words appears, about equally often
    counts = Counter(shuffle_inner_words("a b c d e", rng) for _ in range(2500))
    assert len(counts) == 5 and "a b c d e" not in counts
    assert all(abs(c / 2500 - 0.2) < 0.04 for c in counts.values())
    with pytest.raises(ValueError, match="'sentence'"):
        shuffle_inner_words("a b b c", rng)


def test_labels_are_exact_by_construction(task):
    pool = {" ".join(s.split()) for s in sentences("validation")}
    for text, label, original in zip(task.texts, task.labels.tolist(), task.originals):
        assert original in pool
        if label == 0:
            assert text == original
        else:
            words, orig = text.split(), original.split()
            assert words != orig and sorted(words) == sorted(orig)  # the same words, another order
            assert words[0] == orig[0] and words[-1] == orig[-1]


def test_balanced_and_paired(task):
    assert len(task.texts) == 120 and int(task.labels.sum()) == 60
    assert task.labels.dtype == torch.long and task.classes == ("as written", "inner words shuffled")
    by_original = {}
    for original, label in zip(task.originals, task.labels.tolist()):
        by_original.setdefault(original, []).append(label)
    assert len(by_original) == 60 and all(sorted(v) == [0, 1] for v in by_original.values())


def test_deterministic_given_the_seed(task):
    again = word_order("validation", n_sentences=60, seed=3)
    assert again.texts == task.texts and torch.equal(again.labels, task.labels)
    assert word_order("validation", n_sentences=60, seed=4).texts != task.texts


def test_splits_are_disjoint():
    train = set(word_order("train", n_sentences=300, seed=0).originals)
    test = word_order("test")
    assert not train & set(test.originals)
    assert len(set(test.originals)) == len(test.texts) // 2  # each distinct sentence once


def test_token_limit_holds_for_both_versions():
    tok = python_docs_tokenizer(2000)
    task = word_order("test", tokenizer=tok, max_tokens=20)
    assert len(task.texts) > 20
    for text, original in zip(task.texts, task.originals):
        ids = tok.encode(text)
        assert len(ids) <= 20 and sorted(ids) == sorted(tok.encode(original))  # the same tokens, reordered


def test_bad_arguments():
    with pytest.raises(ValueError, match="'n_sentences'"):
        word_order("test", n_sentences=10_000)
    with pytest.raises(ValueError, match="'split'"):
        word_order("dev")
    with pytest.raises(ValueError, match="'max_tokens'"):
        word_order("test", max_tokens=20)
