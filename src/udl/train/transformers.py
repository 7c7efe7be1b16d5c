"""Training the transformers of chapter 12: decoder (GPT, §12.7), encoder (BERT, §12.6), encoder-decoder (§12.8).

The three are trained by one recipe, whose pieces are in :mod:`udl.train.recipes`:

1. **the loss**: the cross-entropy (UDL eq. 5.24) of the tokens the model predicts:
   every next token (GPT; the encoder-decoder under teacher forcing), or the 15 % of
   the tokens that were masked (BERT), or the class of a sentence (fine-tuning);
2. **the optimiser**: AdamW, weight decay on the matrices only (:func:`~udl.train.recipes.adamw`);
3. **the learning rate**: a linear warm-up, then a decay to a floor
   (:func:`~udl.train.recipes.warmup_cosine`, :func:`~udl.train.recipes.warmup_linear`);
4. **the batches**: random windows or pairs, a function of ``seed``, through
   :func:`udl.train.fit` (gradient norm clipped to 1; bf16 autocast on a GPU).

=================  ===================  ============  ====  ==================================
training           loss                 β             λ     learning rate
=================  ===================  ============  ====  ==================================
GPT                next token           (0.9, 0.95)   0.1   warm-up, cosine to lr/10
BERT pre-training  masked tokens        (0.9, 0.999)  0.01  warm-up, linear to 0
BERT fine-tuning   class of ``<cls>``   (0.9, 0.999)  0.01  warm-up, linear to 0 (no clipping)
encoder-decoder    next target token    (0.9, 0.98)   0.01  warm-up, cosine to lr/20
=================  ===================  ============  ====  ==================================

The models that several figures share (a decoder and an encoder trained on the Python
reference manual, the numbers translator) are trained once per machine by
:func:`udl.cache.trained`: every call returns a fresh model that the caller may change.
"""

from __future__ import annotations

import sys
import time
from types import ModuleType
from typing import Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from udl.cache import trained
from udl.data import numbers
from udl.data import text as python_docs
from udl.data.text import python_docs_tokenizer, token_ids
from udl.devices import resolve_device
from udl.models import bert, gpt, seq2seq
from udl.models.bert import BERT, BertClassifier, BertConfig, MaskedLanguageModel, mlm_windows
from udl.models.gpt import GPT, GPTConfig, evaluate_cross_entropy, language_model_windows, lm_loss
from udl.models.seq2seq import EncoderDecoder, Seq2SeqConfig, seq2seq_loss
from udl.nn import attention, transformer
from udl.text import bpe
from udl.train import batches, loop, recipes
from udl.train.loop import fit
from udl.train.recipes import adamw, warmup_cosine, warmup_linear
from udl.validate import check_bool, check_callable, check_float, check_instance, check_int

__all__ = ["train_gpt", "TrainedDecoder", "pretrained_gpt", "pretrain_mlm", "finetune_classifier", "pretrained_bert",
           "train_seq2seq", "Translator", "train_translator"]


def _sources(*modules: ModuleType) -> tuple[ModuleType, ...]:
    """The code a shared trained model depends on: the model, the layers, the loop, the recipe and this file."""
    return (*modules, attention, transformer, batches, loop, recipes, sys.modules[__name__])


def _checked(owner: str, steps, lr, warmup, weight_decay=0.0) -> tuple[int, float, int, float]:
    """``(steps, lr, warmup, weight_decay)`` checked: what every training of this module takes."""
    return (check_int(steps, "steps", owner), check_float(lr, "lr", owner, low=0.0, low_open=True),
            check_int(warmup, "warmup", owner, minimum=0), check_float(weight_decay, "weight_decay", owner, low=0.0))


