"""udl.train.recipes: AdamW's groups and the warm-up schedules, and the four trainings that use them."""

import math

import pytest
import torch

from udl.models.bert import BERT, BertClassifier, BertConfig, MaskedLanguageModel
from udl.models.gpt import GPT, GPTConfig, parameter_count
from udl.models.seq2seq import EncoderDecoder, Seq2SeqConfig
from udl.train import recipes, transformers
from udl.train.recipes import adamw, decay_groups, warmup_cosine, warmup_linear


def _gpt():
    return GPT(GPTConfig.tiny(), generator=torch.Generator().manual_seed(0))


def _mlm():
    return MaskedLanguageModel(BERT(BertConfig.tiny(), generator=torch.Generator().manual_seed(0)))


def _translator():
    return EncoderDecoder(Seq2SeqConfig.tiny(), generator=torch.Generator().manual_seed(0))


def _frozen_classifier():
    return BertClassifier(BERT(BertConfig.tiny(), generator=torch.Generator().manual_seed(0)), 2, freeze=True)


def _split_by_rank(params):
    """The rule every training used before the recipe: matrices decay, vectors do not, frozen ones left out."""
    params = [p for p in params if p.requires_grad]
    return [p for p in params if p.dim() >= 2], [p for p in params if p.dim() < 2]


# --------------------------------------------------------------------------- decay groups
@pytest.mark.parametrize("make", [_gpt, _mlm, _translator, _frozen_classifier])
def test_decay_groups_split_as_the_trainings_did(make):
    model = make()
    decay, rest = decay_groups(model, 0.1)
    matrices, vectors = _split_by_rank(model.parameters())
    assert [id(p) for p in decay["params"]] == [id(p) for p in matrices] and decay["weight_decay"] == 0.1
    assert [id(p) for p in rest["params"]] == [id(p) for p in vectors] and rest["weight_decay"] == 0.0
    assert decay_groups(list(model.parameters()), 0.1)[0]["params"] == decay["params"]  # a list works too


def test_gpt_groups_in_numbers():
    """GPT tiny (L = 2, D = 16, F = 64): the vectors are the biases and LayerNorm parameters, counted in closed form."""
    config = GPTConfig.tiny()
    decay, rest = decay_groups(_gpt(), 0.1)
    L, D, F_ = config.n_layers, config.d_model, config.d_mlp
    vectors = L * 4 * D + L * (F_ + D) + (2 * L + 1) * 2 * D  # attention biases, MLP biases, LayerNorms (+ final)
    assert sum(p.numel() for p in rest["params"]) == vectors == 448
    assert sum(p.numel() for p in decay["params"]) == parameter_count(config) - vectors
    assert all(p.dim() == 2 for p in decay["params"])  # token and position embeddings decay, as GPT-2


def test_a_frozen_encoder_is_left_out():
    clf = _frozen_classifier()
    decay, rest = decay_groups(clf, 0.01)
    names = {id(p): n for n, p in clf.named_parameters()}
    assert {names[id(p)] for p in decay["params"]} == {"out.weight", "encoder.pooler.weight"}
    assert {names[id(p)] for p in rest["params"]} == {"out.bias", "encoder.pooler.bias"}


def test_adamw_is_torchs_adamw_over_the_groups():
    model = _translator()
    opt = adamw(model, lr=1e-3, weight_decay=0.01, betas=(0.9, 0.98))
    matrices, vectors = _split_by_rank(model.parameters())
    reference = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.01}, {"params": vectors, "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.98))
    for ours, theirs in zip(opt.param_groups, reference.param_groups, strict=True):
        assert ours.keys() == theirs.keys()
        assert all(ours[k] == theirs[k] for k in ours if k != "params") and ours["params"] == theirs["params"]


# --------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("step, expected", [(0, 0.1), (4, 0.5), (9, 1.0), (10, 1.0), (55, 0.55), (100, 0.1),
                                            (150, 0.1)])
def test_warmup_cosine_closed_form(step, expected):
    """warm-up over 10 steps, then 0.1 + 0.9 (1 + cos πp)/2 with p = (step - 10)/90; half way (p = 1/2) gives 0.55."""
    assert warmup_cosine(100, 10, floor=0.1)(step) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("step", [0, 3, 99, 100, 1000, 2500, 3000, 4000])
def test_warmup_cosine_matches_the_decoders_formulas_exactly(step):
    """Bit for bit the factors the GPT (floor 0.1) and encoder-decoder (floor 0.05) trainings used."""
    steps, warmup = 3000, 100
    p = min(1.0, (step - warmup) / max(1, steps - warmup))
    gpt = (step + 1) / warmup if step < warmup else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))
    s2s = (step + 1) / warmup if step < warmup else 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p))
    assert warmup_cosine(steps, warmup, floor=0.1)(step) == gpt
    assert warmup_cosine(steps, warmup, floor=0.05)(step) == s2s


@pytest.mark.parametrize("step, expected", [(0, 0.2), (4, 1.0), (5, 1.0), (30, 0.5), (55, 0.0), (80, 0.0)])
def test_warmup_linear_closed_form(step, expected):
    """warm-up over 5 steps, then 1 - (step - 5)/50 down to zero (BERT)."""
    assert warmup_linear(55, 5)(step) == pytest.approx(expected, abs=1e-15)


def test_warmup_linear_floor_and_no_warmup():
    factor = warmup_linear(10, 0, floor=0.2)
    assert factor(0) == 1.0 and factor(5) == pytest.approx(0.6) and factor(10) == pytest.approx(0.2)
    assert warmup_cosine(10, 0, floor=0.0)(5) == pytest.approx(0.5)


def test_schedules_drive_lambdalr():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=2.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_linear(4, 2))
    seen = []
    for _ in range(5):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == [1.0, 2.0, 2.0, 1.0, 0.0]


