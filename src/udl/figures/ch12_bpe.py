"""Chapter 12, fig. 12.8: byte-pair encoding of a nursery rhyme."""

from __future__ import annotations

from collections import Counter

import numpy as np

from udl import style
from udl.data.text import NURSERY_RHYME, load_python_docs, python_docs_tokenizer, token_ids
from udl.registry import Check, Limit, Result, figure
from udl.text.bpe import BPETokenizer, compare_merges, reference_merges

_MARK = "_"  # the rhyme has no underscore, so the marker can be drawn as the book draws it


@figure("12.8", title="Sub-word tokenization by byte-pair encoding",
        caption="Byte-pair encoding learned on a nursery rhyme. a) At the start every character is a "
                "token, and each word closes with an end-of-word marker (drawn _), so merges stay inside "
                "words; bars count each token in the rhyme. b-c) Each step merges the most frequent "
                "adjacent pair, first s+e (13 times), then e+_ (12): the new token takes its count from "
                "the two it joins. d) After 22 merges the tokens mix letters, fragments and frequent "
                "words. e) Merging on until no pair is left (50 merges) turns every word into one token. "
                "f) The number of distinct tokens in use first rises as fragments join the letters, then "
                "falls as fragments fuse into words, while the rhyme's length in tokens falls at every "
                "step. On real text the merges would stop at a chosen vocabulary size; the full preset "
                "also measures a 2,000-token vocabulary learned on the Python reference manual.",
        params={"tiny": dict(steps=[1, 2, 22], corpus=False, vocab_size=2000),
                "full": dict(steps=[1, 2, 22], corpus=True, vocab_size=2000)},
        # steps: the rhyme allows 50 merges, and panels b-d have room for three; vocab_size: from 2,000 tokens
        # most words of the manual are one token (57% at 2,000, 45% at 1,000), and the manual runs out of
        # pairs near 7,900
        limits={"steps": Limit(1, 50, max_len=3), "vocab_size": (2000, 8000)})
def byte_pair_encoding(p, run):
    tok = BPETokenizer.train(NURSERY_RHYME, n_merges=10_000, end_of_word=_MARK, min_count=1)
    words = NURSERY_RHYME.split()
    states = [0, *p.steps, len(tok.merges)]
    arrays, tables = {}, []
    for k, step in enumerate(states):
        partial = BPETokenizer(tok.alphabet, tok.merges[:step], end_of_word=_MARK)
        counts = Counter(partial.tokenize(NURSERY_RHYME))
        ranked = sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))
        arrays[f"tokens_{k}"] = np.array([t for t, _ in ranked])
        arrays[f"counts_{k}"] = np.array([c for _, c in ranked])
        tables.append({t: c for t, c in ranked})
    in_use = [h.tokens_in_use for h in tok.history]
    length = [h.encoded_length for h in tok.history]
    probe = "A Sailor\twent to sea,  see?\n🌊 sea_"  # capitals, tabs, doubled spaces, unseen characters
    metrics = {
        "rhyme": NURSERY_RHYME, "merges": [list(m) for m in tok.merges], "merge_counts": tok.merge_counts,
        "states": states, "tables": tables, "tokens_in_use": in_use, "encoded_length": length,
        "n_merges_possible": len(tok.merges),
        "peak_step": int(np.argmax(in_use)), "peak_tokens": max(in_use),
        "end_tokens": sorted(tables[-1]), "distinct_words": sorted({w + _MARK for w in words}),
        "round_trip_rhyme": tok.decode(tok.encode(NURSERY_RHYME)) == NURSERY_RHYME,
        "round_trip_probe": tok.decode(tok.encode(probe)) == probe,
    }
    notes = ""
    try:
        theirs = reference_merges(NURSERY_RHYME, 10_000, end_of_word=_MARK, min_count=1)
    except ImportError:
        notes = "Hugging Face tokenizers is not installed: the comparison with it was skipped."
    else:
        cmp = compare_merges(NURSERY_RHYME, tok, theirs)
        metrics.update(hf_merges=len(theirs), hf_agreed=cmp.agreed, hf_shared=cmp.shared,
                       hf_diverged_at_tie=cmp.diverged_at_tie,
                       hf_agreed_min_count=tok.merge_counts[cmp.agreed - 1] if cmp.agreed else None)
    if p.corpus:
        docs = python_docs_tokenizer(p.vocab_size)
        text = load_python_docs().validation
        ids = token_ids("validation", docs)
        doc_words = text.split()
        whole = sum(len(docs.encode(w)) == 1 for w in doc_words)
        metrics.update(corpus_vocab_size=docs.vocab_size, corpus_chars_per_token=len(text) / len(ids),
                       corpus_tokens_per_word=len(ids) / len(doc_words),
                       corpus_whole_word_fraction=whole / len(doc_words),
                       corpus_round_trip=docs.decode(ids) == text)
    return Result(metrics=metrics, arrays=arrays, notes=notes)


