"""A small translation task with exact labels: numbers in digits to English words (UDL §12.8).

The encoder-decoder of §12.8 translates a sentence of one language into another. This
task has the same shape and a label that is never in doubt: the source is an integer
written in digits, the target is the same number in English words::

    "4,071"        ->  "four thousand seventy-one"
    "900,000,013"  ->  "nine hundred million thirteen"

**Convention** (US English, as in a cheque): no "and"; tens and units joined by a
hyphen ("seventy-one"); the group words "thousand" and "million" follow each non-zero
group of three digits, and an all-zero group is skipped ("one million five"); 0 is
"zero". :func:`number_to_words` is exact for 0 ... 999,999,999.

**Tokens.** The source is read character by character: the ten digits and the comma
that separates groups of three (``commas=False`` writes "4071"). The target is cut at
spaces and hyphens, the hyphen being a token of its own ("seventy", "-", "one"), so
the target vocabulary is closed: 20 words for 0-19, 8 for the tens, "hundred",
"thousand", "million", "-", and the specials ``<pad>`` (0), ``<bos>`` (1) and
``<eos>`` (2). Source ids: ``<pad>`` (0), then "0"-"9", then ",".

**Splits.** The number of digits d is uniform over 1 ... ``max_digits`` and, given d,
the number is uniform over the d-digit numbers (0-9 count as one digit), so that every
magnitude is represented equally rather than in proportion to how many numbers it
has. Test, then validation, numbers are drawn first, *distinct*, with an even share of
each split per magnitude, but never more than ``HELD_OUT_SHARE`` (10 %) of a
magnitude's numbers per held-out split (at least one): a held-out split has fewer
short numbers than the even share when there are too few (one of the ten 1-digit
numbers, nine of the 2-digit ones). Training examples are then drawn (with
replacement, balanced over d) from the numbers of neither held-out split: the three
splits share no number, and the training set repeats the few short numbers as often
as the model needs to see that magnitude.

Example::

    >>> number_to_words(4071)
    'four thousand seventy-one'
    >>> splits = make_number_splits(200, 20, 20, max_digits=4, seed=0)
    >>> splits.train.src.shape, splits.train.tgt.shape
    (torch.Size([200, 5]), torch.Size([200, 9]))
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch

from udl.validate import check_int, is_int

__all__ = ["number_to_words", "format_number", "words_to_tokens", "tokens_to_words", "target_alignment",
           "SOURCE_VOCAB", "TARGET_VOCAB", "PAD", "BOS", "EOS", "MAX_NUMBER", "HELD_OUT_SHARE",
           "source_length", "target_length", "encode_source", "encode_target", "decode_source", "decode_target",
           "NumberPairs", "NumberSplits", "make_number_pairs", "make_number_splits", "digit_count"]

MAX_NUMBER = 999_999_999
HELD_OUT_SHARE = 0.10  # at most this share of a magnitude's numbers goes to each held-out split

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ("", "thousand", "million")

PAD, BOS, EOS = 0, 1, 2  # the special ids, the same in both vocabularies where they exist
SOURCE_VOCAB = ("<pad>", *"0123456789", ",")
TARGET_VOCAB = ("<pad>", "<bos>", "<eos>", *_ONES, *_TENS[2:], "hundred", "thousand", "million", "-")
_SOURCE_ID = {t: i for i, t in enumerate(SOURCE_VOCAB)}
_TARGET_ID = {t: i for i, t in enumerate(TARGET_VOCAB)}


# --------------------------------------------------------------------------- words
def _check_number(n, owner: str) -> int:
    if isinstance(n, np.integer):
        n = int(n)
    n = check_int(n, "n", owner, minimum=0)
    if n > MAX_NUMBER:
        raise ValueError(f"The 'n' parameter of {owner} must be an int in [0, {MAX_NUMBER:,}]. Got {n} instead.")
    return n


def _aligned_tokens(n: int) -> list[tuple[str, tuple[int, ...]]]:
    """The target tokens of ``n``, each with the digits it speaks for (digit 0 = units, 1 = tens, ...)."""
    if n == 0:
        return [("zero", (0,))]
    n_digits = len(str(n))
    out: list[tuple[str, tuple[int, ...]]] = []
    for k in (2, 1, 0):  # millions, thousands, units group
        g = n // 1000 ** k % 1000
        if not g:
            continue  # an all-zero group is not spoken
        base = 3 * k  # the digit index of the group's units digit
        h, r = divmod(g, 100)
        if h:
            out += [(_ONES[h], (base + 2,)), ("hundred", (base + 2,))]
        if r >= 20:
            t, u = divmod(r, 10)
            out.append((_TENS[t], (base + 1,)))
            if u:
                out += [("-", (base + 1, base)), (_ONES[u], (base,))]
        elif r >= 10:  # the teens name two digits at once
            out.append((_ONES[r], (base + 1, base)))
        elif r:
            out.append((_ONES[r], (base,)))
        if k:
            out.append((_SCALES[k], tuple(i for i in (base + 2, base + 1, base) if i < n_digits)))
    return out


def number_to_words(n: int) -> str:
    """``n`` in English words, US style without "and": 4071 -> "four thousand seventy-one".

    Args:
        n: an int in [0, 999,999,999].

    Example::

        >>> number_to_words(115_000_020)
        'one hundred fifteen million twenty'
    """
    n = _check_number(n, "number_to_words")
    return tokens_to_words([t for t, _ in _aligned_tokens(n)])


def format_number(n: int, *, commas: bool = True) -> str:
    """The source sentence: ``n`` in digits, with a comma between groups of three if ``commas``.

    Example::

        >>> format_number(4071), format_number(4071, commas=False)
        ('4,071', '4071')
    """
    n = _check_number(n, "format_number")
    return f"{n:,}" if commas else str(n)


def digit_count(n: int) -> int:
    """The number of digits of ``n`` written without commas (1 for 0 ... 9)."""
    return len(str(_check_number(n, "digit_count")))


def words_to_tokens(words: str) -> list[str]:
    """Cut a sentence at spaces and hyphens, keeping each hyphen as a token.

    Example::

        >>> words_to_tokens("four thousand seventy-one")
        ['four', 'thousand', 'seventy', '-', 'one']
    """
    if not isinstance(words, str):
        raise TypeError(f"The 'words' parameter of words_to_tokens must be a str. Got {words!r} instead.")
    return words.replace("-", " - ").split()


def tokens_to_words(tokens: Sequence[str]) -> str:
    """The inverse of :func:`words_to_tokens`: join with spaces, hyphens without.

    Example::

        >>> tokens_to_words(['seventy', '-', 'one'])
        'seventy-one'
    """
    return " ".join(tokens).replace(" - ", "-")


def target_alignment(n: int, *, commas: bool = True) -> list[tuple[int, ...]]:
    """For each target token of ``n`` (no specials), the source positions of the digits it names.

    A word for a digit points at that digit ("seventy" at the tens digit), a teen and the
    hyphen at the tens and units digits, "hundred" at the hundreds digit, "thousand" and
    "million" at every digit of their group. Positions index the characters of
    :func:`format_number` (commas included).

    Example::

        >>> target_alignment(4071)  # "4,071": four thousand seventy - one
        [(0,), (0,), (3,), (3, 4), (4,)]
    """
    n = _check_number(n, "target_alignment")
    length = len(format_number(n, commas=commas))

    def position(i: int) -> int:  # digit i (0 = units) -> character position
        return length - 1 - (i + i // 3 if commas else i)

    return [tuple(sorted(position(i) for i in digits)) for _, digits in _aligned_tokens(n)]


# --------------------------------------------------------------------------- ids
def source_length(max_digits: int = 9, *, commas: bool = True) -> int:
    """The longest source sentence of at most ``max_digits`` digits: 11 for "999,999,999"."""
    max_digits = _check_max_digits(max_digits, "source_length")
    return max_digits + ((max_digits - 1) // 3 if commas else 0)


def target_length(max_digits: int = 9) -> int:
    """The longest target, ``<bos>`` and ``<eos>`` included: 19 for 9 digits (777,777,777 has 17 tokens).

    Every group of three sevens needs the most tokens ("seven hundred seventy - seven"),
    and every group word is spoken.
    """
    max_digits = _check_max_digits(max_digits, "target_length")
    return len(_aligned_tokens(int("7" * max_digits))) + 2


def _check_max_digits(max_digits, owner: str) -> int:
    max_digits = check_int(max_digits, "max_digits", owner)
    if max_digits > 9:
        raise ValueError(f"The 'max_digits' parameter of {owner} must be an int in [1, 9]. Got {max_digits} instead.")
    return max_digits


def _numbers(numbers, owner: str) -> list[int]:
    if isinstance(numbers, torch.Tensor):
        numbers = numbers.tolist()
    if not isinstance(numbers, (list, tuple, np.ndarray)):
        raise TypeError(f"The 'numbers' parameter of {owner} must be a sequence of ints. Got {numbers!r} instead.")
    out = [int(n) if is_int(n) else n for n in numbers]
    for n in out:
        if not is_int(n) or not 0 <= n <= MAX_NUMBER:
            raise ValueError(f"The 'numbers' parameter of {owner} must hold ints in [0, {MAX_NUMBER:,}]. "
                             f"Got {n!r} instead.")
    return out


def _pad(rows: list[list[int]], length: int | None, owner: str) -> torch.Tensor:
    longest = max((len(r) for r in rows), default=0)
    length = longest if length is None else check_int(length, "length", owner)
    if longest > length:
        raise ValueError(f"The 'length' parameter of {owner} must be at least the longest sequence, {longest}. "
                         f"Got {length} instead.")
    out = np.full((len(rows), length), PAD, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return torch.from_numpy(out)  # (B, length)


def encode_source(numbers, *, commas: bool = True, length: int | None = None) -> torch.Tensor:
    """Source ids: one per character of :func:`format_number`, padded on the right with ``<pad>``.

    Args:
        numbers: ints in [0, 999,999,999].
        commas: write the group commas. Default: True.
        length: pad to this length. Default: None (the longest in the batch).

    Shape:
        -> ``(B, S)``.

    Example::

        >>> encode_source([4071, 5])
        tensor([[ 5, 11,  1,  8,  2],
                [ 6,  0,  0,  0,  0]])
    """
    rows = [[_SOURCE_ID[c] for c in format_number(n, commas=commas)] for n in _numbers(numbers, "encode_source")]
    return _pad(rows, length, "encode_source")


def encode_target(numbers, *, length: int | None = None) -> torch.Tensor:
    """Target ids: ``<bos>``, the word tokens of :func:`number_to_words`, ``<eos>``, then ``<pad>``.

    Shape:
        -> ``(B, T)``.
    """
    rows = [[BOS, *(_TARGET_ID[t] for t, _ in _aligned_tokens(n)), EOS] for n in _numbers(numbers, "encode_target")]
    return _pad(rows, length, "encode_target")


def _ids(ids, owner: str) -> list[int]:
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1:
            raise ValueError(f"The 'ids' parameter of {owner} must be one sequence (N,). "
                             f"Got shape {tuple(ids.shape)} instead.")
        ids = ids.tolist()
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"The 'ids' parameter of {owner} must be a 1-D tensor or a list of ints. Got {ids!r} instead.")
    return [int(i) for i in ids]


def decode_source(ids) -> str:
    """The characters of source ids, ``<pad>`` left out."""
    return "".join(SOURCE_VOCAB[i] for i in _ids(ids, "decode_source") if i != PAD)


def decode_target(ids) -> str:
    """The sentence of target ids: up to the first ``<eos>``, specials left out, hyphens re-joined.

    Example::

        >>> decode_target(encode_target([71])[0])
        'seventy-one'
    """
    tokens = []
    for i in _ids(ids, "decode_target"):
        if i == EOS:
            break
        if i not in (PAD, BOS):
            tokens.append(TARGET_VOCAB[i])
    return tokens_to_words(tokens)


# --------------------------------------------------------------------------- splits
class NumberPairs(NamedTuple):
    """Source and target of a set of numbers, padded to the task's fixed lengths."""

    numbers: np.ndarray  # (B,) int64
    src: torch.Tensor  # (B, S) source ids
    tgt: torch.Tensor  # (B, T) <bos> words <eos> <pad>...


