"""udl.text.bpe: byte-pair encoding as in UDL §12.5.1 and fig. 12.8."""

import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from udl.text import BPETokenizer, compare_merges, reference_merges, split_words
from udl.text.bpe import SPECIAL_TOKENS, byte_token

RHYME = ("a sailor went to sea sea sea to see what he could see see see but all that he could see see see "
         "was the bottom of the deep blue sea sea sea")


@pytest.fixture(scope="module")
def rhyme():
    return BPETokenizer.train(RHYME, n_merges=1000, end_of_word="_", min_count=1)


@pytest.fixture(scope="module")
def corpus():
    from udl.data.text import load_python_docs

    return load_python_docs().train[:60_000]


@pytest.fixture(scope="module")
def docs(corpus):
    return BPETokenizer.train(corpus, n_merges=400)


def test_the_rhymes_first_merges_and_counts_are_the_books(rhyme):
    first = [(*m, c) for m, c in zip(rhyme.merges[:7], rhyme.merge_counts[:7])]
    assert first[:5] == [("s", "e", 13), ("e", "_", 12), ("a", "_", 7), ("se", "e_", 7), ("se", "a_", 6)]
    assert [c for *_, c in first[5:]] == [4, 4]  # then pairs of count 4
    assert rhyme.merge_counts == sorted(rhyme.merge_counts, reverse=True)  # the top count never rises


def test_the_rhyme_allows_fifty_merges_and_ends_with_whole_words(rhyme):
    words = RHYME.split()
    assert len(rhyme.merges) == 50  # the book: at most 50
    assert rhyme.tokenize(RHYME) == [w + "_" for w in words]
    assert rhyme.history[-1] == (len(set(words)), len(words))
    assert rhyme.history[0] == (len(set(RHYME.replace(" ", ""))) + 1, len(RHYME.replace(" ", "")) + len(words))


def test_tokens_in_use_grow_then_shrink(rhyme):
    in_use = [h.tokens_in_use for h in rhyme.history]
    peak = in_use.index(max(in_use))
    assert 0 < peak < len(in_use) - 1
    assert max(in_use) >= in_use[0] + 8 and in_use[-1] <= max(in_use) - 8
    lengths = [h.encoded_length for h in rhyme.history]
    assert all(b < a for a, b in zip(lengths, lengths[1:]))  # every merge shortens the text


def test_min_count_stops_when_no_pair_repeats():
    tok = BPETokenizer.train(RHYME, n_merges=1000, end_of_word="_")  # default min_count=2
    assert len(tok.merges) == 17 and min(tok.merge_counts) == 2
    assert max(tok.pair_counts(RHYME).values()) == 1


def test_ties_go_to_the_pair_seen_first_and_overlaps_count_twice():
    assert BPETokenizer.train("ab cd", n_merges=1, min_count=1).merges == [("a", "b")]
    assert BPETokenizer.train("cd ab", n_merges=1, min_count=1).merges == [("c", "d")]
    # the second word's pair starts earlier in the text than the first word's second pair
    assert BPETokenizer.train("xab cd", n_merges=2, min_count=1).merges[:1] == [("x", "a")]
    tok = BPETokenizer.train("aaa", n_merges=1, min_count=1)
    assert tok.merges == [("a", "a")] and tok.merge_counts == [2]
    assert tok.tokenize("aaa") == ["aa", "a", "▁"]


def test_history_matches_the_encoding_of_the_training_text(docs, corpus):
    ids = docs.encode(corpus)
    assert docs.history[-1] == (len(set(ids)), len(ids))
    assert len(docs.history) == len(docs.merges) + 1


