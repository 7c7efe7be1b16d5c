"""udl.data.numbers: numbers in words, tokens, alignment, and disjoint balanced splits."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from udl.data import numbers as nb

KNOWN = {
    0: "zero", 5: "five", 13: "thirteen", 20: "twenty", 21: "twenty-one", 40: "forty", 99: "ninety-nine",
    100: "one hundred", 101: "one hundred one", 110: "one hundred ten", 115: "one hundred fifteen",
    999: "nine hundred ninety-nine", 1000: "one thousand", 1001: "one thousand one", 1010: "one thousand ten",
    4071: "four thousand seventy-one", 12_345: "twelve thousand three hundred forty-five",
    100_000: "one hundred thousand", 1_000_000: "one million", 1_000_005: "one million five",
    1_002_000: "one million two thousand", 7_000_000: "seven million", 20_000_019: "twenty million nineteen",
    40_000_000: "forty million", 300_000_040: "three hundred million forty",
    115_000_020: "one hundred fifteen million twenty",
    999_999_999: "nine hundred ninety-nine million nine hundred ninety-nine thousand nine hundred ninety-nine",
}


def _reference(n: int) -> str:
    """An independent, recursive spelling (the same US convention) to cross-check against."""
    small = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
             "sixteen seventeen eighteen nineteen").split()
    tens = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
    if n < 20:
        return small[n]
    if n < 100:
        return tens[n // 10] + ("" if n % 10 == 0 else "-" + small[n % 10])
    for size, word in ((10 ** 6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return f"{_reference(head)} {word}" + ("" if rest == 0 else " " + _reference(rest))
    raise AssertionError


@pytest.mark.parametrize("n, words", sorted(KNOWN.items()))
def test_known_spellings(n, words):
    assert nb.number_to_words(n) == words
    assert _reference(n) == words


@settings(max_examples=150, deadline=None)
@given(st.integers(0, nb.MAX_NUMBER))
def test_agrees_with_an_independent_spelling_and_round_trips_tokens(n):
    words = nb.number_to_words(n)
    assert words == _reference(n)
    tokens = nb.words_to_tokens(words)
    assert nb.tokens_to_words(tokens) == words
    assert set(tokens) <= set(nb.TARGET_VOCAB[3:])
    ids = nb.encode_target([n])[0]
    assert ids[0] == nb.BOS and ids[-1] == nb.EOS and len(ids) == len(tokens) + 2
    assert nb.decode_target(ids) == words
    assert nb.decode_source(nb.encode_source([n])[0]) == nb.format_number(n) == f"{n:,}"


@settings(max_examples=100, deadline=None)
@given(st.integers(0, nb.MAX_NUMBER), st.booleans())
def test_alignment_points_at_the_digits_each_word_names(n, commas):
    text = nb.format_number(n, commas=commas)
    tokens = nb.words_to_tokens(nb.number_to_words(n))
    align = nb.target_alignment(n, commas=commas)
    assert len(align) == len(tokens)
    value = {w: i for i, w in enumerate(("zero one two three four five six seven eight nine").split())}
    for token, positions in zip(tokens, align):
        assert positions and all(text[p].isdigit() for p in positions)
        if token in value:  # a digit word names exactly its digit
            assert len(positions) == 1 and text[positions[0]] == str(value[token])
        if token in ("thousand", "million"):  # the whole group, never all zeros
            assert any(text[p] != "0" for p in positions) and len(positions) <= 3


def test_alignment_examples():
    assert nb.target_alignment(4071) == [(0,), (0,), (3,), (3, 4), (4,)]  # "4,071"
    assert nb.target_alignment(13) == [(0, 1)]
    assert nb.target_alignment(1_000_005) == [(0,), (0,), (8,)]  # "1,000,005": one million five
    assert nb.target_alignment(1_000_005, commas=False) == [(0,), (0,), (6,)]


def test_lengths_are_the_longest_sequences():
    assert (nb.source_length(9), nb.target_length(9)) == (11, 19)
    assert nb.source_length(9, commas=False) == 9
    lengths = np.array([len(nb.words_to_tokens(nb.number_to_words(n))) for n in range(10_000)])
    digits = np.array([len(str(n)) for n in range(10_000)])
    for d in range(1, 5):
        assert lengths[digits == d].max() + 2 == nb.target_length(d)


def test_encoding_pads_on_the_right():
    src = nb.encode_source([4071, 5])
    assert src.tolist() == [[5, 11, 1, 8, 2], [6, 0, 0, 0, 0]]
    assert nb.encode_source([5], length=3).tolist() == [[6, 0, 0]]
    tgt = nb.encode_target([21], length=6)
    assert [nb.TARGET_VOCAB[i] for i in tgt[0]] == ["<bos>", "twenty", "-", "one", "<eos>", "<pad>"]
    with pytest.raises(ValueError, match="'length'"):
        nb.encode_source([4071], length=3)


def test_bad_numbers_are_refused():
    for bad in (-1, 10 ** 9):
        with pytest.raises(ValueError, match="'n' parameter of number_to_words"):
            nb.number_to_words(bad)
    with pytest.raises(TypeError):
        nb.number_to_words(2.0)
    with pytest.raises(ValueError, match="'numbers'"):
        nb.encode_target([3, -2])
    with pytest.raises(ValueError, match="at most 2 digits"):
        nb.make_number_pairs([100], max_digits=2)


def test_splits_are_disjoint_balanced_and_seeded():
    s = nb.make_number_splits(9000, 300, 900, seed=3)
    train, val, test = (set(p.numbers.tolist()) for p in s)
    assert not (train & val or train & test or val & test)
    assert len(val) == len(s.validation.numbers) and len(test) == len(s.test.numbers)  # held out: distinct
    digits = {k: np.bincount([len(str(n)) for n in p.numbers], minlength=10)[1:] for k, p in s._asdict().items()}
    assert digits["train"].tolist() == [1000] * 9  # balanced over the number of digits
    # at most 10 % of a magnitude per held-out split: 1 of 10, 9 of 90, then the even share of 100
    assert digits["test"].tolist() == [1, 9, 90, 100, 100, 100, 100, 100, 100]
    assert digits["validation"].tolist() == [1, 9, 33, 33, 33, 33, 34, 34, 34]  # remainder to the longest
    assert set(range(10)) - train - val - test == set()  # the short magnitudes are used whole
    assert s.train.src.shape == (9000, 11) and s.test.tgt.shape == (len(test), 19)
    for p in s:
        for i in (0, len(p.numbers) - 1):
            assert nb.decode_target(p.tgt[i]) == nb.number_to_words(int(p.numbers[i]))
            assert nb.decode_source(p.src[i]) == nb.format_number(int(p.numbers[i]))
    again = nb.make_number_splits(9000, 300, 900, seed=3)
    assert all(torch.equal(a.src, b.src) and torch.equal(a.tgt, b.tgt) for a, b in zip(s, again))
    other = nb.make_number_splits(9000, 300, 900, seed=4)
    assert not np.array_equal(s.test.numbers, other.test.numbers)


def test_small_splits_without_commas():
    s = nb.make_number_splits(50, 5, 5, max_digits=2, commas=False, seed=0)
    assert s.train.src.shape == (50, 2) and s.train.tgt.shape == (50, nb.target_length(2))
    assert all(n < 100 for p in s for n in p.numbers)
    assert not set(s.train.numbers.tolist()) & set(s.test.numbers.tolist())
