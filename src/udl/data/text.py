"""Real English text that ships with Python: the reference manual's help topics (UDL §12.5).

Every CPython installs ``pydoc_data.topics.topics``: the text of ``help("if")``,
``help("with")`` and the other ~80 topics of the language reference, about 465,000
characters of English prose with code examples and grammar rules. Nothing downloads.

Many topics repeat others ("compound" holds "if", "while", "try", ...; "specialnames"
holds "customization" and "numeric-types"), so the corpus is first de-duplicated by
paragraph (blocks between blank lines): walking the topics from the largest to the
smallest (ties by name), a paragraph of at least ``MIN_SHARED_PARAGRAPH`` characters
is kept only in the first topic that holds it, and topics left empty are dropped.
About 370,000 characters remain. Shorter paragraphs ("Note:", "New in version 3.5.")
stay wherever they occur.

Splits are then made by topic, so that no page and no long paragraph is shared between
them: the topics are ordered by the SHA-256 of their names; walking that order, a
topic goes to ``test`` if test stays within 10 % of all characters, else to
``validation`` under the same rule, else to ``train``. So validation and test each
hold close to (never more than) 10 % of the characters, and the rule depends only on
the topic names and texts. Within a split, topics are joined in sorted order with a
blank line between them.

The exact text depends on the Python version (3.11 here: 79 topics).

Example::

    >>> splits = load_python_docs()
    >>> tok = python_docs_tokenizer(2000)            # trained once, then read from the cache
    >>> ids = token_ids("validation", tok)           # torch.LongTensor
"""

from __future__ import annotations

import functools
import hashlib
import re
import weakref
from typing import NamedTuple

import torch

from udl.cache import data_dir, settings_digest
from udl.text.bpe import BPETokenizer
from udl.validate import check_choice, check_int

__all__ = ["TextSplits", "load_python_docs", "python_docs_tokenizer", "token_ids", "sentences",
           "deduplicated_topics", "paragraphs", "SPLITS", "NURSERY_RHYME"]

SPLITS = ("train", "validation", "test")

# the passage that fig. 12.8 tokenizes: 33 words, 18 of them distinct
NURSERY_RHYME = ("a sailor went to sea sea sea to see what he could see see see but all that he could see see see "
                 "was the bottom of the deep blue sea sea sea")
HELD_OUT_FRACTION = 0.10  # of the characters, for validation and for test
MIN_SHARED_PARAGRAPH = 60  # paragraphs at least this long are kept in one topic only
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


class TextSplits(NamedTuple):
    """The corpus cut into three disjoint sets of topics."""

    train: str
    validation: str
    test: str
    topics: dict  # split name -> sorted tuple of the topic names in it