def test_vocab_size_counts_specials_bytes_characters_and_merges(corpus):
    tok = BPETokenizer.train(corpus, vocab_size=600)
    assert tok.vocab_size == len(tok) == len(tok.vocab) == 600
    assert tok.special_ids == {s: i for i, s in enumerate(SPECIAL_TOKENS)}
    assert tok.token_id(byte_token(0)) == len(SPECIAL_TOKENS) and tok.token_id("<0xFF>") == len(SPECIAL_TOKENS) + 255
    assert tok.token_id("▁") == len(SPECIAL_TOKENS) + 256
    assert [tok.id_to_token(tok.token_id(t)) for t in tok.vocab] == list(tok.vocab)
    assert sorted(tok.vocab.values()) == list(range(600))
    with pytest.raises(ValueError, match="'vocab_size'"):
        BPETokenizer.train(corpus, vocab_size=100)


def test_unseen_characters_fall_back_to_bytes(rhyme):
    assert rhyme.tokenize("sé") == ["s", "<0xC3>", "<0xA9>", "_"]
    assert rhyme.tokenize("_") == ["<0x5F>", "_"]  # the marker as a literal character
    assert rhyme.tokenize("sea\n\tsee ") == ["sea_", "<0x0A>", "<0x09>", "see_", " "]


EDGE_CASES = ["", " ", "  ", "a", " a", "a ", "a  b", "a\nb", "\n", "sea sea", "\t sea \n", "▁", "a▁ ▁b", "_ _",
              "<pad> <eos>", "<0x41>", "\x00", "\u3000a\u3000", "a\x1cb", "\x85", "😀 see😀", "ß\r\n", "\ud7ff", "\ud800", "a\udfff b"]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_round_trip_edge_cases(rhyme, docs, text):
    for tok in (rhyme, docs):
        assert tok.decode(tok.encode(text)) == text
        assert tok.decode(tok.encode(text, add_special=True)) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=())))  # lone surrogates included
def test_round_trip_any_text_rhyme(rhyme, text):
    assert rhyme.decode(rhyme.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("sea to\n\t _▁é😀<>0x")) | st.characters()))
def test_round_trip_any_text_docs(docs, text):
    assert docs.decode(docs.encode(text)) == text


def test_the_corpus_round_trips_and_compresses(docs, corpus):
    ids = docs.encode(corpus)
    assert docs.decode(ids) == corpus
    assert len(corpus) / len(ids) > 2.5  # 400 merges already give > 2.5 characters per token


def test_special_tokens_wrap_and_are_skipped(rhyme):
    ids = rhyme.encode("sea", add_special=True)
    assert ids[0] == rhyme.special_ids["<bos>"] and ids[-1] == rhyme.special_ids["<eos>"]
    assert rhyme.decode(ids, skip_special=False) == "<bos>sea <eos>"
    with pytest.raises(ValueError, match="'ids'"):
        rhyme.decode([len(rhyme)])


def test_no_merge_spells_a_reserved_token():
    text = "<pad> " * 10 + "<0x41> " * 10
    tok = BPETokenizer.train(text, n_merges=50, min_count=1)
    made = ["".join(m) for m in tok.merges]
    assert "<pad>" not in made and "<0x41>" not in made
    assert len(tok.vocab) == len(set(tok.vocab)) and tok.decode(tok.encode(text)) == text
    assert tok.tokenize("<pad>")[0] != "<pad>"


def test_save_and_load_round_trip(docs, tmp_path):
    path = docs.save(tmp_path / "bpe.json")
    back = BPETokenizer.load(path)
    assert back.vocab == docs.vocab and back.merges == docs.merges
    assert back.merge_counts == docs.merge_counts and back.history == docs.history
    assert back.encode("The yield statement.\n") == docs.encode("The yield statement.\n")
    data = json.loads(path.read_text())
    data["vocab"]["the▁"] = 3
    with pytest.raises(ValueError, match="'data'"):
        BPETokenizer.from_dict(data)


def test_split_words_keeps_only_non_implied_whitespace():
    assert split_words("to sea  sea\n", "_") == ["to_", "sea_", "  ", "sea_", "\n"]
    assert split_words(" a b ", "_") == [" ", "a_", "b_", " "]


