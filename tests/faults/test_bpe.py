"""Issue 12, item 12: BPE on one long word costs linear work; a bad tokenizer file gets one line naming it."""

import json
import random
import re
import sys

import pytest

import udl.text.bpe
from udl.text import BPETokenizer


# ---------------------------------------------------------------------- one long word
def _lines_run(fn) -> int:
    """How many lines of udl/text/bpe.py Python executes while ``fn()`` runs: the work done, without a clock."""
    count = 0

    def in_bpe(frame, event, arg):
        nonlocal count
        count += event == "line"
        return in_bpe

    def any_call(frame, event, arg):
        return in_bpe if frame.f_code.co_filename == udl.text.bpe.__file__ else None

    old = sys.gettrace()
    sys.settrace(any_call)
    try:
        fn()
    finally:
        sys.settrace(old)
    return count


def _train_and_encode(n: int) -> int:
    rng = random.Random(0)
    word = "".join(rng.choice("abcd") for _ in range(n))  # no whitespace: one piece

    def run():
        tok = BPETokenizer.train(word, n_merges=10**6)  # merges until no pair repeats: more for longer words
        assert len(tok.merges) > n // 40
        fresh = BPETokenizer(tok.alphabet, tok.merges)  # an empty encoding cache
        assert fresh.decode(fresh.encode(word)) == word

    return _lines_run(run)


def test_one_long_word_trains_and_encodes_in_near_linear_work():
    # Rewriting the whole word at every merge (and rescanning it at every encoding step)
    # made this quadratic: 160k characters took 3 s, 1 MB about two minutes.
    short, long = _train_and_encode(1000), _train_and_encode(4000)
    assert long / short < 4.6  # 4x the characters, 4x the work (and a logarithm); quadratic gives about 9x
    assert long / 4000 < 200  # lines per character: about 90 today, over 1000 before


# ---------------------------------------------------------------------- damaged or foreign files
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tok = BPETokenizer.train("sea sea see sea", n_merges=3)
    return tok.save(tmp_path_factory.mktemp("bpe") / "good.json")


def _refused(path, why: str, error=ValueError):
    with pytest.raises(error) as caught:
        BPETokenizer.load(path)
    message = str(caught.value)
    assert "\n" not in message and caught.value.__suppress_context__ is True  # one line, no chained traceback
    assert re.fullmatch(rf"The tokenizer file {re.escape(repr(str(path)))} {why}\.", message), message


def test_an_empty_file_is_named(saved, tmp_path):
    path = tmp_path / "empty.json"
    path.write_bytes(b"")
    _refused(path, "cannot be loaded: the file is empty")


def test_a_truncated_file_is_named(saved, tmp_path):
    path = tmp_path / "cut.json"
    path.write_bytes(saved.read_bytes()[:100])
    _refused(path, r"cannot be loaded: the JSON ends early \(the file is cut short\)")


def test_a_file_cut_anywhere_is_named_as_cut_short(tmp_path):
    tok = BPETokenizer.train("sea sea see sea éé😀 é😀 \t\t", n_merges=5, min_count=1)
    raw = tok.save(tmp_path / "whole.json").read_bytes()  # ASCII: the marker is written "\\u2581"
    path = tmp_path / "cut.json"
    escapes = [m.start() + k for m in re.finditer(rb"\\u", raw) for k in range(1, 6)]  # cut inside "\\u2581"
    for end in sorted({*range(1, len(raw), 17), *escapes}):
        path.write_bytes(raw[:end])
        _refused(path, r"cannot be loaded: the JSON ends early \(the file is cut short\)")


def test_a_file_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text("merges: a b\n")
    _refused(path, r"cannot be loaded: it is not JSON \(Expecting value at line 1 column 1\)")
    path.write_bytes(b"\x80\x81PK\x03\x04")
    _refused(path, "cannot be loaded: it is not UTF-8 text")


@pytest.mark.parametrize("key", ["alphabet", "merges", "merge_counts", "special_tokens", "end_of_word"])
def test_a_missing_key_is_named(saved, tmp_path, key):
    data = json.loads(saved.read_text())
    del data[key]
    path = tmp_path / "keyless.json"
    path.write_text(json.dumps(data))
    _refused(path, f"cannot be loaded: it has no '{key}' entry")


@pytest.mark.parametrize("key, value, why", [
    ("merges", 5, "its 'merges' entry must be a list of pairs of token strings, not 5"),
    ("merges", [["s", "e", "a"]],
     r"its 'merges' entry must be a list of pairs of token strings, not \[\['s', 'e', 'a'\]\]"),
    ("merge_counts", ["x"], r"its 'merge_counts' entry must be a list of ints, not \['x'\]"),
    ("alphabet", None, "its 'alphabet' entry must be a list of characters, not None"),
    ("history", [[1]], r"its 'history' entry must be a list of pairs of ints, not \[\[1\]\]"),
    ("vocab", {"s": 0}, r"its vocabulary is not the one its merges rebuild \(a damaged or edited file\)"),
    ("alphabet", ["s", "s"], r"describes no tokenizer: The 'alphabet' parameter of BPETokenizer must hold distinct .*"),
])
def test_a_wrong_value_is_named(saved, tmp_path, key, value, why):
    data = json.loads(saved.read_text())
    data[key] = value
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    if why.startswith("its"):
        why = "cannot be loaded: " + why
    _refused(path, why)


def test_json_of_another_kind_is_named(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    _refused(path, r"cannot be loaded: it is not a udl\.text\.bpe tokenizer \(a JSON list\)")
    path.write_text('{"format": "tokenizers", "model": {}}')
    _refused(path, r"cannot be loaded: it is not a udl\.text\.bpe tokenizer \(format 'tokenizers'\)")


def test_a_missing_file_or_a_folder_is_named(tmp_path):
    _refused(tmp_path / "absent.json", "does not exist", FileNotFoundError)
    _refused(tmp_path, "cannot be loaded: it is a folder, not a file")


def test_from_dict_names_the_missing_key(saved):
    data = json.loads(saved.read_text())
    del data["alphabet"]
    with pytest.raises(ValueError, match=r"^The 'data' parameter of BPETokenizer\.from_dict must be a udl\.text\.bpe "
                                         r"description \(it has no 'alphabet' entry\)\. Got .* instead\.$"):
        BPETokenizer.from_dict(data)


def test_the_good_file_still_loads(saved):
    assert BPETokenizer.load(saved).tokenize("sea") == ["sea▁"]
