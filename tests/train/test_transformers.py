"""udl.train.transformers: GPT, BERT and the encoder-decoder learn; shared trainings run once and hand out copies."""

import math
from collections import OrderedDict

import pytest
import torch

from udl import cache
from udl.models.bert import BERT, BertClassifier, BertConfig, MaskedLanguageModel, masked_token_cross_entropy, predict
from udl.models.gpt import GPT, GPTConfig, evaluate_cross_entropy
from udl.models.seq2seq import Seq2SeqConfig, evaluate_translation
from udl.train import transformers
from udl.train.transformers import (finetune_classifier, pretrain_mlm, pretrained_bert, pretrained_gpt, train_gpt,
                                    train_translator)

SPECIAL = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3, "<mask>": 4, "<cls>": 5, "<sep>": 6}


@pytest.fixture()
def new_process(monkeypatch):
    """An empty in-process memory of trained models; ``new_process()`` empties it again, as a new process would."""
    monkeypatch.setattr(cache, "_MEMORY", OrderedDict())
    return cache._MEMORY.clear


def _counting(monkeypatch, name):
    calls = []
    original = getattr(transformers, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers, name, counted)
    return calls


def _independent(a, b) -> bool:
    """Equal weights, separate storage: changing one leaves the other."""
    same = all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    first = next(a.parameters())
    saved = first.detach().clone()
    with torch.no_grad():
        first.add_(1.0)
        separate = not torch.equal(first, next(b.parameters()))
        first.copy_(saved)
    return same and separate


# --------------------------------------------------------------------------- GPT (§12.7)
def test_gpt_learns_a_periodic_text():
    """A 5-token cycle is predictable from the previous token: the loss falls from log 11 to near 0."""
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(), generator=torch.Generator().manual_seed(0))
    stream = torch.tensor([1, 4, 2, 8, 5] * 60)
    losses = train_gpt(model, stream, steps=60, batch_size=8, lr=1e-2, device="cpu", progress=False)
    assert losses[0] == pytest.approx(math.log(11), abs=0.3)
    assert losses[-1] < 0.05
    assert evaluate_cross_entropy(model, stream) < 0.05


def test_gpt_training_is_a_function_of_the_seed():
    stream = torch.randint(0, 11, (200,), generator=torch.Generator().manual_seed(0))
    runs = []
    for _ in range(2):
        model = GPT(GPTConfig.tiny(), generator=torch.Generator().manual_seed(1))
        runs.append((train_gpt(model, stream, steps=5, batch_size=4, seed=2, device="cpu", progress=False), model))
    assert runs[0][0] == runs[1][0]
    for p, q in zip(runs[0][1].parameters(), runs[1][1].parameters()):
        assert torch.equal(p, q)


def test_pretrained_gpt_trains_once_per_machine_and_hands_out_copies(new_process, monkeypatch):
    calls = _counting(monkeypatch, "train_gpt")
    config = GPTConfig(vocab_size=2000, context=16, n_layers=1, d_model=16, n_heads=2)
    first = pretrained_gpt(config, steps=3, batch_size=2, eval_every=2, device="cpu")
    assert first.tokenizer.vocab_size == 2000 and len(first.losses) == 3
    assert first.eval_steps == [0, 2, 3] and len(first.eval_ce) == 3 and not first.model.training
    again = pretrained_gpt(config, steps=3, batch_size=2, eval_every=2, device="cpu")  # from memory
    new_process()
    disk = pretrained_gpt(config, steps=3, batch_size=2, eval_every=2, device="cpu")  # from the file
    assert len(calls) == 1
    assert again.model is not first.model and _independent(first.model, again.model)
    assert _independent(first.model, disk.model) and disk.losses == first.losses and disk.eval_ce == first.eval_ce
    assert first.model.head.weight is first.model.embed.weight  # a copy keeps the tied embeddings tied
    other = pretrained_gpt(config, steps=3, batch_size=2, eval_every=2, seed=1, device="cpu")
    assert len(calls) == 2 and other.losses != first.losses


# --------------------------------------------------------------------------- BERT (§12.6)
def _mlm(config=None, seed=0):
    config = config or BertConfig.tiny()
    return MaskedLanguageModel(BERT(config, generator=torch.Generator().manual_seed(seed)),
                               generator=torch.Generator().manual_seed(seed + 1))