# =========================================================================== the decoder (GPT, §12.7)
def train_gpt(model: GPT, tokens: torch.Tensor, *, steps: int, batch_size: int = 32, lr: float = 3e-3,
              weight_decay: float = 0.1, warmup: int = 0, seed: int = 0, device: str | torch.device = "auto",
              clip_grad_norm: float | None = 1.0, callback=None, progress: bool | None = None) -> list[float]:
    """Train ``model`` to predict the next token of random windows of ``tokens`` (fig. 12.12).

    AdamW (β = (0.9, 0.95); weight decay on matrices only, as GPT-2) with a linear
    warm-up over ``warmup`` steps and a cosine decay to lr/10, through
    :func:`udl.train.fit` (bf16 autocast on a GPU).

    Args:
        model: the :class:`~udl.models.gpt.GPT` (moved to ``device``).
        tokens: ``(T,)`` the training token stream; every window of ``context + 1``
            tokens is one example.
        steps: optimizer steps.
        batch_size: windows per step. Default: 32.
        lr: peak learning rate. Default: 3e-3.
        weight_decay: AdamW's decoupled decay on the weight matrices. Default: 0.1.
        warmup: steps of linear warm-up. Default: 0.
        seed: the order of the windows. Default: 0.
        device: where to train. Default: "auto".
        clip_grad_norm: gradient norm clipping (None for none). Default: 1.0.
        callback: ``callback(step, loss, model)`` after each step. Default: None.
        progress: show a progress bar (None: on a terminal). Default: None.

    Returns:
        The training loss of every step.
    """
    check_instance(model, "model", "train_gpt", GPT)
    steps, lr, warmup, weight_decay = _checked("train_gpt", steps, lr, warmup, weight_decay)
    x, y = language_model_windows(tokens, model.context)  # (W, N): inputs and their next tokens

    def optimizer(params):
        params = list(params)
        fused = params[0].device.type in ("cpu", "cuda")  # one kernel for all parameters
        return adamw(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.95), fused=fused)

    return fit(model, (x, y), lm_loss, optimizer, steps=steps, batch_size=batch_size, seed=seed, device=device,
               clip_grad_norm=clip_grad_norm,
               scheduler=lambda opt: LambdaLR(opt, warmup_cosine(steps, warmup, floor=0.1)),
               callback=callback, progress=progress)


class TrainedDecoder(NamedTuple):
    """A :class:`~udl.models.gpt.GPT` trained on the Python reference manual, with its tokenizer and curves."""

    model: GPT  # in eval mode, on the device it was asked for; the caller's own copy
    tokenizer: bpe.BPETokenizer  # python_docs_tokenizer(|V|)
    losses: list[float]  # training loss of every step
    eval_steps: list[int]  # steps at which the validation cross-entropy was measured (0 = before training)
    eval_ce: list[float]  # validation cross-entropy (nats per token) at those steps


def pretrained_gpt(config: GPTConfig, *, steps: int, batch_size: int = 32, lr: float = 3e-3, warmup: int = 0,
                   eval_every: int = 0, seed: int = 0, device: str | torch.device = "auto",
                   progress: bool | None = None) -> TrainedDecoder:
    """A decoder trained on the training split of the Python reference manual (:mod:`udl.data.text`).

    The tokenizer is ``python_docs_tokenizer(config.vocab_size)``; training is
    :func:`train_gpt` on its token stream from weights drawn with ``seed`` (dropout
    too, so the same arguments give the same model whatever ran before). The model is
    trained once per machine (:func:`udl.cache.trained`, keyed by the arguments, the
    torch version and the source of the code involved); each call returns a fresh copy.

    Args:
        config: the decoder's shape (its ``vocab_size`` is the tokenizer's).
        steps: optimizer steps.
        batch_size: windows of ``context + 1`` tokens per step. Default: 32.
        lr: peak learning rate (AdamW, warm-up then cosine decay). Default: 3e-3.
        warmup: warm-up steps. Default: 0.
        eval_every: measure the validation cross-entropy every this many steps
            (0: only before and after training). Default: 0.
        seed: initial weights, window order and dropout. Default: 0.
        device: where to train and where the model is returned. Default: "auto".
        progress: progress bar (None: on a terminal). Default: None.

    Returns:
        A :class:`TrainedDecoder` (the model on ``device``, in eval mode).
    """
    owner = "pretrained_gpt"
    check_instance(config, "config", owner, GPTConfig)
    steps, lr, warmup, _ = _checked(owner, steps, lr, warmup)
    batch_size = check_int(batch_size, "batch_size", owner)
    eval_every = check_int(eval_every, "eval_every", owner, minimum=0)
    seed = check_int(seed, "seed", owner, minimum=0)
    device = resolve_device(device, owner)
    tokenizer = python_docs_tokenizer(config.vocab_size)

    def train(model: GPT) -> dict:
        train_ids, val_ids = token_ids("train", tokenizer), token_ids("validation", tokenizer)
        eval_steps, eval_ce = [0], [evaluate_cross_entropy(model, val_ids)]

        def callback(step, loss, net):
            if step == steps or (eval_every and step % eval_every == 0):
                eval_steps.append(step)
                eval_ce.append(evaluate_cross_entropy(net, val_ids))

        torch.manual_seed(seed)  # dropout masks (udl.cache.trained restores the caller's generator)
        losses = train_gpt(model, train_ids, steps=steps, batch_size=batch_size, lr=lr, warmup=warmup, seed=seed,
                           device=device, callback=callback, progress=progress)
        return {"losses": losses, "eval_steps": eval_steps, "eval_ce": eval_ce}

    settings = dict(config=config.to_dict(), steps=steps, batch_size=batch_size, lr=lr, warmup=warmup,
                    eval_every=eval_every, seed=seed)
    model, record = trained("gpt-python-docs", settings,
                            lambda: GPT(config, generator=torch.Generator().manual_seed(seed)), train,
                            sources=_sources(gpt, python_docs, bpe), device=device)
    return TrainedDecoder(model, tokenizer, record["losses"], record["eval_steps"], record["eval_ce"])