# --------------------------------------------------------------------------- the four trainings use the recipe
@pytest.fixture()
def captured(monkeypatch):
    """Replace fit by a recorder: the optimizer and the scheduler each training builds."""
    calls = {}

    def fake_fit(model, data, loss_fn, optimizer, *, steps, scheduler, **kwargs):
        opt = optimizer(model.parameters())
        calls.update(model=model, optimizer=opt, scheduler=scheduler(opt), steps=steps, kwargs=kwargs)
        return [0.0] * steps

    monkeypatch.setattr(transformers, "fit", fake_fit)
    return calls


def _same_groups(opt, params, weight_decay, lr, betas, fused=None):
    matrices, vectors = _split_by_rank(params)
    expected = [(matrices, weight_decay), (vectors, 0.0)]
    assert len(opt.param_groups) == 2
    for group, (members, decay) in zip(opt.param_groups, expected):
        assert group["params"] == members and group["weight_decay"] == decay
        assert group["initial_lr"] == lr and group["betas"] == betas and group["fused"] == fused


def _factors(scheduler, steps):
    """The schedule's factor at steps 0 ... steps, the same for both groups."""
    first, second = ([f(s) for s in range(steps + 1)] for f in scheduler.lr_lambdas)
    assert first == second
    return first


def test_train_gpt_uses_betas_0_9_0_95_decay_0_1_and_a_cosine_to_a_tenth(captured):
    model = _gpt()
    transformers.train_gpt(model, torch.arange(60) % 11, steps=20, batch_size=2, lr=3e-3, warmup=4, device="cpu")
    _same_groups(captured["optimizer"], model.parameters(), 0.1, 3e-3, (0.9, 0.95), fused=True)
    assert _factors(captured["scheduler"], 20) == [warmup_cosine(20, 4, floor=0.1)(s) for s in range(21)]
    assert captured["kwargs"]["clip_grad_norm"] == 1.0


def test_pretrain_mlm_uses_decay_0_01_and_a_linear_decay_to_zero(captured):
    mlm = _mlm()
    special = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3, "<mask>": 4, "<cls>": 5, "<sep>": 6}
    transformers.pretrain_mlm(mlm, torch.arange(40) % 6 + 7, special_ids=special, steps=12, batch_size=2,
                              context=8, lr=1e-3, warmup=3, device="cpu")
    _same_groups(captured["optimizer"], mlm.parameters(), 0.01, 1e-3, (0.9, 0.999))
    assert _factors(captured["scheduler"], 12) == [warmup_linear(12, 3)(s) for s in range(13)]


def test_finetune_classifier_trains_only_what_requires_a_gradient(captured):
    clf = _frozen_classifier()
    transformers.finetune_classifier(clf, torch.full((4, 5), 7), torch.tensor([0, 1, 0, 1]), steps=6, batch_size=2,
                                     lr=5e-4, warmup=2, device="cpu")
    _same_groups(captured["optimizer"], clf.parameters(), 0.01, 5e-4, (0.9, 0.999))
    assert sum(len(g["params"]) for g in captured["optimizer"].param_groups) == 4  # pooler and output layer
    assert _factors(captured["scheduler"], 6) == [warmup_linear(6, 2)(s) for s in range(7)]


def test_train_seq2seq_uses_betas_0_9_0_98_and_a_cosine_to_a_twentieth(captured):
    model = _translator()
    src, tgt = torch.full((4, 5), 3), torch.full((4, 6), 4)
    tgt[:, 0] = 1
    transformers.train_seq2seq(model, src, tgt, steps=30, batch_size=2, lr=1e-3, warmup=5, device="cpu")
    _same_groups(captured["optimizer"], model.parameters(), 0.01, 1e-3, (0.9, 0.98))
    assert _factors(captured["scheduler"], 30) == [warmup_cosine(30, 5, floor=0.05)(s) for s in range(31)]


def test_schedules_refuse_bad_arguments():
    with pytest.raises(ValueError, match=r"^The 'floor' parameter of warmup_cosine must be a float in \[0, 1\]\. "
                                         r"Got 1.5 instead\.$"):
        warmup_cosine(10, 2, floor=1.5)
    with pytest.raises(TypeError, match="The 'model_or_params' parameter of decay_groups must be an nn.Module"):
        recipes.decay_groups(3, 0.1)


def test_fit_adamw_is_fit_with_the_recipe():
    from torch.optim.lr_scheduler import LambdaLR

    from udl.train import fit
    from udl.train.recipes import adamw, fit_adamw, warmup_cosine

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, generator=g), torch.randn(64, 1, generator=g)
    one, two = (torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)) for _ in range(2))
    two.load_state_dict(one.state_dict())
    by_hand = fit(one, (x, y), torch.nn.functional.mse_loss,
                  lambda params: adamw(params, lr=1e-2, weight_decay=0.1), steps=30, batch_size=16, seed=3,
                  device="cpu", clip_grad_norm=1.0, progress=False,
                  scheduler=lambda opt: LambdaLR(opt, warmup_cosine(30, 3, floor=0.1)))
    recipe = fit_adamw(two, (x, y), torch.nn.functional.mse_loss, steps=30, lr=1e-2, weight_decay=0.1, floor=0.1,
                       batch_size=16, seed=3, device="cpu", clip_grad_norm=1.0, progress=False)
    assert recipe == by_hand and recipe[-1] < recipe[0]
    with pytest.raises(ValueError, match=r"The .warmup. parameter of warmup_cosine must be an int in \[0, 30\]\. Got 31"):
        fit_adamw(two, (x, y), torch.nn.functional.mse_loss, steps=30, lr=1e-2, weight_decay=0.1, floor=0.1,
                  warmup=31, batch_size=16, progress=False)