def test_pretraining_learns_a_predictable_stream():
    """In runs of 40 equal tokens (7 7 ... 8 8 ...) a masked token is almost always its neighbours'."""
    stream = (torch.arange(1200) // 40) % 6 + 7
    mlm = _mlm()
    ce_before, targets, _, _ = masked_token_cross_entropy(mlm, stream, special_ids=SPECIAL, context=12)
    losses = pretrain_mlm(mlm, stream, special_ids=SPECIAL, steps=150, batch_size=16, context=12, lr=3e-3,
                          device="cpu", progress=False)
    ce_after, targets2, nll, correct = masked_token_cross_entropy(mlm, stream, special_ids=SPECIAL, context=12)
    assert len(losses) == 150 and torch.equal(targets, targets2)
    assert ce_before > 2.0 and ce_after < 0.6  # log 13 = 2.56 at the start; log 6 = 1.79 without context
    assert float(correct.float().mean()) > 0.9
    assert math.isclose(ce_after, float(nll.mean()), rel_tol=1e-6)
    assert (targets >= 7).all()


def test_finetuning_fits_a_separable_task_and_leaves_the_global_generator():
    x = torch.full((32, 6), 9)
    x[:, 0] = 5
    y = torch.arange(32) % 2
    x[y == 1, 2] = 8  # class 1 holds token 8
    clf = BertClassifier(BERT(BertConfig.tiny(dropout=0.1), generator=torch.Generator().manual_seed(0)), 2,
                         generator=torch.Generator().manual_seed(1))
    state = torch.get_rng_state()
    losses = finetune_classifier(clf, x, y, steps=60, batch_size=16, lr=3e-3, warmup=5, seed=0, device="cpu")
    assert torch.equal(state, torch.get_rng_state())
    assert losses[0] > 0.6 and sum(losses[-5:]) / 5 < 0.35  # log 2 = 0.69 at the start
    probs = predict(clf, x)
    assert probs.shape == (32, 2) and torch.allclose(probs.sum(1), torch.ones(32))
    assert (probs.argmax(1) == y).all() and clf.training  # the mode is restored


def test_pretrained_bert_trains_once_per_machine_and_hands_out_copies(new_process, monkeypatch):
    calls = _counting(monkeypatch, "pretrain_mlm")
    config = BertConfig.tiny(vocab_size=2000, context=16)
    a, losses_a, tok = pretrained_bert(config, steps=3, batch_size=4, seed=0, device="cpu")
    b, losses_b, _ = pretrained_bert(config, steps=3, batch_size=4, seed=0, device="cpu")
    assert len(losses_a) == 3 and losses_a == losses_b and tok.vocab_size == 2000 and not a.training
    assert a is not b and _independent(a, b)
    new_process()
    c, losses_c, _ = pretrained_bert(config, steps=3, batch_size=4, seed=0, device="cpu")  # from the file
    assert len(calls) == 1 and losses_c == losses_a and _independent(a, c)

    files = sorted((cache.data_dir() / "models").glob("bert-python-docs-*.pt"))
    d, _, _ = pretrained_bert(config, steps=2, batch_size=4, seed=4, device="cpu", disk_cache=False)
    assert len(calls) == 2 and files  # trained again (other settings) ...
    assert sorted((cache.data_dir() / "models").glob("bert-python-docs-*.pt")) == files  # ... and not written
    assert not torch.equal(a.encoder.embed.weight, d.encoder.embed.weight)  # another seed, other weights


# --------------------------------------------------------------------------- the encoder-decoder (§12.8)
def test_a_small_translator_learns_and_is_trained_once(new_process, monkeypatch):
    calls = _counting(monkeypatch, "train_seq2seq")
    config = Seq2SeqConfig.numbers(2, d_model=32, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_mlp=64)
    kw = dict(steps=60, batch_size=32, lr=1e-2, n_train=1000, n_validation=10, n_test=10, max_digits=2, seed=0,
              device="cpu")
    tr = train_translator(config, **kw)
    new_process()
    again = train_translator(config, **kw)
    assert len(calls) == 1 and again.losses == tr.losses and again.seconds == tr.seconds
    assert again.model is not tr.model and _independent(tr.model, again.model)
    assert torch.equal(again.data.test.src, tr.data.test.src)
    assert not tr.model.training and len(tr.losses) == 60
    assert sum(tr.losses[-10:]) / 10 < 0.5 * sum(tr.losses[:5]) / 5
    scores = evaluate_translation(tr.model, tr.data.train.src[:100], tr.data.train.tgt[:100])
    assert scores.token_accuracy > 0.5  # chance: 1/35
    assert scores.correct.shape == (100,) and scores.predictions.shape[0] == 100
    with pytest.raises(ValueError, match="'config' parameter of train_translator"):
        train_translator(Seq2SeqConfig.tiny(), steps=2)