# =========================================================================== the encoder (BERT, §12.6)
class _MaskedTokenLoss(nn.Module):
    """``model.loss(inputs, targets)`` as a module's forward, for :func:`udl.train.fit`."""

    def __init__(self, model: MaskedLanguageModel):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.model.loss(inputs, targets)


def pretrain_mlm(model: MaskedLanguageModel, tokens: torch.Tensor, *, special_ids: Mapping[str, int], steps: int,
                 batch_size: int = 32, context: int | None = None, lr: float = 1e-3, weight_decay: float = 0.01,
                 warmup: int = 0, prob: float = 0.15, seed: int = 0, device: str | torch.device = "auto",
                 clip_grad_norm: float | None = 1.0, callback=None, progress: bool | None = None) -> list[float]:
    """Pre-train ``model`` to predict masked tokens of random windows of ``tokens`` (fig. 12.10).

    The batches come from :func:`~udl.models.bert.mlm_windows`; the optimiser is AdamW
    (weight decay on matrices only, as BERT) with a linear warm-up over ``warmup`` steps
    and a linear decay to zero, through :func:`udl.train.fit` (bf16 autocast on a GPU).

    Args:
        model: the :class:`~udl.models.bert.MaskedLanguageModel` (moved to ``device``, left in train mode).
        tokens: ``(T,)`` the training token stream.
        special_ids: the tokenizer's special ids (``<mask>`` and ``<cls>`` required).
        steps: optimizer steps.
        batch_size: examples per step. Default: 32.
        context: the length of each example. Default: the model's context.
        lr: peak learning rate. Default: 1e-3.
        weight_decay: AdamW's decoupled decay of the matrices. Default: 0.01.
        warmup: steps of linear warm-up. Default: 0.
        prob: the fraction of tokens predicted. Default: 0.15.
        seed: seeds the windows and the masks. Default: 0.
        device: where to train. Default: "auto".
        clip_grad_norm: gradient norm clipping (None for none). Default: 1.0.
        callback: ``callback(step, loss, model)`` after each step. Default: None.
        progress: show a progress bar (None: on a terminal). Default: None.

    Returns:
        The masked-token loss (nats per predicted token) of every step.
    """
    owner = "pretrain_mlm"
    check_instance(model, "model", owner, MaskedLanguageModel)
    steps, lr, warmup, weight_decay = _checked(owner, steps, lr, warmup, weight_decay)
    context = model.config.context if context is None else check_int(context, "context", owner, minimum=2)
    if context > model.config.context:
        raise ValueError(f"The 'context' parameter of {owner} must be at most the model's {model.config.context}. "
                         f"Got {context} instead.")
    seed = check_int(seed, "seed", owner, minimum=0)
    check_callable(callback, "callback", owner, optional=True)
    batch_size = check_int(batch_size, "batch_size", owner)
    stream = mlm_windows(tokens, context, special_ids=special_ids, batch_size=batch_size,
                         vocab_size=model.config.vocab_size, prob=prob, generator=torch.Generator().manual_seed(seed))
    wrapped = None if callback is None else (lambda s, loss, _: callback(s, loss, model))
    return fit(_MaskedTokenLoss(model), stream, None, lambda params: adamw(params, lr=lr, weight_decay=weight_decay),
               steps=steps, seed=seed, device=device, clip_grad_norm=clip_grad_norm,
               scheduler=lambda opt: LambdaLR(opt, warmup_linear(steps, warmup)), callback=wrapped, progress=progress)


