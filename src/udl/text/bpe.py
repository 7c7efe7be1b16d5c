"""Byte-pair encoding: a sub-word vocabulary learned by merging frequent pairs (UDL §12.5.1, fig. 12.8).

Training (Sennrich et al. 2016, as the book describes it):

1. Split the text into words at whitespace. Each word becomes the sequence of its
   characters followed by an end-of-word marker (the book draws it "_"), so that a
   token ending in the marker can only close a word and merges never cross words.
2. Count every adjacent pair of tokens over all words (a word that occurs f times
   contributes f to each of its pairs; overlapping pairs such as "a a a" count twice).
3. Merge the most frequent pair into a new token everywhere (left to right within a
   word), record the merge and its count; ties go to the pair whose first occurrence
   starts earliest in the text.
4. Repeat until the requested number of merges or vocabulary size is reached, or no
   pair occurs at least ``min_count`` times (with ``min_count=1``: until every word is
   a single token).

The counts are kept incrementally over a table of distinct words and their
frequencies: a merge only revisits the words that contain the merged pair.

Encoding applies the learned merges to each word in the order they were learned (the
lowest-ranked pair present first), which reproduces the training segmentation.

Exact round trip, for any Unicode string: ``decode(encode(s)) == s``.

* **Whitespace.** The text is cut into words (maximal runs of non-whitespace
  characters, Python's ``str.isspace``) and whitespace runs. A single space between two
  words is implied by the end-of-word marker and costs no token; every other
  whitespace run (two spaces, a newline, a tab, leading or trailing whitespace) is kept
  as a piece of its own, tokenized with the same merges (so ``"\\n    "`` can become
  one token). Decoding turns an end-of-word marker into a space exactly when the next
  character is not whitespace.
* **Byte fallback.** The 256 UTF-8 bytes are tokens of the base vocabulary (spelled
  ``"<0x41>"``). A character never seen in training, and the marker character itself
  when it occurs literally in the text, is encoded as its UTF-8 bytes.
* **Reserved spellings.** A merge whose result would spell a special token or a byte
  token (the text ``"<pad>"``, say) is never made, so every token string is unique.

Vocabulary ids: special tokens first, then the 256 bytes, then the end-of-word
marker and the training text's characters (sorted), then one id per merge result in
merge order.

Example::

    >>> tok = BPETokenizer.train("a sailor went to sea sea sea", n_merges=3, end_of_word="_")
    >>> tok.merges                      # "a_" closes "a" and all three "sea"
    [('a', '_'), ('s', 'e'), ('se', 'a_')]
    >>> tok.decode(tok.encode("sea  sailor\\n")) == "sea  sailor\\n"
    True
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

from udl.cache import atomic_write
from udl.validate import check_int, is_int

__all__ = ["BPETokenizer", "BPEState", "MergeComparison", "END_OF_WORD", "SPECIAL_TOKENS", "split_words",
           "compare_merges", "reference_merges"]

END_OF_WORD = "\u2581"  # "▁": one reserved character; figures draw it as "_"
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "<cls>", "<sep>")
_PIECES = re.compile(r"\S+|\s+")  # \s in a str pattern is exactly str.isspace
_FORMAT = "udl.text.bpe"


def byte_token(b: int) -> str:
    """The spelling of the byte-fallback token for byte ``b`` (``65 -> "<0x41>"``)."""
    return f"<0x{b:02X}>"


_BYTE_TOKENS = tuple(byte_token(b) for b in range(256))


def _decode_bytes(data: bytes) -> str:
    """UTF-8 bytes to text; lone surrogates pass through, malformed sequences become U+FFFD."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


class BPEState(NamedTuple):
    """The training text's state after some merges (one entry of ``BPETokenizer.history``)."""

    tokens_in_use: int  # distinct tokens that occur in the segmented training text
    encoded_length: int  # tokens the training text is cut into (markers included)


