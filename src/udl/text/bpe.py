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
frequencies: a merge only visits the places where the merged pair occurs, so training
and encoding take near-linear time in the length of the text, even when it is one
long word.

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

import heapq
import json
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
    runs = _PIECES.findall(text)
    last = len(runs) - 1
    return [run if run[0].isspace() else run + end_of_word for i, run in enumerate(runs)
            if not (run == " " and 0 < i < last)]  # a single space between two words is implied by the marker


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

    The text is kept as its distinct pieces (words and whitespace runs) with their
    frequencies. The symbols of all pieces are the nodes of linked lists laid end to end
    in order of first appearance, so a node's number orders it by where it first occurs
    in the text. Each pair keeps its count and a heap of the nodes where it starts, and
    one heap of ``(-count, first node, pair)`` names the next merge. Both heaps keep
    stale entries and drop them when they reach the top.

    A merge visits only the occurrences of the merged pair and their two neighbours, so
    training costs O(N log N) for N symbols in the distinct pieces however many merges
    are made: every merged occurrence removes a node. (Rewriting whole words instead
    costs the length of each word that holds the pair, at every merge: quadratic for one
    long word, issue 12.)

    Args:
        reserved: token spellings that no merge may use or produce (special and byte tokens).
    """

    def __init__(self, reserved: set[str]):
        self.reserved = reserved
        self.symbol: list[str | None] = []  # node -> its token; None once merged into the node on its left
        self.next: list[int] = []  # node -> the next node of its piece, -1 at the end
        self.prev: list[int] = []  # node -> the previous node of its piece, -1 at the start
        self.weight: list[int] = []  # node -> how often its piece occurs in the text
        self.use_count: dict[str, int] = defaultdict(int)  # occurrences of each token in the text
        self.pair_count: dict[tuple[str, str], int] = {}  # occurrences of each pair, overlaps counted twice
        self.starts: dict[tuple[str, str], list[int]] = {}  # pair -> heap of nodes where it may start
        self.queue: list[tuple[int, int, tuple[str, str]]] = []  # heap of (-count, first node, pair)
        self._banned: dict[tuple[str, str], bool] = {}  # pair -> whether it would use or spell a reserved token
        self._changed: set[tuple[str, str]] = set()  # pairs whose count changed during the current merge

    def split_into_characters(self, text: str, base: BPETokenizer) -> None:
        """Step 1: every word becomes its characters followed by the end-of-word marker.

        The initial vocabulary is the characters and the marker (fig. 12.8a); characters
        outside ``base``'s alphabet fall back to their UTF-8 bytes.
        """
        freq: dict[str, int] = {}  # in order of first appearance
        for piece in split_words(text, base.end_of_word):
            freq[piece] = freq.get(piece, 0) + 1
        for piece, f in freq.items():
            symbols = base._symbols(piece)
            first, n = len(self.symbol), len(symbols)
            self.symbol.extend(symbols)
            self.next.extend(range(first + 1, first + n))
            self.next.append(-1)
            self.prev.append(-1)
            self.prev.extend(range(first, first + n - 1))
            self.weight.extend([f] * n)
            for s in symbols:
                self.use_count[s] += f
        self.in_use = sum(c > 0 for c in self.use_count.values())
        self.length = sum(self.use_count.values())

    def count_pairs(self) -> None:
        """Step 2: count every adjacent pair of symbols; a piece that occurs f times adds f."""
        symbol, starts = self.symbol, self.starts
        for node, after in enumerate(self.next):
            if after != -1:
                pair = (symbol[node], symbol[after])
                nodes = starts.get(pair)
                if nodes is None:
                    starts[pair] = [node]
                else:
                    nodes.append(node)  # increasing: already a heap
        for pair in [p for p in starts if self._is_banned(p)]:
            del starts[pair]
        weight = self.weight
        self.pair_count = {pair: sum(weight[node] for node in nodes) for pair, nodes in starts.items()}
        self.queue = [(-c, self.starts[pair][0], pair) for pair, c in self.pair_count.items()]
        heapq.heapify(self.queue)

    def merge_most_frequent_pair(self, min_count: int) -> tuple[tuple[str, str], int] | None:
        """Step 3: merge the most frequent pair everywhere (fig. 12.8b) and update the counts.

        Ties go to the pair whose first occurrence starts earliest in the text. A pair
        that would use or spell a reserved token is never counted, so never merged.

        Returns:
            The merged pair and its count, or None when no pair occurs ``min_count`` times.
        """
        queue = self.queue
        while queue:
            minus_count, first, pair = queue[0]
            if self.pair_count.get(pair) != -minus_count or self._first_node(pair) != first:
                heapq.heappop(queue)  # the pair has changed since: a newer entry holds it
                continue
            if -minus_count < min_count:
                return None
            heapq.heappop(queue)
            self._replace(pair)
            return pair, -minus_count
        return None

    def state(self) -> BPEState:
        """The distinct tokens in use and the length of the segmented text (fig. 12.8f)."""
        return BPEState(self.in_use, self.length)

    def _is_banned(self, pair: tuple[str, str]) -> bool:
        banned = self._banned.get(pair)
        if banned is None:
            a, b = pair
            banned = self._banned[pair] = a in self.reserved or b in self.reserved or a + b in self.reserved
        return banned

    def _starts_at(self, node: int, pair: tuple[str, str]) -> bool:
        after = self.next[node]
        return self.symbol[node] == pair[0] and after != -1 and self.symbol[after] == pair[1]

    def _first_node(self, pair: tuple[str, str]) -> int:
        """The first node where ``pair`` starts (stale heap entries are dropped on the way)."""
        heap = self.starts[pair]
        while not self._starts_at(heap[0], pair):  # a pair never returns to a node it left: tokens only grow
            heapq.heappop(heap)
        return heap[0]

    def _add(self, pair: tuple[str, str], node: int, f: int) -> None:
        if not self._is_banned(pair):
            self.pair_count[pair] = self.pair_count.get(pair, 0) + f
            heapq.heappush(self.starts.setdefault(pair, []), node)
            self._changed.add(pair)

    def _remove(self, pair: tuple[str, str], f: int) -> None:
        if not self._is_banned(pair):
            self.pair_count[pair] -= f  # its node leaves the heap when it reaches the top
            self._changed.add(pair)

    def _use(self, token: str, d: int) -> None:
        before = self.use_count[token]
        self.use_count[token] = before + d
        self.in_use += (before + d > 0) - (before > 0)

    def _replace(self, pair: tuple[str, str]) -> None:
        """Merge every occurrence of ``pair`` (left to right) and update the counts by difference."""
        a, b = pair
        new = a + b
        symbol, nxt, prv = self.symbol, self.next, self.prev
        for node in sorted(self.starts.pop(pair)):  # text order: "a a a" merges as "aa a"
            if not self._starts_at(node, pair):
                continue  # stale, or taken by the overlapping occurrence just merged
            right, f = nxt[node], self.weight[node]
            before, after = prv[node], nxt[right]
            if before != -1:
                self._remove((symbol[before], a), f)
            self._remove(pair, f)
            if after != -1:
                self._remove((b, symbol[after]), f)
            symbol[node], symbol[right] = new, None
            nxt[node] = after
            if after != -1:
                prv[after] = node
                self._add((new, symbol[after]), node, f)
            if before != -1:
                self._add((symbol[before], new), before, f)
            self._use(a, -f)
            self._use(b, -f)
            self._use(new, f)
            self.length -= f
        for p in self._changed:
            c = self.pair_count[p]
            if c == 0:
                del self.pair_count[p]
                self.starts.pop(p, None)
            else:
                heapq.heappush(self.queue, (-c, self._first_node(p), p))
        self._changed.clear()


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

    def _symbols(self, piece: str) -> list[str]:
        """Base symbols of one piece: its characters (or their bytes), and the marker closing a word."""
        is_word = not piece[0].isspace()
        body = piece[:-1] if is_word else piece
        symbols = list(body) if self._alphabet.issuperset(body) else [s for ch in body for s in self._char_symbols(ch)]
        if is_word:
            symbols.append(self.end_of_word)
        return symbols

    def _merge_symbols(self, symbols: list[str]) -> list[str]:
        """Apply the learned merges to one piece: the earliest-learned pair present first, everywhere.

        Each round merges every occurrence of that pair, left to right, as training did.
        The symbols form a linked list and a heap holds ``(rank, node)`` for every pair
        that has a rank, so the cost is O(n log n) for n symbols (rescanning the piece
        for each merge would be O(n) per merge: quadratic for one long word).
        """
        n, ranks = len(symbols), self._ranks
        symbol = list(symbols)
        nxt = [*range(1, n), -1]
        prv = list(range(-1, n - 1))
        heap = [(ranks[p], node) for node, p in enumerate(zip(symbol, symbol[1:])) if p in ranks]
        heapq.heapify(heap)
        while heap:
            rank = heap[0][0]
            nodes = []
            while heap and heap[0][0] == rank:
                nodes.append(heapq.heappop(heap)[1])  # in text order
            a, b = self.merges[rank]
            new = a + b  # no new pair made here is (a, b): the round sees only the pairs present before it
            for node in nodes:
                right = nxt[node]
                if symbol[node] != a or right == -1 or symbol[right] != b:
                    continue  # stale, or taken by the overlapping occurrence just merged
                after, before = nxt[right], prv[node]
                symbol[node], symbol[right] = new, None
                nxt[node] = after
                if after != -1:
                    prv[after] = node
                    if (new, symbol[after]) in ranks:
                        heapq.heappush(heap, (ranks[new, symbol[after]], node))
                if before != -1 and (symbol[before], new) in ranks:
                    heapq.heappush(heap, (ranks[symbol[before], new], before))
        return [s for s in symbol if s is not None]

    def _encode_piece(self, piece: str) -> tuple[int, ...]:
        ids = self._cache.get(piece)
        if ids is None:
            ids = tuple(self.vocab[s] for s in self._merge_symbols(self._symbols(piece)))
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
        """The tokenizer described by :meth:`to_dict`; the stored vocabulary is verified.

        Raises:
            ValueError: ``data`` is not such a description (another format, an entry
                missing or of the wrong type, a vocabulary its merges do not rebuild);
                the message says which.
        """
        problem = _description_problem(data)
        if problem is not None:
            ours = isinstance(data, dict) and data.get("format") == _FORMAT
            raise ValueError(f"The 'data' parameter of BPETokenizer.from_dict must be a {_FORMAT} description"
                             f"{f' ({problem})' if ours else ''}. Got {str(data)[:80]!r} instead.")
        tok = cls._assemble(data)
        if "vocab" in data and data["vocab"] != tok.vocab:
            raise ValueError("The 'data' parameter of BPETokenizer.from_dict has a vocabulary that its merges "
                             "do not rebuild. Got a damaged or edited file instead.")
        return tok

    @classmethod
    def _assemble(cls, data: dict) -> BPETokenizer:
        return cls(data["alphabet"], [tuple(m) for m in data["merges"]], merge_counts=data["merge_counts"],
                   special_tokens=data["special_tokens"], end_of_word=data["end_of_word"],
                   history=data.get("history", ()))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer as JSON (atomically); returns the path."""
        return atomic_write(path, json.dumps(self.to_dict()).encode("ascii"))  # \u escapes keep lone surrogates

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is not one :meth:`save` wrote (a folder, unreadable,
                empty, not UTF-8, not JSON, cut short, JSON of another kind, an entry
                missing or of the wrong type, a vocabulary its merges do not rebuild):
                one line naming the file and what is wrong.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"The 'path' parameter of BPETokenizer.load must be a path. Got {path!r} instead.")
        file = f"The tokenizer file {str(path)!r}"

        def refuse(why: str):
            raise ValueError(f"{file} cannot be loaded: {why}.") from None  # one line, no chained traceback

        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"{file} does not exist.") from None
        except IsADirectoryError:
            refuse("it is a folder, not a file")
        except OSError as error:
            refuse(f"the file cannot be read ({error.strerror})")
        if not raw.strip():
            refuse("the file is empty")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            refuse("it is not UTF-8 text")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            if _ends_early(text, error):
                refuse("the JSON ends early (the file is cut short)")
            refuse(f"it is not JSON ({error.msg} at line {error.lineno} column {error.colno})")
        except RecursionError:
            refuse("it is not JSON udl can read (nested too deeply)")
        problem = _description_problem(data)
        if problem is not None:
            refuse(problem)
        try:
            tok = cls._assemble(data)
        except (TypeError, ValueError) as error:  # the constructor's own one-line message
            raise ValueError(f"{file} describes no tokenizer: {error}") from None
        if "vocab" in data and data["vocab"] != tok.vocab:
            refuse("its vocabulary is not the one its merges rebuild (a damaged or edited file)")
        return tok