def _topic_key(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def paragraphs(text: str) -> list[str]:
    """The blocks of ``text`` between blank lines, without their surrounding newlines."""
    return [p.strip("\n") for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


@functools.lru_cache(maxsize=1)
def deduplicated_topics() -> dict[str, str]:
    """The topics with every long paragraph kept in one topic only (rule in the module docstring).

    Returns:
        topic name -> its remaining paragraphs joined by blank lines (empty topics dropped).
    """
    from pydoc_data.topics import topics

    seen: set[str] = set()
    kept = {}
    for name in sorted(topics, key=lambda k: (-len(topics[k]), k)):
        mine = []
        for paragraph in paragraphs(topics[name]):
            if len(paragraph) >= MIN_SHARED_PARAGRAPH:
                if paragraph in seen:
                    continue
                seen.add(paragraph)
            mine.append(paragraph)
        if any(len(p) >= MIN_SHARED_PARAGRAPH for p in mine):
            kept[name] = "\n\n".join(mine)
    return dict(sorted(kept.items()))


@functools.lru_cache(maxsize=1)
def load_python_docs() -> TextSplits:
    """The Python reference manual's topics, de-duplicated and split 80/10/10 by topic (module docstring).

    Returns:
        :class:`TextSplits` with ``train``, ``validation`` and ``test`` strings and the
        topic names of each.
    """
    topics = deduplicated_topics()
    total = sum(len(v) for v in topics.values())
    budget = HELD_OUT_FRACTION * total
    chosen: dict[str, list[str]] = {s: [] for s in SPLITS}
    size = dict.fromkeys(SPLITS, 0)
    for name in sorted(topics, key=_topic_key):
        n = len(topics[name])
        for split in ("test", "validation", "train"):
            if split == "train" or size[split] + n <= budget:
                chosen[split].append(name)
                size[split] += n
                break
    names = {s: tuple(sorted(chosen[s])) for s in SPLITS}
    texts = {s: "\n\n".join(topics[k] for k in names[s]) + "\n" for s in SPLITS}
    return TextSplits(texts["train"], texts["validation"], texts["test"], names)


def _split_text(split: str, owner: str) -> str:
    check_choice(split, "split", owner, SPLITS)
    return getattr(load_python_docs(), split)


def _cache_key(vocab_size: int) -> str:
    """Changes with the training text, the vocabulary size and the code that trains."""
    from udl.text import bpe

    text = hashlib.sha256(load_python_docs().train.encode("utf-8")).hexdigest()
    return settings_digest({"vocab_size": vocab_size, "text": text}, bpe, __file__)


_TOKENIZERS: dict[tuple[str, int], BPETokenizer] = {}


def python_docs_tokenizer(vocab_size: int = 2000, *, progress: bool = False) -> BPETokenizer:
    """A BPE tokenizer trained on the training split, cached in memory and on disk.

    The first call trains (a few seconds) and writes
    ``$UDL_DATA_DIR/tokenizers/python-docs-bpe<vocab_size>-<key>.json``; later calls,
    in this process or another, load it. The key hashes the training text, the
    vocabulary size and the tokenizer's source code, so a change to any of them trains
    afresh.

    Args:
        vocab_size: the vocabulary size (default 2000; at least the base vocabulary,
            specials + 256 bytes + marker + characters, about 370).
        progress: show a progress bar while training.
    """
    check_int(vocab_size, "vocab_size", "python_docs_tokenizer")
    key = _cache_key(vocab_size)
    path = data_dir() / "tokenizers" / f"python-docs-bpe{vocab_size}-{key}.json"
    cached = _TOKENIZERS.get((str(path), vocab_size))
    if cached is not None:
        return cached
    tok = None
    if path.exists():
        try:
            tok = BPETokenizer.load(path)
        except (ValueError, KeyError, TypeError, OSError):  # a damaged file: train again
            tok = None
    if tok is None:
        tok = BPETokenizer.train(load_python_docs().train, vocab_size=vocab_size, progress=progress)
        try:
            tok.save(path)
        except OSError:  # a read-only cache only costs the next call a retraining
            pass
    _TOKENIZERS[(str(path), vocab_size)] = tok
    return tok


_IDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> {split: ids}


def token_ids(split: str, tokenizer: BPETokenizer) -> torch.LongTensor:
    """The token ids of one split as a 1D ``torch.long`` tensor (cached in memory per tokenizer).

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"``.
        tokenizer: a :class:`~udl.text.bpe.BPETokenizer`, e.g. :func:`python_docs_tokenizer`.

    The returned tensor is shared between calls: copy it before changing it in place.
    """
    text = _split_text(split, "token_ids")
    if not isinstance(tokenizer, BPETokenizer):
        raise TypeError(f"The 'tokenizer' parameter of token_ids must be a BPETokenizer. "
                        f"Got {type(tokenizer).__name__} instead.")
    per_split = _IDS.setdefault(tokenizer, {})
    if split not in per_split:
        per_split[split] = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    return per_split[split]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(]?[A-Z0-9])")
_HEADING_RULE = re.compile(r"^[*=\-~^]{3,}$")
_LIST_MARK = re.compile(r"^(\d+\.|\*|-)\s+")


@functools.lru_cache(maxsize=len(SPLITS))
def _sentences(split: str) -> tuple[str, ...]:
    text = getattr(load_python_docs(), split)
    out = []
    for paragraph in paragraphs(text):
        lines = paragraph.strip("\n").split("\n")
        if not lines or lines[0][:1].isspace():  # indented: code, grammar, notes
            continue
        if any(_HEADING_RULE.match(line.strip()) for line in lines):  # a title with its underline
            continue
        prose = _LIST_MARK.sub("", " ".join(line.strip() for line in lines))
        if ">>>" in prose or "::=" in prose:
            continue
        for sentence in _SENTENCE_END.split(prose):
            if sentence[-1:] in ".!?" and len(sentence.split()) >= 3:
                out.append(sentence)
    return tuple(out)


def sentences(split: str) -> list[str]:
    """The prose of one split cut into sentences.

    Rule: paragraphs are separated by blank lines; indented paragraphs (code, grammar,
    notes), titles with their underlines, and paragraphs holding ``>>>`` or ``::=`` are
    dropped; the lines of a paragraph are joined with single spaces and a leading list
    mark ("1.", "*", "-") removed; a sentence ends at ".", "!" or "?" followed by
    whitespace and a capital letter or digit (possibly after a quote or bracket); only
    sentences of at least three words that end in ".", "!" or "?" are kept.

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"``.
    """
    check_choice(split, "split", "sentences", SPLITS)
    return list(_sentences(split))