def split_words(text: str, end_of_word: str = END_OF_WORD) -> list[str]:
    """Cut ``text`` into the pieces BPE works on: words ending in the marker, and whitespace runs.

    A whitespace run that is a single space between two words is dropped (the marker
    stands for it); every other whitespace run is kept as a piece of its own.

    Args:
        text: any string.
        end_of_word: the marker appended to each word (default ``"▁"``).

    Example::

        >>> split_words("to sea  sea\\n", "_")
        ['to_', 'sea_', '  ', 'sea_', '\\n']
    """
    return [piece for piece, _ in _pieces_with_offsets(text, end_of_word)]


def _pieces_with_offsets(text: str, end_of_word: str):
    """(piece, offset of the piece in the text) for the pieces of :func:`split_words`."""
    runs = list(_PIECES.finditer(text))
    for i, m in enumerate(runs):
        run = m.group()
        if run[0].isspace():
            if run == " " and 0 < i < len(runs) - 1:  # between two words: implied by the marker
                continue
            yield run, m.start()
        else:
            yield run + end_of_word, m.start()


def _check_text(text, name: str, owner: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"The {name!r} parameter of {owner} must be a str. Got {type(text).__name__} instead.")
    return text


def _check_end_of_word(end_of_word, owner: str) -> str:
    if not isinstance(end_of_word, str) or len(end_of_word) != 1 or end_of_word.isspace():
        raise ValueError(f"The 'end_of_word' parameter of {owner} must be one non-whitespace character. "
                         f"Got {end_of_word!r} instead.")
    return end_of_word


def _check_special_tokens(special_tokens, owner: str) -> tuple[str, ...]:
    if isinstance(special_tokens, str) or not isinstance(special_tokens, (list, tuple)):
        raise TypeError(f"The 'special_tokens' parameter of {owner} must be a sequence of str. "
                        f"Got {special_tokens!r} instead.")
    specials = tuple(special_tokens)
    bad = [s for s in specials if not isinstance(s, str) or len(s) < 2 or s in _BYTE_TOKENS]
    if bad or len(set(specials)) != len(specials):
        raise ValueError(f"The 'special_tokens' parameter of {owner} must hold distinct strings of at least "
                         f"two characters that are not byte tokens. Got {special_tokens!r} instead.")
    return specials