def _ends_early(text: str, error: json.JSONDecodeError) -> bool:
    """Whether ``error`` comes from JSON that stops too soon (a file cut short), not from wrong JSON."""
    end = len(text.rstrip())
    return (error.pos >= end or error.msg.startswith("Unterminated string")  # a string runs to the end
            or (error.msg.startswith("Invalid \\uXXXX escape") and end - error.pos < 6))  # \u2581 cut in two


def _is_list_of(value, item) -> bool:
    return isinstance(value, (list, tuple)) and all(item(v) for v in value)


def _is_pair_of(value, item) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(item(v) for v in value)


# what each entry of a saved tokenizer holds; the constructor checks the values themselves
_ENTRIES = {
    "alphabet": ("a list of characters", lambda v: _is_list_of(v, lambda c: isinstance(c, str))),
    "merges": ("a list of pairs of token strings",
               lambda v: _is_list_of(v, lambda m: _is_pair_of(m, lambda t: isinstance(t, str)))),
    "merge_counts": ("a list of ints", lambda v: _is_list_of(v, is_int)),
    "special_tokens": ("a list of strings", lambda v: _is_list_of(v, lambda t: isinstance(t, str))),
    "end_of_word": ("a character", lambda v: isinstance(v, str)),
    "history": ("a list of pairs of ints", lambda v: _is_list_of(v, lambda h: _is_pair_of(h, is_int))),
    "vocab": ("an object of token ids", lambda v: isinstance(v, dict)),
}
_OPTIONAL_ENTRIES = ("history", "vocab")
_JSON_KINDS = {dict: "a JSON object", list: "a JSON list", str: "a JSON string", bool: "JSON true or false",
               int: "a JSON number", float: "a JSON number", type(None): "JSON null"}


def _description_problem(data) -> str | None:
    """What keeps ``data`` from being a description written by :meth:`BPETokenizer.to_dict`; None when nothing."""
    if not isinstance(data, dict):
        return f"it is not a {_FORMAT} tokenizer ({_JSON_KINDS.get(type(data), type(data).__name__)})"
    if data.get("format") != _FORMAT:
        return f"it is not a {_FORMAT} tokenizer (format {data.get('format')!r})"
    for key, (wanted, holds) in _ENTRIES.items():
        if key not in data:
            if key not in _OPTIONAL_ENTRIES:
                return f"it has no {key!r} entry"
        elif not holds(data[key]):
            shown = repr(data[key])
            return f"its {key!r} entry must be {wanted}, not {shown if len(shown) <= 60 else shown[:57] + '...'}"
    return None


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
