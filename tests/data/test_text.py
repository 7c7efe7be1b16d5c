"""udl.data.text: the Python reference manual as a corpus, its splits, tokenizer and sentences."""

import time

import pytest
import torch
from udl.data import text


def test_splits_are_disjoint_complete_and_deterministic():
    s = text.load_python_docs()
    kept = text.deduplicated_topics()
    names = [set(s.topics[k]) for k in text.SPLITS]
    assert sum(map(len, names)) == len(set().union(*names)) == len(kept)
    assert text.load_python_docs.__wrapped__() == s  # recomputed, not only cached
    for k in text.SPLITS:
        assert getattr(s, k) == "\n\n".join(kept[t] for t in s.topics[k]) + "\n"


def test_no_long_paragraph_leaks_between_splits():
    s = text.load_python_docs()
    train = text.paragraphs(s.train)
    held_out = text.paragraphs(s.validation) + text.paragraphs(s.test)
    long = {p for p in held_out if len(p) >= text.MIN_SHARED_PARAGRAPH}
    assert len(long) > 200 and not long & set(train)
    # "compound" contains the whole "if" topic: "if" is kept only through it
    assert "if" not in text.deduplicated_topics() and "compound" in text.deduplicated_topics()
    from pydoc_data.topics import topics
    assert sum(len(v) for v in topics.values()) - sum(len(v) for v in text.deduplicated_topics().values()) > 50_000


def test_split_sizes():
    s = text.load_python_docs()
    total = sum(len(v) for v in text.deduplicated_topics().values())
    for k in ("validation", "test"):
        assert 0.07 * total < len(getattr(s, k)) <= 0.1 * total + 2 * len(s.topics[k])
        assert len(s.topics[k]) >= 3
    assert len(s.train) > 0.75 * total


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("udl-data")
        mp.setenv("UDL_DATA_DIR", str(path))
        yield path


def test_tokenizer_is_cached_on_disk(data_dir):
    first = text.python_docs_tokenizer(500)
    files = list((data_dir / "tokenizers").glob("python-docs-bpe500-*.json"))
    assert len(files) == 1 and first.vocab_size == 500
    text._TOKENIZERS.clear()
    start = time.perf_counter()
    second = text.python_docs_tokenizer(500)
    assert time.perf_counter() - start < 0.5 and second is not first
    assert second.merges == first.merges and second.vocab == first.vocab
    assert text.python_docs_tokenizer(500) is second  # in memory now


def test_token_ids_decode_to_the_split(data_dir):
    tok = text.python_docs_tokenizer(500)
    ids = text.token_ids("validation", tok)
    assert ids.dtype == torch.long and ids.ndim == 1
    assert tok.decode(ids) == text.load_python_docs().validation
    assert text.token_ids("validation", tok) is ids
    assert 0 <= int(ids.min()) and int(ids.max()) < tok.vocab_size
    assert len(ids) < len(text.load_python_docs().validation) / 1.5  # 135 merges: 1.9 characters a token


def test_sentences():
    train = text.sentences("train")
    assert len(train) > 900 and len(text.sentences("validation")) > 100 and len(text.sentences("test")) > 100
    for s in train:
        assert s[-1] in ".!?" and len(s.split()) >= 3 and "\n" not in s
    assert "Assignment is defined recursively depending on the form of the target (list)." in train
    shared = set(train) & set(text.sentences("test"))
    assert all(len(s) < text.MIN_SHARED_PARAGRAPH for s in shared)  # only boilerplate such as "New in version 3.5."
    with pytest.raises(ValueError, match="'split'"):
        text.sentences("dev")


def test_the_nursery_rhyme():
    words = text.NURSERY_RHYME.split()
    assert len(words) == 33 and len(set(words)) == 18
    assert words.count("sea") == 6 and words.count("see") == 7 and " ".join(words) == text.NURSERY_RHYME