def finetune_classifier(classifier: BertClassifier, tokens: torch.Tensor, labels: torch.Tensor, *, steps: int,
                        batch_size: int = 32, lr: float = 5e-4, weight_decay: float = 0.01, warmup: int = 0,
                        seed: int = 0, device: str | torch.device = "auto", progress: bool | None = False
                        ) -> list[float]:
    """Train a classifier with the cross-entropy loss (fig. 12.11): BERT's fine-tuning recipe.

    AdamW (weight decay on matrices only) over the parameters that require a gradient,
    learning rate warmed up linearly over ``warmup`` steps then decayed linearly to
    zero, random mini-batches, through :func:`udl.train.fit`. Dropout draws from a
    generator seeded with ``seed`` (the global one is left as it was).

    Args:
        classifier: a :class:`~udl.models.bert.BertClassifier` (moved to ``device``, left in train mode).
        tokens: ``(n, N)`` from :func:`~udl.models.bert.encode_texts`.
        labels: ``(n,)`` class indices.
        steps: optimizer steps.
        batch_size: examples per step (at most n). Default: 32.
        lr: peak learning rate. Default: 5e-4.
        weight_decay: AdamW's decay of the matrices. Default: 0.01.
        warmup: steps of linear warm-up. Default: 0.
        seed: the order of the examples and the dropout masks. Default: 0.
        device: where to train. Default: "auto".
        progress: show a progress bar. Default: False.

    Returns:
        The training loss of every step.
    """
    owner = "finetune_classifier"
    check_instance(classifier, "classifier", owner, BertClassifier)
    steps, lr, warmup, weight_decay = _checked(owner, steps, lr, warmup, weight_decay)
    batch_size = check_int(batch_size, "batch_size", owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout masks
        return fit(classifier, (tokens, labels), F.cross_entropy,
                   lambda params: adamw(params, lr=lr, weight_decay=weight_decay), steps=steps,
                   batch_size=batch_size, seed=seed, device=device,
                   scheduler=lambda opt: LambdaLR(opt, warmup_linear(steps, warmup)), progress=progress)


def pretrained_bert(config: BertConfig, *, steps: int, batch_size: int = 64, lr: float = 3e-3, warmup: int = 0,
                    seed: int = 0, device: str | torch.device = "auto", disk_cache: bool = True):
    """A :class:`~udl.models.bert.MaskedLanguageModel` pre-trained on the Python reference manual's training split.

    The tokenizer is :func:`udl.data.text.python_docs_tokenizer` with
    ``config.vocab_size`` tokens; training is :func:`pretrain_mlm` from weights drawn
    with ``seed`` (dropout too). The model is trained once per machine
    (:func:`udl.cache.trained`: in memory, and on disk under ``$UDL_DATA_DIR/models``
    keyed by the settings, torch's version and the source of the model, the training
    loop and the tokenizer), so figures 12.10 and 12.11 share one pre-training. Every
    call returns a fresh copy that the caller may train further.

    Args:
        config: the encoder's :class:`~udl.models.bert.BertConfig` (``vocab_size`` is the tokenizer's).
        steps, batch_size, lr, warmup, seed: as :func:`pretrain_mlm`.
            Defaults: batch_size 64, lr 3e-3, warmup 0, seed 0.
        device: where to train and where the model is returned. Default: "auto".
        disk_cache: read and write the disk cache. Default: True.

    Returns:
        ``(model, losses, tokenizer)``: the model on ``device`` in eval mode, the
        training loss of every step, and the tokenizer.
    """
    owner = "pretrained_bert"
    check_instance(config, "config", owner, BertConfig)
    check_bool(disk_cache, "disk_cache", owner)
    steps, lr, warmup, _ = _checked(owner, steps, lr, warmup)
    batch_size = check_int(batch_size, "batch_size", owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    device = resolve_device(device, owner)
    tokenizer = python_docs_tokenizer(config.vocab_size)

    def build() -> MaskedLanguageModel:
        return MaskedLanguageModel(BERT(config, generator=torch.Generator().manual_seed(seed)),
                                   generator=torch.Generator().manual_seed(seed + 1))

    def train(model: MaskedLanguageModel) -> dict:
        torch.manual_seed(seed)  # dropout masks (udl.cache.trained restores the caller's generator)
        return {"losses": pretrain_mlm(model, token_ids("train", tokenizer), special_ids=tokenizer.special_ids,
                                       steps=steps, batch_size=batch_size, lr=lr, warmup=warmup, seed=seed,
                                       device=device, progress=None)}

    settings = dict(config=config.to_dict(), steps=steps, batch_size=batch_size, lr=lr, warmup=warmup, seed=seed)
    model, record = trained("bert-python-docs", settings, build, train, device=device, disk=disk_cache,
                            sources=_sources(bert, python_docs, bpe))
    return model, record["losses"], tokenizer


# =========================================================================== the encoder-decoder (§12.8)
class _TeacherForcingLoss(nn.Module):
    """``(src, tgt) -> seq2seq_loss(model(src, tgt[:, :-1]), tgt[:, 1:])``: what :func:`udl.train.fit` minimises."""

    def __init__(self, model: EncoderDecoder):
        super().__init__()
        self.model = model

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return seq2seq_loss(self.model(src, tgt[:, :-1]), tgt[:, 1:], self.model.config.pad_id)


def train_seq2seq(model: EncoderDecoder, src: torch.Tensor, tgt: torch.Tensor, *, steps: int, batch_size: int = 128,
                  lr: float = 1e-3, warmup: int = 100, weight_decay: float = 0.01, seed: int = 0,
                  device: str | torch.device = "auto", clip_grad_norm: float | None = 1.0, callback=None,
                  progress: bool | None = None) -> list[float]:
    """Train ``model`` by teacher forcing: minimise the cross-entropy of every next target token.

    AdamW (β = (0.9, 0.98), weight decay on matrices only) with a linear warm-up over
    ``warmup`` steps and a cosine decay to lr/20, through :func:`udl.train.fit` (batches
    drawn epoch by epoch without replacement, seeded by ``seed``; bf16 autocast on a GPU).

    Args:
        model: the :class:`~udl.models.seq2seq.EncoderDecoder` (moved to ``device``).
        src: ``(N, S)`` source ids.
        tgt: ``(N, T)`` targets ``<bos> y_1 ... <eos> <pad> ...`` with T <= tgt_context + 1.
        steps: optimizer steps.
        batch_size: pairs per step. Default: 128.
        lr: peak learning rate. Default: 1e-3.
        warmup: steps of linear warm-up. Default: 100.
        weight_decay: AdamW's decoupled decay on the weight matrices. Default: 0.01.
        seed: the order of the pairs. Default: 0.
        device, clip_grad_norm, callback, progress: as :func:`train_gpt`.

    Returns:
        The training loss of every step.
    """
    owner = "train_seq2seq"
    check_instance(model, "model", owner, EncoderDecoder)
    c = model.config
    src = model._check_tokens(src, "src", c.src_vocab_size, c.src_context, owner)
    tgt = model._check_tokens(tgt, "tgt", c.tgt_vocab_size, c.tgt_context + 1, owner)
    if tgt.shape[1] < 2 or len(tgt) != len(src):
        raise ValueError(f"The 'tgt' parameter of {owner} must have {len(src)} rows of at least 2 tokens. "
                         f"Got shape {tuple(tgt.shape)} instead.")
    steps, lr, warmup, weight_decay = _checked(owner, steps, lr, warmup, weight_decay)
    return fit(_TeacherForcingLoss(model), (src, tgt), None,
               lambda params: adamw(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98)),
               steps=steps, batch_size=batch_size, seed=seed, device=device, clip_grad_norm=clip_grad_norm,
               scheduler=lambda opt: LambdaLR(opt, warmup_cosine(steps, warmup, floor=0.05)),
               callback=None if callback is None else (lambda s, loss, _: callback(s, loss, model)),
               progress=progress)


class Translator(NamedTuple):
    """A translator trained by :func:`train_translator`, with its data."""

    model: EncoderDecoder  # in eval mode, on the device it was asked for; the caller's own copy
    data: object  # udl.data.numbers.NumberSplits: the pairs it was trained on and is tested on
    losses: tuple  # the training loss of every step
    seconds: float  # wall-clock time of data generation and training (when it was trained)


def train_translator(config: Seq2SeqConfig | None = None, *, steps: int = 3000, batch_size: int = 128,
                     lr: float = 1e-3, warmup: int = 100, n_train: int = 50_000, n_validation: int = 500,
                     n_test: int = 1000, max_digits: int = 9, commas: bool = True, seed: int = 0,
                     device: str | torch.device = "auto") -> Translator:
    """An :class:`~udl.models.seq2seq.EncoderDecoder` trained to write numbers in words (:mod:`udl.data.numbers`).

    The data (:func:`udl.data.numbers.make_number_splits` with ``seed``), the initial
    weights (``seed``) and the batch order (``seed``) are all fixed by ``seed``, so the
    result is a function of the arguments. It is trained once per machine
    (:func:`udl.cache.trained`), which is how figs. 12.13 and 12.14 share one model;
    each call returns a fresh copy.

    Args:
        config: the model. Default: None (``Seq2SeqConfig.numbers(max_digits)``).
        steps, batch_size, lr, warmup: as :func:`train_seq2seq`. Defaults: 3000, 128, 1e-3, 100.
        n_train, n_validation, n_test: as :func:`udl.data.numbers.make_number_splits`.
        max_digits: the longest numbers (1-9 digits). Default: 9.
        commas: source numbers written with group commas. Default: True.
        seed: data, initial weights and batch order. Default: 0.
        device: where to train and where the model is returned. Default: "auto".

    A progress bar shows on a terminal only.

    Returns:
        A :class:`Translator` whose model is in eval mode, on ``device``.
    """
    owner = "train_translator"
    if config is None:
        config = Seq2SeqConfig.numbers(max_digits, commas=commas)
    check_instance(config, "config", owner, Seq2SeqConfig)
    needed = dict(src_vocab_size=len(numbers.SOURCE_VOCAB), tgt_vocab_size=len(numbers.TARGET_VOCAB),
                  pad_id=numbers.PAD, bos_id=numbers.BOS, eos_id=numbers.EOS)
    for name, value in needed.items():
        if getattr(config, name) != value:
            raise ValueError(f"The 'config' parameter of {owner} must have {name} = {value} for the numbers task. "
                             f"Got {getattr(config, name)} instead.")
    if config.src_context < numbers.source_length(max_digits, commas=commas) or \
            config.tgt_context < numbers.target_length(max_digits) - 1:
        raise ValueError(f"The 'config' parameter of {owner} must have contexts of at least "
                         f"{numbers.source_length(max_digits, commas=commas)} (source) and "
                         f"{numbers.target_length(max_digits) - 1} (target). "
                         f"Got {config.src_context} and {config.tgt_context} instead.")
    steps, lr, warmup, _ = _checked(owner, steps, lr, warmup)
    for name, value in (("batch_size", batch_size), ("n_train", n_train), ("n_validation", n_validation),
                        ("n_test", n_test)):
        check_int(value, name, owner)
    check_int(seed, "seed", owner, minimum=0)
    device = resolve_device(device, owner)
    start = time.perf_counter()
    data = numbers.make_number_splits(n_train, n_validation, n_test, max_digits=max_digits, commas=commas, seed=seed)

    def train(model: EncoderDecoder) -> dict:
        losses = train_seq2seq(model, data.train.src, data.train.tgt, steps=steps, batch_size=min(batch_size, n_train),
                               lr=lr, warmup=min(warmup, steps - 1), seed=seed, device=device)
        return {"losses": losses, "seconds": time.perf_counter() - start}

    settings = dict(config=config.to_dict(), steps=steps, batch_size=batch_size, lr=lr, warmup=warmup,
                    n_train=n_train, n_validation=n_validation, n_test=n_test, max_digits=max_digits, commas=commas,
                    seed=seed)
    model, record = trained("numbers-translator", settings,
                            lambda: EncoderDecoder(config, generator=torch.Generator().manual_seed(seed)), train,
                            sources=_sources(seq2seq, numbers), device=device)
    return Translator(model, data, tuple(record["losses"]), record["seconds"])
