"""Labelled sentence tasks made from the Python reference manual, with labels exact by construction.

Fine-tuning a pre-trained encoder (UDL §12.6, fig. 12.11) needs a task with labels.
The book's example is the sentiment of reviews; the text that ships with Python has no
such labels, so udl makes a task whose labels are true by construction: **word
order**. Each sentence appears twice: as written (label 0), and with the words
between its first and its last shuffled (label 1)::

    "Objects are never explicitly destroyed."        -> 0
    "Objects explicitly never are destroyed."        -> 1

Why this task: the two versions hold exactly the same words, with the same first and
last word (so the capital letter and the full stop stay where they were), and every
sentence is seen in both versions. No word, word count or position of a word betrays
the label; only how the words follow one another does. Telling the two apart takes
knowing how English (and this manual's English) is put together, which is what
masked-token pre-training learns from unlabelled text (predicting a token from its
neighbours), and what a network trained from scratch on a few hundred labelled
sentences has no way to learn. So the task measures what pre-training adds.
(Milder corruptions, such as swapping two adjacent words, the "bigram shift" probing
task of Conneau et al. 2018, need a stronger language model than a CPU can pre-train
in minutes.)

Rules (deterministic given ``seed``):

* sentences come from :func:`udl.data.text.sentences` of one split (train,
  validation, test: disjoint topics of the manual), each distinct sentence once,
  leaving out of validation and test the few that also occur in the training split,
  and restricted to those with ``min_words`` to ``max_words`` words (words: runs of
  non-whitespace), at least two different inner words, and, when a tokenizer is
  given, at most ``max_tokens`` tokens;
* ``n_sentences`` of them are drawn without replacement in a seeded order;
* in each, the inner words are permuted uniformly at random, drawing again until the
  order differs from the original; words are re-joined with single spaces;
* every sentence gives two examples, as written and shuffled, so the classes are
  exactly balanced; the examples come in a seeded random order.

Example::

    >>> task = word_order("validation", n_sentences=3, seed=0)
    >>> len(task.texts), task.labels.tolist().count(1)
    (6, 3)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from udl.validate import check_int

__all__ = ["SentenceTask", "shuffle_inner_words", "word_order"]


class SentenceTask(NamedTuple):
    """Labelled sentences: ``texts[i]`` has class ``labels[i]``."""

    texts: list[str]  # the examples
    labels: torch.Tensor  # (n,) long: the class of each example
    originals: list[str]  # the sentence each example was made from
    classes: tuple[str, ...]  # the name of each class


def shuffle_inner_words(sentence: str, rng: np.random.Generator) -> str:
    """The sentence with the words between the first and the last in a new random order.

    The permutation is uniform among those that change the sequence of words (drawn
    again until it does); words are joined with single spaces.

    Args:
        sentence: at least two different words between its first and last word.
        rng: a NumPy generator.

    Example::

        >>> shuffle_inner_words("a b c d e", np.random.default_rng(0)).split()[::4]
        ['a', 'e']
    """
    if not isinstance(sentence, str):
        raise TypeError(f"The 'sentence' parameter of shuffle_inner_words must be a str. Got {sentence!r} instead.")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"The 'rng' parameter of shuffle_inner_words must be a numpy Generator. Got {rng!r} instead.")
    words = sentence.split()
    inner = words[1:-1]
    if len(set(inner)) < 2:
        raise ValueError(f"The 'sentence' parameter of shuffle_inner_words must have two different words between "
                         f"its first and last. Got {sentence!r} instead.")
    while True:
        shuffled = [inner[i] for i in rng.permutation(len(inner))]
        if shuffled != inner:
            return " ".join([words[0], *shuffled, words[-1]])


def word_order(split: str, *, n_sentences: int | None = None, seed: int = 0, min_words: int = 5,
               max_words: int = 30, tokenizer=None, max_tokens: int | None = None) -> SentenceTask:
    """The word-order task on one split of the Python reference manual (rules in the module docstring).

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"``.
        n_sentences: how many sentences to use (each gives two examples). Default: all
            that qualify.
        seed: the draw of sentences and permutations. Default: 0.
        min_words: shortest sentence kept, in words (at least 4). Default: 5.
        max_words: longest sentence kept, in words. Default: 30.
        tokenizer: with ``max_tokens``, keep only sentences whose encoding has at most
            ``max_tokens`` tokens (the shuffled version encodes to the same tokens,
            reordered, so it fits too). Default: None.
        max_tokens: see ``tokenizer``. Default: None.

    Returns:
        A :class:`SentenceTask` with ``2 · n_sentences`` examples, half of each class:
        0 "as written", 1 "inner words shuffled".
    """
    from udl.data.text import sentences

    owner = "word_order"
    min_words = check_int(min_words, "min_words", owner, minimum=4)
    max_words = check_int(max_words, "max_words", owner, minimum=min_words)
    seed = check_int(seed, "seed", owner, minimum=0)
    if (tokenizer is None) != (max_tokens is None):
        raise ValueError(f"The 'max_tokens' parameter of {owner} must be given exactly when a tokenizer is. "
                         f"Got max_tokens={max_tokens!r} with tokenizer={tokenizer!r} instead.")
    if max_tokens is not None:
        check_int(max_tokens, "max_tokens", owner)
    seen_in_training = set() if split == "train" else {" ".join(s.split()) for s in sentences("train")}
    pool = []
    for sentence in dict.fromkeys(sentences(split)):  # each distinct sentence once, in corpus order
        words = sentence.split()
        if not (min_words <= len(words) <= max_words and len(set(words[1:-1])) >= 2):
            continue
        if " ".join(words) in seen_in_training:  # boilerplate repeated across topics
            continue
        if tokenizer is not None and len(tokenizer.encode(" ".join(words))) > max_tokens:
            continue
        pool.append(" ".join(words))
    if n_sentences is None:
        n_sentences = len(pool)
    n_sentences = check_int(n_sentences, "n_sentences", owner)
    if n_sentences > len(pool):
        raise ValueError(f"The 'n_sentences' parameter of {owner} must be at most the {len(pool)} qualifying "
                         f"sentences of the {split} split. Got {n_sentences} instead.")
    rng = np.random.default_rng([seed, 0x5EED])
    chosen = [pool[i] for i in rng.permutation(len(pool))[:n_sentences]]
    texts, labels, originals = [], [], []
    for sentence in chosen:
        texts += [sentence, shuffle_inner_words(sentence, rng)]
        labels += [0, 1]
        originals += [sentence, sentence]
    order = rng.permutation(len(texts))
    return SentenceTask([texts[k] for k in order], torch.tensor(labels)[order], [originals[k] for k in order],
                        ("as written", "inner words shuffled"))