class NumberSplits(NamedTuple):
    """Training, validation and test pairs; no number is in two of them."""

    train: NumberPairs
    validation: NumberPairs
    test: NumberPairs


def make_number_pairs(numbers, *, max_digits: int = 9, commas: bool = True) -> NumberPairs:
    """Encode ``numbers`` as source and target ids padded to ``source_length`` and ``target_length``.

    Shape:
        -> ``src`` ``(B, source_length(max_digits))``, ``tgt`` ``(B, target_length(max_digits))``.
    """
    owner = "make_number_pairs"
    max_digits = _check_max_digits(max_digits, owner)
    numbers = _numbers(numbers, owner)
    if any(n >= 10 ** max_digits for n in numbers):
        raise ValueError(f"The 'numbers' parameter of {owner} must hold numbers of at most {max_digits} digits. "
                         f"Got {max(numbers)} instead.")
    return NumberPairs(np.asarray(numbers, dtype=np.int64),
                       encode_source(numbers, commas=commas, length=source_length(max_digits, commas=commas)),
                       encode_target(numbers, length=target_length(max_digits)))


def _even_quotas(n: int, groups: int) -> np.ndarray:
    """``n`` split over ``groups`` as evenly as possible, the remainder to the last groups (longest numbers)."""
    q = np.full(groups, n // groups, dtype=np.int64)
    q[groups - n % groups:] += 1 if n % groups else 0
    return q


def _magnitude(d: int) -> tuple[int, int]:
    """The smallest and largest d-digit numbers (0 ... 9 for d = 1)."""
    return (0 if d == 1 else 10 ** (d - 1)), 10 ** d - 1


def make_number_splits(n_train: int = 50_000, n_validation: int = 500, n_test: int = 1000, *,
                       max_digits: int = 9, commas: bool = True, seed: int = 0) -> NumberSplits:
    """Training, validation and test pairs with disjoint numbers, balanced over the number of digits.

    The sampling rule is in the module docstring: held-out numbers are distinct, at most
    ``HELD_OUT_SHARE`` of each magnitude per held-out split, so the 1-digit and 2-digit
    magnitudes give the held-out splits fewer numbers than the even share (``n_test`` is
    then an upper bound); the ``n_train`` training examples are drawn with replacement
    from the numbers not held out.

    Args:
        n_train: training examples. Default: 50,000.
        n_validation: at most this many validation numbers. Default: 500.
        n_test: at most this many test numbers. Default: 1,000.
        max_digits: the longest numbers, 1 ... 9 digits. Default: 9.
        commas: write the source with group commas. Default: True.
        seed: the random draw (NumPy's default generator). Default: 0.

    Returns:
        A :class:`NumberSplits`; each split's ``src`` is ``(B, source_length)`` and
        ``tgt`` ``(B, target_length)``.
    """
    owner = "make_number_splits"
    n_train = check_int(n_train, "n_train", owner)
    n_validation = check_int(n_validation, "n_validation", owner)
    n_test = check_int(n_test, "n_test", owner)
    max_digits = _check_max_digits(max_digits, owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    if not isinstance(commas, bool):
        raise TypeError(f"The 'commas' parameter of {owner} must be a bool. Got {commas!r} instead.")
    rng = np.random.default_rng(seed)
    digits = range(1, max_digits + 1)
    held: dict[str, list[np.ndarray]] = {"test": [], "validation": []}
    held_out: set[int] = set()
    for d, q_test, q_val in zip(digits, _even_quotas(n_test, max_digits), _even_quotas(n_validation, max_digits)):
        lo, hi = _magnitude(d)
        cap = max(1, int(HELD_OUT_SHARE * (hi - lo + 1)))
        k_test, k_val = min(q_test, cap), min(q_val, cap)
        drawn = lo + rng.choice(hi - lo + 1, size=k_test + k_val, replace=False)  # distinct, random order
        held["test"].append(drawn[:k_test])
        held["validation"].append(drawn[k_test:])
        held_out.update(drawn.tolist())
    train = []
    for d, q in zip(digits, _even_quotas(n_train, max_digits)):
        lo, hi = _magnitude(d)
        x = rng.integers(lo, hi + 1, size=q)
        clash = np.fromiter((v in held_out for v in x.tolist()), bool, len(x))
        while clash.any():  # redraw the held-out ones: at most 20 % of a magnitude, so this ends fast
            x[clash] = rng.integers(lo, hi + 1, size=int(clash.sum()))
            clash = np.fromiter((v in held_out for v in x.tolist()), bool, len(x))
        train.append(x)
    train_numbers = rng.permutation(np.concatenate(train))

    def pairs(numbers: np.ndarray) -> NumberPairs:
        return make_number_pairs(numbers.tolist(), max_digits=max_digits, commas=commas)

    return NumberSplits(pairs(train_numbers), pairs(np.concatenate(held["validation"])),
                        pairs(np.concatenate(held["test"])))