def test_agrees_with_hugging_face_on_the_rhyme(rhyme):
    theirs = reference_merges(RHYME, 1000, end_of_word="_", min_count=1)
    assert len(theirs) == len(rhyme.merges) == 50
    cmp = compare_merges(RHYME, rhyme, theirs)
    assert cmp.agreed >= 8  # every merge of count 13, 12, 7, 6, 4 and 3
    assert cmp.diverged_at_tie is True  # then a tie at count 2 is broken the other way


def test_agrees_with_hugging_face_on_real_text(docs, corpus):
    theirs = reference_merges(corpus, 400)
    cmp = compare_merges(corpus, docs, theirs)
    assert cmp.diverged_at_tie in (None, True)
    assert cmp.agreed >= 50 and cmp.shared >= 0.9 * len(docs.merges)  # 87 and 389 with Python 3.11
    assert compare_merges(corpus, docs, docs.merges) == (400, 400, 400, None)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"^The 'vocab_size' parameter of BPETokenizer\.train must be None when "
                                         r"n_merges is given\. Got 400 instead\.$"):
        BPETokenizer.train("a b", n_merges=3, vocab_size=400)
    with pytest.raises(ValueError, match=r"^The 'n_merges' parameter of BPETokenizer\.train must be an int when "
                                         r"vocab_size is not given\. Got None instead\.$"):
        BPETokenizer.train("a b")
    with pytest.raises(ValueError, match="'end_of_word'"):
        BPETokenizer.train("a b", 3, end_of_word=" ")
    with pytest.raises(TypeError, match="'text'"):
        BPETokenizer.train(b"a b", 3)
    with pytest.raises(ValueError, match="'special_tokens'"):
        BPETokenizer.train("a b", 3, special_tokens=("<pad>", "<pad>"))


def test_save_and_load_any_alphabet(tmp_path):
    text = "sé\ud800 sé\ud800 😀\t😀"
    tok = BPETokenizer.train(text, n_merges=5, min_count=1)
    back = BPETokenizer.load(tok.save(tmp_path / "odd.json"))
    assert back.vocab == tok.vocab and back.decode(back.encode(text)) == text


# ---------------------------------------------------------------------- the rule, written out plainly
RESERVED = set(SPECIAL_TOKENS) | {byte_token(b) for b in range(256)}


def _plain_train(text, n_merges, min_count, end_of_word):
    """The module docstring's training rule with every pair recounted after each merge (quadratic, obviously right).

    Returns the merges, their counts and the history ``(tokens in use, encoded length)``.
    """
    runs = list(re.finditer(r"\S+|\s+", text))
    table = {}  # piece -> [frequency, symbols, the text offset where each symbol starts], in order of first appearance
    for i, m in enumerate(runs):
        run = m.group()
        if run == " " and 0 < i < len(runs) - 1:
            continue  # the end-of-word marker stands for it
        is_word = not run[0].isspace()
        piece = run + end_of_word if is_word else run
        if piece not in table:
            symbols, starts = [], []
            for k, ch in enumerate(run):
                spelled = [byte_token(b) for b in ch.encode("utf-8", "surrogatepass")] if ch == end_of_word else [ch]
                symbols += spelled
                starts += [m.start() + k] * len(spelled)
            if is_word:
                symbols.append(end_of_word)
                starts.append(m.end())
            table[piece] = [0, symbols, starts]
        table[piece][0] += 1

    def state():
        used = {}
        for f, symbols, _ in table.values():
            for s in symbols:
                used[s] = used.get(s, 0) + f
        return len(used), sum(used.values())

    merges, counts, history = [], [], [state()]
    while len(merges) < n_merges:
        count, first = {}, {}
        for f, symbols, starts in table.values():
            for i, (a, b) in enumerate(zip(symbols, symbols[1:])):
                if a in RESERVED or b in RESERVED or a + b in RESERVED:
                    continue
                count[a, b] = count.get((a, b), 0) + f
                first[a, b] = min(first.get((a, b), starts[i]), starts[i])
        if not count:
            break
        best = min(count, key=lambda p: (-count[p], first[p]))
        if count[best] < min_count:
            break
        for entry in table.values():
            _, symbols, starts = entry
            out, out_starts, i = [], [], 0
            while i < len(symbols):
                if tuple(symbols[i:i + 2]) == best:
                    out.append(best[0] + best[1])
                    out_starts.append(starts[i])
                    i += 2
                else:
                    out.append(symbols[i])
                    out_starts.append(starts[i])
                    i += 1
            entry[1:] = out, out_starts
        merges.append(best)
        counts.append(count[best])
        history.append(state())
    return merges, counts, history