class _Corpus:
    """The training text as BPE sees it, with the three steps of training (UDL §12.5.1, fig. 12.8).

    The text is kept as a table of its distinct pieces (words and whitespace runs) in
    order of first appearance, each with its frequency, its current symbols and where
    each symbol starts in the text. Pair counts are kept incrementally: a merge revisits
    only the pieces that hold the merged pair, and changes the counts by difference.

    Args:
        reserved: token spellings that no merge may use or produce (special and byte tokens).
    """

    def __init__(self, reserved: set[str]):
        self.reserved = reserved
        self.words: list[list[str]] = []  # current symbols of each distinct piece
        self.starts: list[list[int]] = []  # character offset of each symbol within its piece
        self.offset: list[int] = []  # where each piece first occurs in the text
        self.freq: list[int] = []  # how often each piece occurs
        self.use_count: dict[str, int] = defaultdict(int)  # occurrences of each token in the text
        self.pair_count: dict[tuple[str, str], int] = defaultdict(int)
        self.where: dict[tuple[str, str], set[int]] = defaultdict(set)  # pair -> pieces that hold it
        self.by_count: dict[int, set] = defaultdict(set)  # count -> pairs with that count
        self.top = 0  # no pair occurs more often than this
        self.banned: set[tuple[str, str]] = set()  # pairs that would spell a reserved token
        self._first: dict[tuple[str, str], int] = {}  # pair -> its first offset in the text (cache)

    def split_into_characters(self, text: str, base: BPETokenizer) -> None:
        """Step 1: every word becomes its characters followed by the end-of-word marker.

        The initial vocabulary is the characters and the marker (fig. 12.8a); characters
        outside ``base``'s alphabet fall back to their UTF-8 bytes.
        """
        index: dict[str, int] = {}
        for piece, start in _pieces_with_offsets(text, base.end_of_word):
            w = index.get(piece)
            if w is None:
                w = index[piece] = len(self.words)
                symbols, symbol_starts = base._symbols_with_starts(piece)
                self.words.append(symbols)
                self.starts.append(symbol_starts)
                self.offset.append(start)
                self.freq.append(0)
            self.freq[w] += 1
        for symbols, f in zip(self.words, self.freq):
            for s in symbols:
                self.use_count[s] += f
        self.in_use = sum(c > 0 for c in self.use_count.values())
        self.length = sum(self.use_count.values())

    def count_pairs(self) -> None:
        """Step 2: count every adjacent pair of symbols; a piece that occurs f times adds f."""
        for w, symbols in enumerate(self.words):
            for pair in zip(symbols, symbols[1:]):
                self.pair_count[pair] += self.freq[w]
                self.where[pair].add(w)
        for pair, c in self.pair_count.items():
            self.by_count[c].add(pair)
        self.top = max(self.pair_count.values(), default=0)

    def merge_most_frequent_pair(self, min_count: int) -> tuple[tuple[str, str], int] | None:
        """Step 3: merge the most frequent pair everywhere (fig. 12.8b) and update the counts.

        Ties go to the pair whose first occurrence starts earliest in the text. A pair
        that would use or spell a reserved token is set aside, never merged.

        Returns:
            The merged pair and its count, or None when no pair occurs ``min_count`` times.
        """
        while True:
            while self.top >= min_count and not self.by_count.get(self.top):
                self.top -= 1
            if self.top < min_count:
                return None
            tied = self.by_count[self.top]
            best = min(tied, key=self._first_position) if len(tied) > 1 else next(iter(tied))
            a, b = best
            if a in self.reserved or b in self.reserved or a + b in self.reserved:  # bytes never merge; no clashes
                tied.discard(best)
                self.banned.add(best)
                continue
            count = self.top
            self._replace(best)
            return best, count

    def state(self) -> BPEState:
        """The distinct tokens in use and the length of the segmented text (fig. 12.8f)."""
        return BPEState(self.in_use, self.length)

    def _first_position(self, pair: tuple[str, str]) -> int | float:
        if pair not in self._first:
            a, b = pair
            best = math.inf
            for w in self.where[pair]:
                if self.offset[w] >= best:
                    continue
                s = self.words[w]
                for i in range(len(s) - 1):
                    if s[i] == a and s[i + 1] == b:
                        best = min(best, self.offset[w] + self.starts[w][i])
                        break
            self._first[pair] = best
        return self._first[pair]

    def _replace(self, pair: tuple[str, str]) -> None:
        """Rewrite every piece that holds ``pair`` (left to right) and update the counts by difference."""
        a, b = pair
        new = a + b
        where, pair_count, by_count, use_count = self.where, self.pair_count, self.by_count, self.use_count
        delta: dict[tuple[str, str], int] = defaultdict(int)
        for w in list(where[pair]):
            s, st, f = self.words[w], self.starts[w], self.freq[w]
            ns, nst, i, k = [], [], 0, 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    ns.append(new)
                    nst.append(st[i])
                    i += 2
                    k += 1
                else:
                    ns.append(s[i])
                    nst.append(st[i])
                    i += 1
            old_pairs, new_pairs = list(zip(s, s[1:])), list(zip(ns, ns[1:]))
            for p in old_pairs:
                delta[p] -= f
            for p in new_pairs:
                delta[p] += f
            for p in set(old_pairs) - set(new_pairs):
                where[p].discard(w)
            for p in new_pairs:
                where[p].add(w)
            self.words[w], self.starts[w] = ns, nst
            for t, d in ((a, -f * k), (b, -f * k), (new, f * k)):
                before = use_count[t]
                use_count[t] = before + d
                self.in_use += (use_count[t] > 0) - (before > 0)
            self.length -= f * k
        for p, d in delta.items():
            if d == 0:
                continue
            self._first.pop(p, None)
            c = pair_count[p]
            if p not in self.banned:
                by_count[c].discard(p)
            c += d
            pair_count[p] = c
            if c > 0 and p not in self.banned:
                by_count[c].add(p)
                self.top = max(self.top, c)
            elif c <= 0:
                del pair_count[p]
                where.pop(p, None)


