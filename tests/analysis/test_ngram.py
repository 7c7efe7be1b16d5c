"""Unigram and bigram baselines against hand counts."""

import math

import numpy as np
import pytest

from udl.analysis.ngram import BigramModel, UnigramModel, perplexity


def test_unigram_counts_with_add_k():
    m = UnigramModel(4, k=1.0).fit([0, 0, 1, 2])
    np.testing.assert_allclose(m.probabilities, [3 / 8, 2 / 8, 2 / 8, 1 / 8])
    assert m.cross_entropy([0, 3]) == pytest.approx(-(math.log(3 / 8) + math.log(1 / 8)) / 2)


def test_bigram_counts_and_cross_entropy():
    tokens = [0, 1, 0, 1, 0, 2]
    m = BigramModel(3, k=0.5).fit(tokens)
    assert m.counts[0, 1] == 2 and m.counts[0, 2] == 1 and m.counts[1, 0] == 2
    np.testing.assert_allclose(m.conditional(0), [0.5 / 4.5, 2.5 / 4.5, 1.5 / 4.5])
    np.testing.assert_allclose(m.conditional(0).sum(), 1.0)
    score = [0, 1, 0]
    expected = -(math.log(m.unigram.probabilities[0]) + math.log(m.conditional(0)[1])
                 + math.log(m.conditional(1)[0])) / 3
    assert m.cross_entropy(score) == pytest.approx(expected)


def test_bigram_beats_unigram_on_a_predictable_sequence():
    tokens = np.tile([0, 1, 2, 3], 200)
    uni, bi = UnigramModel(4).fit(tokens), BigramModel(4).fit(tokens)
    assert uni.cross_entropy(tokens) == pytest.approx(math.log(4), abs=1e-3)
    assert bi.cross_entropy(tokens) < 0.01
    assert perplexity(math.log(4)) == pytest.approx(4.0)


def test_ids_outside_the_vocabulary_are_refused():
    with pytest.raises(ValueError, match="ids in \\[0, 3\\)"):
        UnigramModel(3).fit([0, 3])