def _plain_tokenize(tok, text):
    """Encoding by the rule: while a learned pair is present, merge the earliest-learned one everywhere."""
    rank = {m: r for r, m in enumerate(tok.merges)}
    tokens = []
    for piece in split_words(text, tok.end_of_word):
        body = piece[:-1] if not piece[0].isspace() else piece
        symbols = [s for ch in body for s in ([ch] if ch in tok.alphabet else
                                              [byte_token(b) for b in ch.encode("utf-8", "surrogatepass")])]
        if not piece[0].isspace():
            symbols.append(tok.end_of_word)
        while True:
            present = [rank[p] for p in zip(symbols, symbols[1:]) if p in rank]
            if not present:
                break
            a, b = tok.merges[min(present)]
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            symbols = out
        tokens += symbols
    return tokens


def _agrees_with_the_plain_rule(text, n_merges, min_count=2, end_of_word="_"):
    tok = BPETokenizer.train(text, n_merges, min_count=min_count, end_of_word=end_of_word)
    merges, counts, history = _plain_train(text, n_merges, min_count, end_of_word)
    assert tok.merges == merges and tok.merge_counts == counts and tok.history == history
    assert tok.tokenize(text) == _plain_tokenize(tok, text)
    return tok


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aaabbc  \n_é")), max_size=80), st.integers(0, 40),
       st.sampled_from([1, 2]))
def test_training_and_encoding_follow_the_plain_rule(text, n_merges, min_count):
    _agrees_with_the_plain_rule(text, n_merges, min_count)


@pytest.mark.parametrize("text", ["aaaa aaa aaaaaaa", "abababa bab", "<pad> <pad> <0x41> <0x41> <pa", "a_b a_b é_ é_",
                                  RHYME])
def test_overlaps_reserved_spellings_and_the_literal_marker_follow_the_plain_rule(text):
    _agrees_with_the_plain_rule(text, 100, min_count=1)


def test_one_long_word_follows_the_plain_rule():
    rng = random.Random(0)
    word = "".join(rng.choice("abcd") for _ in range(3000))  # one word: every merge rewrites it in the plain rule
    tok = _agrees_with_the_plain_rule(word, 10_000)
    assert len(tok.merges) > 100 and tok.decode(tok.encode(word)) == word


def test_the_scaling_benchmark_prints_a_table(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bpe_scaling.py"
    spec = importlib.util.spec_from_file_location("bpe_scaling", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    word = bench.blob(300)
    assert len(word) == 300 and not any(c.isspace() for c in word) and word == bench.blob(300)
    rows = bench.main(["--sizes", "300", "1200", "--merges", "all"])
    printed = capsys.readouterr().out
    assert "train us/char" in printed and printed.count("\n") == 4  # title, header, two rows
    assert [r.chars for r in rows] == [300, 1200]
    for r in rows:
        tok = BPETokenizer.train(bench.blob(r.chars), n_merges=10**9)
        assert r.merges == len(tok.merges) and r.tokens == len(tok.encode(bench.blob(r.chars)))
        assert r.train_s > 0 and r.encode_s > 0
    assert bench.main(["--sizes", "300", "--merges", "7"])[0].merges == 7