class BPETokenizer:
    """A byte-pair-encoding tokenizer: learned merges, a vocabulary, and exact encode/decode.

    Build one with :meth:`train` (from text) or :meth:`load` (from JSON); the
    constructor assembles a tokenizer from its parts. See the module docstring for the
    algorithm and for how whitespace and unseen characters round-trip.

    Args:
        alphabet: the base characters (without the end-of-word marker).
        merges: the learned pairs ``(left, right)`` in the order they were learned.
        merge_counts: each merge's pair count in the training text (default: none).
        special_tokens: tokens with reserved ids 0, 1, ... (default ``SPECIAL_TOKENS``).
        end_of_word: the marker that closes every word (default ``"▁"``).
        history: the training text's :class:`BPEState` before any merge and after each.

    Attributes:
        merges, merge_counts, history, end_of_word: as above.
        vocab: token string -> id.
        vocab_size: ``len(vocab)``.
        special_ids: special token -> id.

    Example::

        >>> tok = BPETokenizer.train("low lower lowest", n_merges=2)
        >>> tok.merges
        [('l', 'o'), ('lo', 'w')]
        >>> tok.tokenize("lowly")            # "y" was never seen: its UTF-8 byte
        ['low', 'l', '<0x79>', '▁']
    """

    def __init__(self, alphabet: Iterable[str], merges: Sequence[tuple[str, str]], *,
                 merge_counts: Sequence[int] = (), special_tokens: Sequence[str] = SPECIAL_TOKENS,
                 end_of_word: str = END_OF_WORD, history: Sequence[Sequence[int]] = ()):
        owner = "BPETokenizer"
        self.end_of_word = _check_end_of_word(end_of_word, owner)
        specials = _check_special_tokens(special_tokens, owner)
        alphabet = list(alphabet)
        if any(not isinstance(c, str) or len(c) != 1 or c == end_of_word for c in alphabet) \
                or len(set(alphabet)) != len(alphabet):
            raise ValueError(f"The 'alphabet' parameter of {owner} must hold distinct single characters other "
                             f"than the end-of-word marker. Got {alphabet!r} instead.")
        merges = [tuple(m) for m in merges]
        if any(len(m) != 2 or not all(isinstance(t, str) and t for t in m) for m in merges):
            raise ValueError(f"The 'merges' parameter of {owner} must be a sequence of pairs of non-empty "
                             f"strings. Got {merges[:5]!r} instead.")
        if merge_counts and len(merge_counts) != len(merges):
            raise ValueError(f"The 'merge_counts' parameter of {owner} must have one count per merge. "
                             f"Got {len(merge_counts)} counts for {len(merges)} merges instead.")
        self.merges: list[tuple[str, str]] = merges
        self.merge_counts: list[int] = [int(c) for c in merge_counts]
        self.history: list[BPEState] = [BPEState(*map(int, h)) for h in history]
        self.special_ids: dict[str, int] = {s: i for i, s in enumerate(specials)}
        # ids: specials, bytes, marker and characters, merge results (UDL fig. 12.8 grows this list)
        tokens = [*specials, *_BYTE_TOKENS, end_of_word, *sorted(alphabet)]
        self.vocab: dict[str, int] = {}
        for t in tokens:
            if t in self.vocab:
                raise ValueError(f"The 'alphabet' parameter of {owner} must not repeat a special token. "
                                 f"Got {t!r} twice instead.")
            self.vocab[t] = len(self.vocab)
        known = set(self.vocab)
        for a, b in merges:
            if a not in known or b not in known:
                raise ValueError(f"The 'merges' parameter of {owner} must only merge known tokens. "
                                 f"Got {(a, b)!r} instead.")
            known.add(a + b)
            self.vocab.setdefault(a + b, len(self.vocab))  # two merges may spell the same token
        self._tokens = list(self.vocab)
        self._alphabet = frozenset(alphabet)
        self._ranks = {m: r for r, m in enumerate(merges)}
        self._byte_base = len(specials)
        self._cache: dict[str, tuple[int, ...]] = {}

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, text: str, n_merges: int | None = None, *, vocab_size: int | None = None,
              special_tokens: Sequence[str] = SPECIAL_TOKENS, end_of_word: str = END_OF_WORD,
              min_count: int = 2, progress: bool = False) -> BPETokenizer:
        """Learn merges on ``text`` (fig. 12.8).

        The three steps of §12.5.1 are the methods of the training table ``_Corpus``:
        ``split_into_characters`` (words as characters and an end-of-word marker),
        ``count_pairs`` (adjacent pairs, weighted by word frequency) and
        ``merge_most_frequent_pair`` (merge it everywhere and update the counts),
        repeated until the budget is spent or no pair occurs ``min_count`` times.

        Args:
            text: the training text.
            n_merges: how many merges to learn; exactly one of ``n_merges`` and
                ``vocab_size`` is given.
            vocab_size: the vocabulary size to reach (specials, 256 bytes, the marker and
                the text's characters included).
            special_tokens: reserved tokens, given ids 0, 1, ... (default ``SPECIAL_TOKENS``).
            end_of_word: the word-closing marker, one non-whitespace character (default
                ``"▁"``; the figure uses ``"_"`` on text without underscores).
            min_count: training stops early when no pair occurs at least this often
                (default 2: a pair seen once only memorises one word; 1 continues until
                every word is a single token, as in fig. 12.8e).
            progress: show a progress bar.

        Returns:
            The trained :class:`BPETokenizer`; ``merges``, ``merge_counts`` and
            ``history`` record the training.
        """
        owner = "BPETokenizer.train"
        _check_text(text, "text", owner)
        if n_merges is not None:
            n_merges = check_int(n_merges, "n_merges", owner, minimum=0)
        if vocab_size is not None:
            vocab_size = check_int(vocab_size, "vocab_size", owner)
        if n_merges is None and vocab_size is None:
            raise ValueError(f"The 'n_merges' parameter of {owner} must be an int when vocab_size is not given. "
                             f"Got None instead.")
        if n_merges is not None and vocab_size is not None:  # one stopping rule: the merges, or the size
            raise ValueError(f"The 'vocab_size' parameter of {owner} must be None when n_merges is given. "
                             f"Got {vocab_size!r} instead.")
        check_int(min_count, "min_count", owner)
        end_of_word = _check_end_of_word(end_of_word, owner)
        specials = _check_special_tokens(special_tokens, owner)
        if not isinstance(progress, bool):
            raise TypeError(f"The 'progress' parameter of {owner} must be a bool. Got {progress!r} instead.")

        alphabet = sorted(set(text) - {end_of_word})
        base = cls(alphabet, [], special_tokens=specials, end_of_word=end_of_word)
        if vocab_size is not None:
            if vocab_size < base.vocab_size:
                raise ValueError(f"The 'vocab_size' parameter of {owner} must be at least the base vocabulary "
                                 f"({base.vocab_size} here). Got {vocab_size} instead.")
            budget = vocab_size - base.vocab_size  # new tokens wanted
        else:
            budget = n_merges

        corpus = _Corpus(reserved=set(specials) | set(_BYTE_TOKENS))
        corpus.split_into_characters(text, base)  # step 1: words as characters and end-of-word markers
        corpus.count_pairs()  # step 2: adjacent pairs, weighted by word frequency
        history = [corpus.state()]
        merges, counts, known = [], [], set(base.vocab)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=budget, desc="BPE merges", leave=False)
        added = 0
        while added < budget:
            merged = corpus.merge_most_frequent_pair(min_count)  # step 3, and the counts follow
            if merged is None:
                break
            pair, count = merged
            merges.append(pair)
            counts.append(count)
            history.append(corpus.state())
            new = pair[0] + pair[1]
            if vocab_size is None:
                added += 1  # counting merges
            elif new not in known:
                added += 1  # counting new vocabulary entries
            known.add(new)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return cls(alphabet, merges, merge_counts=counts, special_tokens=specials, end_of_word=end_of_word,
                   history=history)

    # ------------------------------------------------------------------ encoding
    def _char_symbols(self, ch: str) -> list[str]:
        if ch in self._alphabet:
            return [ch]
        return [_BYTE_TOKENS[b] for b in ch.encode("utf-8", "surrogatepass")]  # byte fallback (lone surrogates too)

    def _symbols_with_starts(self, piece: str) -> tuple[list[str], list[int]]:
        """Base symbols of one piece and the character offset where each starts."""
        is_word = not piece[0].isspace()
        body = piece[:-1] if is_word else piece
        symbols, starts = [], []
        for i, ch in enumerate(body):
            s = self._char_symbols(ch)
            symbols.extend(s)
            starts.extend([i] * len(s))
        if is_word:
            symbols.append(self.end_of_word)
            starts.append(len(body))
        return symbols, starts

    def _encode_piece(self, piece: str) -> tuple[int, ...]:
        ids = self._cache.get(piece)
        if ids is None:
            symbols, _ = self._symbols_with_starts(piece)
            ranks = self._ranks
            while len(symbols) > 1:
                # the earliest-learned merge present applies next, as during training
                rank, pair = min(((ranks.get(p, math.inf), p) for p in zip(symbols, symbols[1:])),
                                 key=lambda x: x[0])
                if rank == math.inf:
                    break
                a, b = pair
                merged, i = [], 0
                while i < len(symbols):
                    if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                        merged.append(a + b)
                        i += 2
                    else:
                        merged.append(symbols[i])
                        i += 1
                symbols = merged
            ids = tuple(self.vocab[s] for s in symbols)
            if len(self._cache) < 1_000_000:
                self._cache[piece] = ids
        return ids

    def encode(self, text: str, *, add_special: bool = False) -> list[int]:
        """The token ids of ``text``; ``add_special`` wraps them in ``<bos>`` ... ``<eos>``.

        Example::

            >>> tok = BPETokenizer.train("sea sea see", n_merges=2, end_of_word="_")
            >>> [tok.id_to_token(i) for i in tok.encode("sea see")]
            ['sea', '_', 'se', 'e', '_']
        """
        _check_text(text, "text", "BPETokenizer.encode")
        ids = []
        for piece in split_words(text, self.end_of_word):
            ids.extend(self._encode_piece(piece))
        if add_special:
            for name in ("<bos>", "<eos>"):
                if name not in self.special_ids:
                    raise ValueError(f"The 'add_special' parameter of BPETokenizer.encode needs a {name} "
                                     f"special token. Got special tokens {list(self.special_ids)} instead.")
            ids = [self.special_ids["<bos>"], *ids, self.special_ids["<eos>"]]
        return ids

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        """The text of a sequence of token ids (the inverse of :meth:`encode`).

        An end-of-word marker becomes a space when the next character is not whitespace
        (otherwise the explicit whitespace follows, or the text ends). Consecutive byte
        tokens are joined and decoded as UTF-8 (invalid sequences become U+FFFD).

        Args:
            ids: token ids (ints, or a 1D tensor / array of them).
            skip_special: drop special tokens (default True) instead of writing them out.
        """
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        segments: list[str | None] = []  # None marks an end of word
        pending = bytearray()
        n, eow = len(self._tokens), self.end_of_word
        lo, hi = self._byte_base, self._byte_base + 256
        for i in ids:
            if not is_int(i) or not 0 <= i < n:
                raise ValueError(f"The 'ids' parameter of BPETokenizer.decode must hold ids in [0, {n}). "
                                 f"Got {i!r} instead.")
            if lo <= i < hi:
                pending.append(i - lo)
                continue
            if pending:
                segments.append(_decode_bytes(pending))
                pending.clear()
            if i < lo:  # a special token
                if not skip_special:
                    segments.append(self._tokens[i])
                continue
            token = self._tokens[i]
            if token.endswith(eow):
                segments.extend((token[:-1], None))
            else:
                segments.append(token)
        if pending:
            segments.append(_decode_bytes(pending))
        out, next_char = [], ""
        for seg in reversed(segments):  # a marker needs the character that follows it
            if seg is None:
                if next_char and not next_char.isspace():
                    out.append(" ")
                    next_char = " "
            elif seg:
                out.append(seg)
                next_char = seg[0]
        return "".join(reversed(out))

    def pair_counts(self, text: str) -> dict[tuple[str, str], int]:
        """How often each adjacent pair of tokens occurs in ``text`` as this tokenizer cuts it.

        Pairs are counted within pieces only (never across words), as in training: the
        counts a trainer sees after learning exactly ``self.merges``.
        """
        _check_text(text, "text", "BPETokenizer.pair_counts")
        counts: dict[tuple[str, str], int] = defaultdict(int)
        freq: dict[str, int] = defaultdict(int)
        for piece in split_words(text, self.end_of_word):
            freq[piece] += 1
        for piece, f in freq.items():
            tokens = [self._tokens[i] for i in self._encode_piece(piece)]
            for pair in zip(tokens, tokens[1:]):
                counts[pair] += f
        return dict(counts)

    def tokenize(self, text: str) -> list[str]:
        """The token strings of ``text`` (for reading; :meth:`encode` gives the ids)."""
        return [self._tokens[i] for i in self.encode(text)]

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def token_id(self, token: str) -> int:
        """The id of a token string."""
        try:
            return self.vocab[token]
        except (KeyError, TypeError):
            raise ValueError(f"The 'token' parameter of BPETokenizer.token_id must be a token of the "
                             f"vocabulary. Got {token!r} instead.") from None

    def id_to_token(self, i: int) -> str:
        """The token string of an id."""
        if not is_int(i) or not 0 <= i < len(self._tokens):
            raise ValueError(f"The 'i' parameter of BPETokenizer.id_to_token must be an id in "
                             f"[0, {len(self._tokens)}). Got {i!r} instead.")
        return self._tokens[i]

    @property
    def alphabet(self) -> list[str]:
        """The base characters (sorted, without the marker)."""
        return sorted(self._alphabet)

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"end_of_word={self.end_of_word!r})")

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        """A JSON-ready description from which :meth:`from_dict` rebuilds the same tokenizer."""
        return {"format": _FORMAT, "version": 1, "end_of_word": self.end_of_word,
                "special_tokens": list(self.special_ids), "alphabet": self.alphabet,
                "merges": [list(m) for m in self.merges], "merge_counts": self.merge_counts,
                "history": [list(h) for h in self.history], "vocab": self.vocab}

    @classmethod
    def from_dict(cls, data: dict) -> BPETokenizer:
        """The tokenizer described by :meth:`to_dict`; the stored vocabulary is verified."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"The 'data' parameter of BPETokenizer.from_dict must be a {_FORMAT} description. "
                             f"Got {str(data)[:80]!r} instead.")
        tok = cls(data["alphabet"], [tuple(m) for m in data["merges"]], merge_counts=data["merge_counts"],
                  special_tokens=data["special_tokens"], end_of_word=data["end_of_word"],
                  history=data.get("history", ()))
        if "vocab" in data and data["vocab"] != tok.vocab:
            raise ValueError("The 'data' parameter of BPETokenizer.from_dict has a vocabulary that its merges "
                             "do not rebuild. Got a damaged or edited file instead.")
        return tok

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer as JSON (atomically); returns the path."""
        return atomic_write(path, json.dumps(self.to_dict()).encode("ascii"))  # \u escapes keep lone surrogates

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