@byte_pair_encoding.plot
def _(r):
    m = r.metrics
    states = m["states"]
    fig, axes = style.subplots(2, 3, width=3.6, height=3.4)
    titles = ["characters", *(f"after {s} merge{'s' if s != 1 else ''}" for s in states[1:-1]),
              f"after {states[-1]} merges (no pair left)"]
    for k, ax in enumerate(axes.flat[:len(states)]):
        tokens, counts = [str(t) for t in r.arrays[f"tokens_{k}"]], r.arrays[f"counts_{k}"]
        newest = "".join(m["merges"][states[k] - 1]) if states[k] else None
        y = np.arange(len(tokens))
        # letters orange, merged tokens cyan; the token made by the last merge outlined
        ax.barh(y, counts, height=0.8, color=[style.MODEL if len(t) > 1 else style.DATA for t in tokens],
                edgecolor=[style.TRUTH if t == newest else "none" for t in tokens], linewidth=1.2)
        ax.set_yticks(y, tokens, fontsize=7 if len(tokens) <= 22 else 6, family="monospace")
        ax.invert_yaxis()
        ax.set_ylim(len(tokens) - 0.5, -0.5)
        ax.set_xlabel("count in the rhyme")
        ax.set_title(f"{titles[k]}: {len(tokens)} tokens", fontsize=8, loc="right")
        ax.tick_params(axis="y", length=0, pad=1)
    fig.suptitle(f"“{m['rhyme']}”", fontsize=8, style="italic", wrap=True)
    ax = axes.flat[-1]
    steps = np.arange(len(m["tokens_in_use"]))
    ax.plot(steps, m["tokens_in_use"], color=style.MODEL, lw=2, label="distinct tokens")
    ax.set_xlabel("merges")
    ax.set_ylabel("distinct tokens in use", color=style.MODEL)
    for s in states[1:-1]:
        ax.axvline(s, color=style.REGION, lw=0.8, ls="--")
    twin = ax.twinx()
    twin.plot(steps, m["encoded_length"], color=style.DATA, lw=1.5)
    twin.set_ylabel("rhyme length in tokens", color=style.DATA)
    twin.spines["top"].set_visible(False)
    style.panel_labels(axes)
    return fig


@byte_pair_encoding.checks
def _(r):
    m = r.metrics
    first = [[*pair, count] for pair, count in zip(m["merges"][:5], m["merge_counts"][:5])]
    in_use = m["tokens_in_use"]
    checks = [
        Check.equal("the first five merges and their counts: s+e 13, e+_ 12, a+_ 7, se+e_ 7, se+a_ 6", first,
                    [["s", "e", 13], ["e", "_", 12], ["a", "_", 7], ["se", "e_", 7], ["se", "a_", 6]]),
        Check.equal("then the most frequent pairs occur 4 times", m["merge_counts"][5:7], [4, 4]),
        Check.holds("distinct tokens in use grow, then shrink (peak inside the run, 8+ above both ends)",
                    0 < m["peak_step"] < len(in_use) - 1
                    and m["peak_tokens"] >= max(in_use[0], in_use[-1]) + 8,
                    {"start": in_use[0], "peak": m["peak_tokens"], "at merge": m["peak_step"], "end": in_use[-1]},
                    "start < peak > end"),
        Check.holds("at most 50 merges are possible on the rhyme", 0 < m["n_merges_possible"] <= 50,
                    m["n_merges_possible"], "<= 50"),
        Check.equal("when no pair is left, every token is a whole word", m["end_tokens"], m["distinct_words"]),
        Check.holds("decoding the encoding gives back the rhyme, and a text with capitals, tabs, double spaces "
                    "and unseen characters", m["round_trip_rhyme"] and m["round_trip_probe"],
                    [m["round_trip_rhyme"], m["round_trip_probe"]], [True, True]),
    ]
    if "hf_merges" in m:
        checks.append(Check.holds(
            "Hugging Face tokenizers learns the same merges up to the order of equal-count pairs",
            m["hf_merges"] == m["n_merges_possible"] and m["hf_diverged_at_tie"] in (None, True)
            and m["hf_agreed"] >= 8,
            {"merges": m["hf_merges"], "agree on first": m["hf_agreed"], "then a tie": m["hf_diverged_at_tie"]},
            "same count; agree until a tie"))
    if "corpus_round_trip" in m:
        checks.append(Check.holds("the Python manual's validation split decodes exactly", m["corpus_round_trip"],
                                  m["corpus_round_trip"]))
        checks.append(Check.greater(f"on real text, most words are a single token of the "
                                    f"{m['corpus_vocab_size']:,}-token vocabulary", m["corpus_whole_word_fraction"],
                                    0.5))
    return checks