# ---------------------------------------------------------------------- comparison with a peer
class MergeComparison(NamedTuple):
    """How two merge sequences learned on the same text agree (see :func:`compare_merges`)."""

    agreed: int  # merges on which the two agree, up to the order of equal-count merges
    total: int  # merges in our sequence
    shared: int  # merges that appear in both sequences (as sets)
    diverged_at_tie: bool | None  # None when they agree throughout; else whether the first
    # differing choice of the other trainer had the same count as ours at that point


def compare_merges(text: str, tokenizer: BPETokenizer, other: Sequence[tuple[str, str]]) -> MergeComparison:
    """Compare ``tokenizer.merges`` with another trainer's merges on the same ``text``, up to ties.

    Trainers may break ties between pairs of equal count differently, and when the tied
    pairs overlap ("de"+"scri" against "scri"+"pt") the two runs then learn different
    tokens. So the sequences are compared level by level: cut ours wherever the count
    changes; ``agreed`` is the largest cut K such that, at every cut up to K, the first K
    merges of both are the same set. At the first cut where they differ, the pair counts
    after the ``agreed`` merges (:meth:`BPETokenizer.pair_counts`) say whether the other
    trainer's differing choice was tied with ours (``diverged_at_tie``).

    Args:
        text: the training text both learned from.
        tokenizer: ours, with ``merge_counts``.
        other: the other trainer's merges in order.
    """
    if not isinstance(tokenizer, BPETokenizer):
        raise TypeError(f"The 'tokenizer' parameter of compare_merges must be a BPETokenizer. "
                        f"Got {type(tokenizer).__name__} instead.")
    _check_text(text, "text", "compare_merges")
    ours, other, counts = list(tokenizer.merges), [tuple(m) for m in other], tokenizer.merge_counts
    if len(counts) != len(ours):
        raise ValueError("The 'tokenizer' parameter of compare_merges must carry merge_counts (a trained "
                         "tokenizer). Got one without counts instead.")
    n = len(ours)
    cuts = [k for k in range(1, n + 1) if k == n or counts[k - 1] != counts[k]]
    agreed, first_bad = 0, None
    for k in cuts:
        if set(ours[:k]) == set(other[:k]):
            agreed = k
        else:
            first_bad = k
            break
    shared = len(set(ours) & set(other))
    if first_bad is None:
        return MergeComparison(agreed, n, shared, None if len(other) == n else False)
    level = set(ours[agreed:first_bad])
    theirs = [m for m in other[agreed:first_bad] if m not in level]
    if not theirs:
        return MergeComparison(agreed, n, shared, False)
    state = BPETokenizer(tokenizer.alphabet, ours[:agreed], special_tokens=list(tokenizer.special_ids),
                         end_of_word=tokenizer.end_of_word)
    pairs = state.pair_counts(text)
    return MergeComparison(agreed, n, shared, pairs.get(theirs[0], 0) == counts[agreed])


def reference_merges(text: str, n_merges: int, *, end_of_word: str = END_OF_WORD, min_count: int = 2) -> list:
    """The merges Hugging Face ``tokenizers`` learns on the same pieces (a peer to check against).

    Each piece of :func:`split_words` (a word with its end-of-word marker, or a
    whitespace run) is given to ``tokenizers.trainers.BpeTrainer`` as a sequence of its
    own, without normaliser or pre-tokenizer, so both trainers count the same words.
    Needs the optional ``tokenizers`` package (udl's test extras).

    Args:
        text: the training text.
        n_merges: merges to learn (fewer if the pairs run out).
        end_of_word: the marker (default ``"▁"``).
        min_count: the smallest pair count that is merged (default 2).
    """
    check_int(n_merges, "n_merges", "reference_merges", minimum=0)
    check_int(min_count, "min_count", "reference_merges")
    _check_text(text, "text", "reference_merges")
    _check_end_of_word(end_of_word, "reference_merges")
    from tokenizers import Tokenizer, models, trainers

    pieces = split_words(text, end_of_word)
    alphabet = {c for p in pieces for c in p}
    tok = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + n_merges, min_frequency=min_count,
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator(pieces, trainer=trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges][:n_merges]
