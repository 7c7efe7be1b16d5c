"""Chapter 12: a BERT-style encoder — masked-token pre-training, fine-tuning, BERT-large's size (§12.6)."""

from __future__ import annotations

import copy
import itertools
import math
import textwrap
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import torch

from udl import drawing, style
from udl.analysis.ngram import UnigramModel
from udl.data.text import token_ids
from udl.data.text_tasks import word_order
from udl.models.bert import (BERT, BertClassifier, BertConfig, encode_texts, masked_token_cross_entropy,
                             measure_masking_rule, meta_model, mlm_windows, parameter_groups, predict)
from udl.data.text import python_docs_tokenizer
from udl.registry import Check, Limit, Result, figure
from udl.train.transformers import finetune_classifier, pretrained_bert

MASK_RULE = {"mask": 0.8, "random": 0.1, "kept": 0.1}
PROB = 0.15  # the fraction of tokens predicted

# The pre-training shared by 12.10 and 12.11: the same values in both figures, so that one
# pre-training serves both (in memory within a process, from the disk cache across processes).
PRETRAIN = {"tiny": dict(vocab_size=2000, context=32, n_layers=1, d_model=32, n_heads=2, init_std=0.2,
                         pretrain_steps=60, pretrain_batch=16, pretrain_lr=3e-3, pretrain_warmup=5),
            "full": dict(vocab_size=1000, context=32, n_layers=2, d_model=96, n_heads=3, init_std=0.05,
                         pretrain_steps=3000, pretrain_batch=64, pretrain_lr=3e-3, pretrain_warmup=150)}


# What the pre-training can run: a vocabulary above the tokenizer's base (367 symbols) and below the ~7,900
# tokens the manual has pairs for, windows of 16 tokens or more (12.10 shows a stretch of 14), a working
# learning rate and initial scale.
PRETRAIN_LIMITS = {"vocab_size": (400, 8000), "context": (16, 512), "n_layers": (1, 12), "d_model": (8, 768),
                   "n_heads": (1, 16), "init_std": (1e-4, 1.0), "pretrain_steps": (1, 20_000),
                   "pretrain_batch": (1, 512), "pretrain_lr": (1e-6, 1.0), "pretrain_warmup": (0, 20_000)}


def _config(p) -> BertConfig:
    """The encoder's shape; BertConfig checks it (heads that divide D...)."""
    return BertConfig.small(vocab_size=p.vocab_size, context=p.context, n_layers=p.n_layers, d_model=p.d_model,
                            n_heads=p.n_heads, dropout=0.0, init_std=p.init_std)


def _check_pretraining(fig_id: str, p) -> None:
    """The pre-training's parameters together: BertConfig's checks, and a warm-up shorter than the training."""
    _config(p)
    if p.pretrain_warmup >= p.pretrain_steps:
        raise ValueError(f"The 'pretrain_warmup' parameter of figure {fig_id} must be less than pretrain_steps "
                         f"({p.pretrain_steps}). Got {p.pretrain_warmup} instead.")


def _pretrained(p, run):
    """The encoder configuration of the parameters and the model pre-trained with them."""
    config = _config(p)
    start = time.perf_counter()
    model, losses, tokenizer = pretrained_bert(config, steps=p.pretrain_steps, batch_size=p.pretrain_batch,
                                               lr=p.pretrain_lr, warmup=p.pretrain_warmup, seed=run.seed,
                                               device=run.device)
    return config, model, losses, tokenizer, time.perf_counter() - start


def _shown(token: str) -> str:
    """A token as the figures print it: the end-of-word marker as "_", whitespace made visible."""
    if token.strip() == "":
        return repr(token)[1:-1].replace(" ", "\u2423")  # "\n", "\u2423\u2423" for two spaces
    return token.replace("\u2581", "_")


# =========================================================================== 12.10
@figure("12.10", title="Pre-training a BERT-style encoder by predicting masked tokens",
        caption="Masked-token pre-training on the Python reference manual (the help text that ships with "
                "CPython), cut into byte-pair tokens. a) A stretch of held-out text, preceded by <cls>, with two "
                "tokens replaced by <mask>. Its token and position embeddings pass through post-LN transformer "
                "layers in which every token attends to every other, and the output embedding at each masked "
                "position goes "
                "through a softmax over the vocabulary: the bars are the trained model's five most probable tokens "
                "there (the true token in black). Only the masked positions add terms to the loss, so most of the "
                "computation on a sequence teaches nothing directly. b) The training loss (cross-entropy at the "
                "predicted positions) and, on held-out text with every predicted token hidden, the final "
                "cross-entropy against a unigram model's on the same tokens. c) BERT's rule, measured on the "
                "training batches: 15% of the ordinary tokens are predicted; of those, 80% are shown as <mask>, "
                "10% as a random token and 10% unchanged. Special tokens are never chosen.",
        params={"tiny": dict(**PRETRAIN["tiny"], eval_prob=0.15, min_reduction=0.05, baseline="uniform",
                             count_batches=20),
                "full": dict(**PRETRAIN["full"], eval_prob=0.15, min_reduction=0.3, baseline="unigram",
                             count_batches=200)},
        limits={**PRETRAIN_LIMITS, "eval_prob": (0.01, 1.0), "min_reduction": (0.0, 0.99),
                "baseline": Limit(choices=("uniform", "unigram")), "count_batches": (1, 10_000)})
def masked_pretraining(p, run):
    config, model, losses, tok, seconds = _pretrained(p, run)
    special = tok.special_ids
    train, held_out = token_ids("train", tok), token_ids("validation", tok)

    # held-out cross-entropy, every predicted token hidden, against the unigram model on the same tokens
    ce, targets, nll, correct = masked_token_cross_entropy(model, held_out, special_ids=special, prob=p.eval_prob,
                                                           seed=run.seed)
    unigram = UnigramModel(config.vocab_size).fit(train.numpy())
    unigram_nll = -np.log(unigram.probabilities[targets.numpy()])

    # BERT's masking rule, counted on the first batches that training drew (same seed, same stream)
    stream = mlm_windows(train, p.context, special_ids=special, batch_size=p.pretrain_batch,
                         vocab_size=config.vocab_size, prob=PROB, generator=torch.Generator().manual_seed(run.seed))
    rule = measure_masking_rule(itertools.islice(stream, p.count_batches), special_ids=special)

    # a stretch of held-out text with two whole-word tokens masked, and the model's predictions there
    rng = np.random.default_rng(run.seed)
    pieces = [tok.id_to_token(int(t)) for t in held_out]
    span = min(p.context - 1, 14)
    starts = [i for i in range(1, len(pieces) - span) if pieces[i - 1].endswith("\u2581")
              and all(piece.strip() for piece in pieces[i:i + span])]  # whole words, no line breaks
    start = starts[int(rng.integers(len(starts)))] if starts else 1  # (none: a small vocabulary's short words)
    ids = [special["<cls>"], *held_out[start:start + span].tolist()]
    words = [i for i in range(1, len(ids)) if pieces[start + i - 1].endswith("\u2581")
             and sum(c.isalpha() for c in pieces[start + i - 1]) >= 2]
    pairs = [(i, j) for i in words for j in words if j - i >= 4] or \
        [(i, j) for i in range(1, len(ids)) for j in range(i + 4, len(ids))]  # far enough apart to draw both
    masked_at = list(pairs[int(rng.integers(len(pairs)))])
    inputs = torch.tensor([[special["<mask>"] if i in masked_at else t for i, t in enumerate(ids)]])
    with torch.no_grad():
        probs = torch.softmax(model(inputs)[0, masked_at].double(), -1)  # (2, |V|)
    top_p, top_i = probs.topk(5, dim=-1)

    metrics = {
        "vocab_size": config.vocab_size, "n_layers": config.n_layers, "d_model": config.d_model,
        "n_heads": config.n_heads, "context": config.context,
        "n_parameters": sum(q.numel() for q in model.parameters()),
        "train_tokens": len(train), "held_out_tokens": len(held_out), "pretrain_steps": len(losses),
        "held_out_predicted": len(targets), "held_out_cross_entropy": ce,
        "unigram_cross_entropy": float(unigram_nll.mean()), "uniform_cross_entropy": math.log(config.vocab_size),
        "reduction_vs_unigram": 1 - ce / float(unigram_nll.mean()),
        "reduction_vs_uniform": 1 - ce / math.log(config.vocab_size),
        "held_out_top1_accuracy": float(correct.float().mean()),
        "first_loss": float(np.mean(losses[: max(1, len(losses) // 50)])),
        "final_loss": float(np.mean(losses[-max(1, len(losses) // 50):])),
        "counted_tokens": rule["ordinary"], "chosen": rule["chosen"], "chosen_share": rule["chosen_share"],
        "special_chosen": rule["special_chosen"], "random_special": rule["random_special"],
        **{f"{k}_share": rule[f"{k}_share"] for k in MASK_RULE},
        "example": tok.decode(ids[1:]), "example_tokens": [_shown(tok.id_to_token(i)) for i in ids],
        "masked_positions": masked_at,
        "true_tokens": [_shown(tok.id_to_token(ids[i])) for i in masked_at],
        "top_tokens": [[_shown(tok.id_to_token(int(i))) for i in row] for row in top_i],
        "top_probs": top_p.tolist(),
    }
    return Result(metrics=metrics, arrays={"losses": np.asarray(losses, dtype=np.float32)},
                  notes=f"BERT-large is pre-trained on billions of words for days; here an encoder of "
                        f"{config.n_layers} layers, D = {config.d_model}, {config.n_heads} heads, context "
                        f"{config.context} and a {config.vocab_size:,}-token BPE vocabulary learns from the "
                        f"{len(train):,} training tokens of the Python reference manual in "
                        f"{len(losses):,} AdamW steps of {p.pretrain_batch} windows. Weights start at "
                        f"N(0, {p.init_std:g}²): BERT's 0.02 is about 0.6/√D for D = 1,024, and a small model "
                        "initialised with 0.02 stays on the unigram plateau (the loss of predicting every token "
                        "from its frequency alone) much longer. Held-out text: the manual's validation topics. "
                        f"Pre-training took {seconds:.0f} s here (0 when reused from memory or the disk cache).")


@masked_pretraining.requires
def _(p):
    _check_pretraining("12.10", p)


@masked_pretraining.plot
def _(r):
    m, a = r.metrics, r.arrays
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(10, 6.6), layout="constrained")
        grid = fig.add_gridspec(2, 2, height_ratios=[1.45, 1], width_ratios=[1.4, 1])
        ax = fig.add_subplot(grid[0, :])
        _draw_pretraining(ax, m)
        ax_loss = fig.add_subplot(grid[1, 0])
        ax_rule = fig.add_subplot(grid[1, 1])

    losses = a["losses"]
    steps = np.arange(1, len(losses) + 1)
    window = max(1, len(losses) // 40)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    ax_loss.plot(steps, losses, color=style.MODEL, alpha=0.25, lw=0.6)
    ax_loss.plot(steps[window - 1:], smooth, color=style.MODEL, lw=1.6, label="training loss (masked positions)")
    ax_loss.axhline(m["uniform_cross_entropy"], color=style.REGION, ls=":", lw=1.2, label="uniform guess, log |V|")
    ax_loss.axhline(m["unigram_cross_entropy"], color=style.TRUTH, ls="--", lw=1.2, label="unigram model, held out")
    ax_loss.plot([len(losses)], [m["held_out_cross_entropy"]], "o", color=style.DATA, ms=7,
                 label=f"encoder, held out: {m['held_out_cross_entropy']:.2f} nats, "
                       f"{100 * abs(m['reduction_vs_unigram']):.0f}% "
                       f"{'below' if m['reduction_vs_unigram'] > 0 else 'above'} unigram")
    ax_loss.set(xlabel="training step", ylabel="cross-entropy (nats per predicted token)",
                title="Masked-token cross-entropy")
    ax_loss.legend(fontsize=7, loc="upper right")

    names = ["chosen\n(of all tokens)", "<mask>\n(of chosen)", "random\n(of chosen)", "kept\n(of chosen)"]
    measured = [m["chosen_share"], m["mask_share"], m["random_share"], m["kept_share"]]
    expected = [PROB, *MASK_RULE.values()]
    x = np.arange(4)
    ax_rule.bar(x, 100 * np.asarray(measured), color=[style.DATA, style.MODEL, style.MODEL, style.MODEL], width=0.6)
    ax_rule.plot(x, 100 * np.asarray(expected), "_", color=style.TRUTH, ms=26, mew=2, label="BERT's rule")
    for xi, v in zip(x, measured):
        ax_rule.text(xi, 100 * v + 2, f"{100 * v:.1f}%", ha="center", fontsize=7)
    ax_rule.set(xticks=x, ylim=(0, 100), ylabel="share (%)",
                title=f"BERT's rule on {m['counted_tokens']:,} tokens")
    ax_rule.set_xticklabels(names, fontsize=7)
    ax_rule.legend(fontsize=7, loc="upper right")
    style.panel_labels(np.array([ax, ax_loss, ax_rule]))
    return fig


def _draw_pretraining(ax, m):
    """Fig. 12.10 redrawn from the run: tokens, encoder, softmax at the masked positions."""
    tokens = m["example_tokens"]
    masked = set(m["masked_positions"])
    n = len(tokens)
    ax.set(xlim=(-0.6, n - 0.4), ylim=(-0.2, 10.2))
    ax.axis("off")
    for i, t in enumerate(tokens):
        is_mask = i in masked
        drawing.box(ax, i, 0.45, 0.9, 0.7, t, face=style.REGION if i else "#E0E0E0", fontsize=6.5)
        drawing.box(ax, i, 1.55, 0.9, 0.7, "<mask>" if is_mask else ("<cls>" if i == 0 else t),
                    face=style.DATA if is_mask else "#F5F5F5", fontsize=6.5, weight="bold" if is_mask else "normal")
        ax.annotate("", (i, 2.35), (i, 1.95), arrowprops=dict(arrowstyle="->", lw=0.6, color="gray"))
    ax.text(-0.55, 0.45, "text", ha="right", va="center", fontsize=7)
    ax.text(-0.55, 1.55, "input", ha="right", va="center", fontsize=7)
    drawing.box(ax, (n - 1) / 2, 2.75, n - 0.1, 0.7,
                "token + position embeddings, LayerNorm   (X, one row per token)", face="#FDE6CC", fontsize=7.5)
    drawing.box(ax, (n - 1) / 2, 3.95, n - 0.1, 1.1,
                f"{m['n_layers']} post-LN transformer layer{'s' if m['n_layers'] > 1 else ''}, {m['n_heads']} heads, "
                f"D = {m['d_model']}: "
                "every token attends to every token (no mask)", face="#CDEFF4", fontsize=7.5)
    for i in range(n):
        ax.annotate("", (i, 5.15), (i, 4.5), arrowprops=dict(arrowstyle="->", lw=0.6, color="gray"))
        drawing.box(ax, i, 5.45, 0.55, 0.45, face=style.MODEL if i in masked else "#E8F7FA")
    ax.text(-0.55, 5.45, "outputs", ha="right", va="center", fontsize=7)
    for j, pos in enumerate(m["masked_positions"]):
        probs, toks = m["top_probs"][j], m["top_tokens"][j]
        ax.annotate("", (pos, 6.05), (pos, 5.7), arrowprops=dict(arrowstyle="->", lw=0.8, color="black"))
        ax.text(pos, 6.2, "softmax", ha="center", va="bottom", fontsize=6.5, style="italic")
        left = pos - 1.2 if pos > n / 2 else pos - 0.1
        for k, (prob, tk) in enumerate(zip(probs, toks)):
            y = 9.7 - 0.62 * k
            hit = tk == m["true_tokens"][j]
            ax.add_patch(plt.Rectangle((left + 1.0, y - 0.22), 1.6 * prob, 0.44,
                                       color=style.TRUTH if hit else style.MODEL))
            ax.text(left + 0.95, y, tk, ha="right", va="center", fontsize=6.5, weight="bold" if hit else "normal")
            ax.text(left + 1.05 + 1.6 * prob, y, f"{prob:.2f}", ha="left", va="center", fontsize=6)
        ax.text(left + 0.95, 10.2, f"true: {m['true_tokens'][j]}", ha="right", va="center", fontsize=6.5)
    ax.set_title(f"Predicting masked tokens of held-out text ({m['n_parameters']:,} parameters, "
                 f"{m['pretrain_steps']:,} steps; the most probable token is the hidden one for "
                 f"{100 * m['held_out_top1_accuracy']:.0f}% of held-out masks)", fontsize=9)


@masked_pretraining.checks
def _(r):
    m = r.metrics
    baseline = m["unigram_cross_entropy"] if r.params.get("baseline", "unigram") == "unigram" \
        else m["uniform_cross_entropy"]
    name = r.params.get("baseline", "unigram")
    reduction = r.params.get("min_reduction", 0.3)
    n, k = m["counted_tokens"], m["chosen"]

    def share(claim, measured, p, count):  # within four binomial standard deviations of p
        tol = 4 * math.sqrt(p * (1 - p) / max(1, count))
        if tol > p / 2:  # so wide that the share could hardly fail (no token counted: always)
            return Check.untested(claim, f"needs more counted tokens: four standard deviations ({tol:.2g}) must stay "
                                         f"under half the share ({p:g}); {count:,} counted")
        return Check.close(claim, measured, p, tol)

    learned = [Check.less(f"held-out masked-token cross-entropy is at least {100 * reduction:.0f}% below the {name} "
                          f"baseline's ({baseline:.3f} nats) on the same {m['held_out_predicted']:,} hidden tokens",
                          m["held_out_cross_entropy"], (1 - reduction) * baseline),
               Check.less("training lowered the masked-token loss (mean of the last 2% of steps vs the first 2%)",
                          m["final_loss"], m["first_loss"])]
    p, least = r.params, PRETRAIN["tiny"]
    tokens = p["pretrain_steps"] * p["pretrain_batch"] * p["context"]
    least_tokens = least["pretrain_steps"] * least["pretrain_batch"] * least["context"]
    if p["pretrain_steps"] < least["pretrain_steps"] or tokens < least_tokens:  # the least training measured
        learned = [Check.untested(c.claim, f"needs at least the tiny preset's pre-training ({least['pretrain_steps']} "
                                           f"steps, {least_tokens:,} tokens); here {p['pretrain_steps']} steps, "
                                           f"{tokens:,} tokens") for c in learned]
    return [
        *learned,
        share(f"15% of the ordinary tokens are chosen for prediction ({n:,} counted)", m["chosen_share"], PROB, n),
        share("80% of the chosen tokens are shown as <mask>", m["mask_share"], 0.8, k),
        share("10% of the chosen tokens are replaced by a random token", m["random_share"], 0.1, k),
        share("10% of the chosen tokens are left unchanged", m["kept_share"], 0.1, k),
        Check.equal("special tokens (<cls> here) are never chosen, nor drawn as random replacements",
                    m["special_chosen"] + m["random_special"], 0),
    ]


# =========================================================================== 12.11
METHODS = ("scratch", "pretrained")
LABELS = {"scratch": "same network from scratch", "pretrained": "pre-trained, fine-tuned"}


def _colors():
    return {"scratch": style.EXTRA[0], "pretrained": style.MODEL}


@figure("12.11", title="Fine-tuning the pre-trained encoder with few labels",
        caption="After masked-token pre-training (fig. 12.10) the encoder is fine-tuned on a task with few labels, "
                "with a small network on the output of the <cls> token. The task is made from the manual's "
                "sentences so that its labels are exact: is a sentence as written, or were the words between its "
                "first and last shuffled? Both versions of every sentence hold the same words, so only the order "
                "of the words tells them apart. a) A held-out sentence, shuffled, through the classifier: the "
                "<cls> output feeds tanh(Ω h + β) and a linear layer, and a softmax gives the probability of each "
                "class (bars: for the sentence as shuffled and as written, from the fine-tuned network and from "
                "the one trained from scratch). b) Accuracy on the manual's held-out test topics (mean over runs "
                "± one standard error over test examples; dashes: each run; circles: training accuracy) of the "
                "same architecture trained with the same labels, steps and optimizer, starting from the "
                "pre-trained weights or from random ones. The network trained from scratch stays at chance: a "
                "few hundred sentences cannot teach it how English is put together, while pre-training on "
                "unlabelled text did. c) The training loss while fine-tuning (mean over runs).",
        params={"tiny": dict(**PRETRAIN["tiny"], n_sentences=[40], n_runs=2, ft_steps=40, ft_batch=16, ft_lr=1e-3,
                             ft_warmup=4, ft_dropout=0.1, check_gain=False),
                "full": dict(**PRETRAIN["full"], n_sentences=[300], n_runs=3, ft_steps=300, ft_batch=32,
                             ft_lr=1e-3, ft_warmup=30, ft_dropout=0.1, check_gain=True)},
        # few labels: up to 300 sentences (the full preset's), where training from scratch still stays at chance
        limits={**PRETRAIN_LIMITS, "n_sentences": Limit(1, 300, max_len=4), "n_runs": (1, 10), "ft_steps": (1, 5000),
                "ft_batch": (1, 512), "ft_lr": (1e-6, 1.0), "ft_warmup": (0, 5000), "ft_dropout": (0.0, 0.9)})
def finetuning(p, run):
    config, pretrained, _, tok, seconds = _pretrained(p, run)
    config = replace(config, dropout=p.ft_dropout)
    test = word_order("test", tokenizer=tok, max_tokens=p.context - 1)
    x_test, _ = encode_texts(test.texts, tok, context=p.context)
    y_test = test.labels
    pairs = {}  # test sentence -> its two rows (as written, shuffled)
    for i, (orig, label) in enumerate(zip(test.originals, test.labels.tolist())):
        pairs.setdefault(orig, [None, None])[label] = i

    n_k, n_test = len(p.n_sentences), len(y_test)
    largest = int(np.argmax(p.n_sentences))  # panel c and the example: the run with the most labels
    correct = {m: np.zeros((n_k, p.n_runs, n_test)) for m in METHODS}
    train_acc = {m: np.zeros((n_k, p.n_runs)) for m in METHODS}
    losses = {m: np.zeros((p.n_runs, p.ft_steps)) for m in METHODS}
    example = sorted(pairs)[int(run.rng.integers(len(pairs)))]
    example_probs = {}
    jobs = [(i, j) for i in range(n_k) for j in range(p.n_runs)]
    for i, j in run.progress(jobs, desc="fine-tuning runs"):
        task = word_order("train", n_sentences=p.n_sentences[i], seed=1000 * run.seed + 10 * i + j,
                          tokenizer=tok, max_tokens=p.context - 1)
        x, _ = encode_texts(task.texts, tok, context=p.context)
        for method in METHODS:
            seed = 1000 * run.seed + 10 * i + j  # the same head, data order and dropout for both methods
            encoder = BERT(config, generator=torch.Generator().manual_seed(seed + 500))
            if method == "pretrained":
                encoder.load_state_dict(copy.deepcopy(pretrained.encoder.state_dict()))
            clf = BertClassifier(encoder, 2, generator=torch.Generator().manual_seed(seed))
            loss = finetune_classifier(clf, x, task.labels, steps=p.ft_steps, batch_size=min(p.ft_batch, len(x)),
                                       lr=p.ft_lr, warmup=p.ft_warmup, seed=seed, device=run.device)
            clf.cpu()
            correct[method][i, j] = (predict(clf, x_test).argmax(1) == y_test).numpy()
            train_acc[method][i, j] = float((predict(clf, x).argmax(1) == task.labels).float().mean())
            if i == largest:
                losses[method][j] = loss
                if j == 0:
                    rows = pairs[example]
                    example_probs[method] = predict(clf, x_test[rows]).numpy()  # (2 versions, 2 classes)

    metrics = {"n_sentences": list(p.n_sentences), "n_runs": p.n_runs, "n_test_examples": n_test,
               "test_class_counts": torch.bincount(y_test, minlength=2).tolist(),
               "test_pairs_complete": all(None not in v for v in pairs.values()),
               "n_test_sentences": len(pairs), "chance": 0.5,
               "n_parameters": sum(q.numel() for q in BertClassifier(BERT(config), 2).parameters())}
    for m in METHODS:
        per_example = correct[m].mean(1)  # (K, n_test): averaged over runs
        metrics[f"{m}_accuracy"] = per_example.mean(1).tolist()
        metrics[f"{m}_se"] = (per_example.std(1, ddof=1) / math.sqrt(n_test)).tolist()
        metrics[f"{m}_run_accuracy"] = correct[m].mean(2).tolist()
        metrics[f"{m}_train_accuracy"] = train_acc[m].mean(1).tolist()
    gain = correct["pretrained"].mean(1) - correct["scratch"].mean(1)  # (K, n_test), paired by test example
    metrics["gain"] = gain.mean(1).tolist()
    metrics["gain_se"] = (gain.std(1, ddof=1) / math.sqrt(n_test)).tolist()
    metrics["gain_t"] = [g / s if s > 0 else float("inf") * np.sign(g) for g, s in
                         zip(metrics["gain"], metrics["gain_se"])]
    rows = pairs[example]
    metrics["example_texts"] = [test.texts[rows[0]], test.texts[rows[1]]]
    metrics["example_tokens"] = ["<cls>", *(_shown(tok.id_to_token(t)) for t in tok.encode(test.texts[rows[1]]))]
    metrics["example_probs"] = {m: example_probs[m].tolist() for m in METHODS}
    return Result(metrics=metrics, arrays={**{f"loss_{m}": losses[m] for m in METHODS},
                                           **{f"correct_{m}": correct[m] for m in METHODS}},
                  notes="The book's example task is the sentiment of reviews, which needs labels the manual does "
                        "not have; word order has exact labels by construction (udl.data.text_tasks.word_order). "
                        f"Fine-tuning: AdamW, step {p.ft_lr:g} with {p.ft_warmup} warm-up steps and a linear "
                        f"decay, {p.ft_steps} steps of {p.ft_batch} examples, dropout {p.ft_dropout:g}, every "
                        "parameter trained; only the starting weights differ between the two networks. "
                        "Test: the sentences of the manual's test topics that fit the context, each as written "
                        f"and shuffled. Pre-training took {seconds:.0f} s here (0 when reused from memory or the "
                        "disk cache that figure 12.10 fills).")


def _fitting_sentences(split: str, tokenizer, context: int) -> int:
    """How many sentences of ``split`` the word-order task can use with windows of ``context`` tokens."""
    try:
        return len(word_order(split, tokenizer=tokenizer, max_tokens=context - 1).texts) // 2
    except ValueError:  # word_order refuses a split where no sentence fits
        return 0


@finetuning.requires
def _(p):
    _check_pretraining("12.11", p)
    if p.ft_warmup >= p.ft_steps:
        raise ValueError(f"The 'ft_warmup' parameter of figure 12.11 must be less than ft_steps ({p.ft_steps}). "
                         f"Got {p.ft_warmup} instead.")
    # how many sentences fit depends on the tokenizer (trained once per machine, about a second, then read)
    tokenizer = python_docs_tokenizer(p.vocab_size)
    if _fitting_sentences("test", tokenizer, p.context) == 0:
        raise ValueError(f"The 'context' parameter of figure 12.11 must be long enough for a test sentence of the "
                         f"manual with vocab_size {p.vocab_size}. Got {p.context} instead.")
    available = _fitting_sentences("train", tokenizer, p.context)
    if max(p.n_sentences) > available:
        raise ValueError(f"The 'n_sentences' parameter of figure 12.11 must be at most the {available} training "
                         f"sentences that fit a context of {p.context} tokens (vocab_size {p.vocab_size}). "
                         f"Got {','.join(map(str, p.n_sentences))} instead.")


@finetuning.plot
def _(r):
    m, a = r.metrics, r.arrays
    colors = _colors()
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(10, 6.4), layout="constrained")
        grid = fig.add_gridspec(2, 2, height_ratios=[1.35, 1], width_ratios=[1.3, 1])
        ax = fig.add_subplot(grid[0, :])
        ax_acc = fig.add_subplot(grid[1, 0])
        ax_loss = fig.add_subplot(grid[1, 1])
    _draw_classifier(ax, m, colors)

    k = np.asarray(m["n_sentences"])
    x = np.arange(len(k))
    for s, method in zip((-0.18, 0.18), METHODS):
        acc, se = np.asarray(m[f"{method}_accuracy"]), np.asarray(m[f"{method}_se"])
        ax_acc.bar(x + s, 100 * acc, width=0.34, yerr=100 * se, capsize=3, color=colors[method],
                   label=f"{LABELS[method]}: test")
        runs = 100 * np.asarray(m[f"{method}_run_accuracy"])  # (K, runs)
        ax_acc.plot(np.repeat(x + s, runs.shape[1]), runs.ravel(), "_", color=style.TRUTH, ms=10, mew=1)
        ax_acc.plot(x + s, 100 * np.asarray(m[f"{method}_train_accuracy"]), "o", mfc="white",
                    mec=colors[method], ms=6, label=f"{LABELS[method]}: training")
        for xi, v in zip(x + s, acc):
            ax_acc.text(xi, 3, f"{100 * v:.1f}%", ha="center", fontsize=7, color="white", weight="bold")
    ax_acc.axhline(100 * m["chance"], color=style.REGION, ls=":", lw=1.2, label="chance")
    ax_acc.set(xticks=x, xticklabels=[f"{v}\n({2 * v} examples)" for v in k], ylim=(0, 130),
               yticks=range(0, 101, 20), xlim=(-0.75, len(k) - 0.25), xlabel="labelled training sentences",
               ylabel="accuracy (%)", title="Accuracy (bars: test; dashes: each run)")
    ax_acc.legend(fontsize=6.5, loc="upper center", ncols=2)

    for method in METHODS:
        loss = a[f"loss_{method}"]
        mean = loss.mean(0)
        window = max(1, len(mean) // 20)
        smooth = np.convolve(mean, np.ones(window) / window, mode="valid")
        ax_loss.plot(np.arange(1, len(mean) + 1), mean, color=colors[method], alpha=0.25, lw=0.7)
        ax_loss.plot(np.arange(window, len(mean) + 1), smooth, color=colors[method], lw=1.6, label=LABELS[method])
    ax_loss.axhline(math.log(2), color=style.REGION, ls=":", lw=1.2, label="log 2 (chance)")
    ax_loss.set(xlabel="fine-tuning step", ylabel="cross-entropy (nats)",
                title=f"Training loss, {k.max()} labelled sentences")
    ax_loss.legend(fontsize=7)
    style.panel_labels(np.array([ax, ax_acc, ax_loss]))
    return fig


def _draw_classifier(ax, m, colors):
    """Fig. 12.11a redrawn from the run: a shuffled test sentence, the encoder, the classifier on <cls>."""
    tokens = m["example_tokens"]
    n = len(tokens)
    width = max(n, 12)
    ax.set(xlim=(-0.6, width + 5.5), ylim=(-0.6, 7.2))
    ax.axis("off")
    for i, t in enumerate(tokens):
        drawing.box(ax, i, 0.45, 0.9, 0.7, t, face="#E0E0E0" if i == 0 else "#F5F5F5", fontsize=6.5)
        ax.annotate("", (i, 1.3), (i, 0.85), arrowprops=dict(arrowstyle="->", lw=0.6, color="gray"))
    drawing.box(ax, (n - 1) / 2, 1.7, n - 0.1, 0.7, "token + position embeddings, LayerNorm", face="#FDE6CC",
                fontsize=7.5)
    drawing.box(ax, (n - 1) / 2, 2.95, n - 0.1, 1.1, "pre-trained transformer layers, fine-tuned", face="#CDEFF4",
                fontsize=7.5)
    for i in range(n):
        ax.annotate("", (i, 4.05), (i, 3.5), arrowprops=dict(arrowstyle="->", lw=0.6, color="gray"))
        drawing.box(ax, i, 4.3, 0.55, 0.4, face=style.MODEL if i == 0 else "#E8F7FA")
    ax.annotate("", (0, 5.3), (0, 4.55), arrowprops=dict(arrowstyle="->", lw=1.0, color="black"))
    drawing.box(ax, 2.0, 5.75, 4.2, 0.95, "tanh(Ω h_<cls> + β)\n→ linear → softmax", face="#FFF3E0", fontsize=7.5,
                edge=style.DATA)
    ax.annotate("", (width + 0.3, 5.75), (4.15, 5.75), arrowprops=dict(arrowstyle="->", lw=1.0, color="black"))
    # probabilities of "shuffled" for both versions of the sentence, from both networks
    bar_left = width + 0.4
    ax.text(bar_left, 7.1, "Pr(shuffled)", fontsize=7.5, weight="bold", va="center")
    rows = [("shuffled (this input)", 1), ("as written", 0)]
    for r_i, (name, version) in enumerate(rows):
        for c_i, method in enumerate(METHODS):
            prob = m["example_probs"][method][version][1]
            y = 6.2 - 1.2 * r_i - 0.42 * c_i
            ax.add_patch(plt.Rectangle((bar_left, y - 0.17), 3.5 * prob, 0.34, color=colors[method]))
            ax.text(bar_left + 3.5 * prob + 0.08, y, f"{prob:.2f}", fontsize=6.5, va="center")
        ax.text(bar_left, 6.2 - 1.2 * r_i + 0.25, name, fontsize=6.5, va="bottom")
    ax.add_patch(plt.Rectangle((bar_left, 3.95), 0.3, 0.22, color=colors["pretrained"]))
    ax.text(bar_left + 0.4, 4.06, LABELS["pretrained"], fontsize=6.5, va="center")
    ax.add_patch(plt.Rectangle((bar_left, 3.6), 0.3, 0.22, color=colors["scratch"]))
    ax.text(bar_left + 0.4, 3.71, LABELS["scratch"], fontsize=6.5, va="center")
    ax.text(bar_left, 2.9, "as written:\n" + _wrap(m["example_texts"][0]), fontsize=6.5, va="top")
    ax.text(bar_left, 1.6, "shuffled:\n" + _wrap(m["example_texts"][1]), fontsize=6.5, va="top")
    ax.set_title("A held-out sentence, classified from the output of <cls>", fontsize=9)


def _wrap(text: str, width: int = 48) -> str:
    return "\n".join(textwrap.wrap(text, width))


@finetuning.checks
def _(r):
    m = r.metrics
    i = int(np.argmax(m["n_sentences"]))  # the claims are about the most labels, wherever they are in the list
    k = m["n_sentences"][i]
    if r.params.get("check_gain", True):
        checks = [
            Check.greater(f"with {k} labelled sentences, fine-tuning the pre-trained encoder beats training the "
                          f"same network from scratch: accuracy {m['pretrained_accuracy'][i]:.3f} vs "
                          f"{m['scratch_accuracy'][i]:.3f} on {m['n_test_examples']} test examples; paired gain / "
                          "its standard error over test examples", m["gain_t"][i], 3.0),
            Check.greater(f"the fine-tuned encoder's test accuracy exceeds chance (0.5) by more than two standard "
                          f"errors ({m['pretrained_se'][i]:.3f})",
                          m["pretrained_accuracy"][i] - 0.5 - 2 * m["pretrained_se"][i], 0.0),
        ]
    else:  # pre-training as short as tiny's teaches too little to transfer
        why = "check_gain is off: a pre-training this short teaches too little to transfer"
        checks = [Check.untested(f"with {k} labelled sentences, fine-tuning the pre-trained encoder beats training "
                                 "the same network from scratch", why),
                  Check.untested("the fine-tuned encoder's test accuracy exceeds chance (0.5) by more than two "
                                 "standard errors", why)]
    return checks + [
        Check.close(f"the network trained from scratch on {k} labelled sentences stays near chance",
                    m["scratch_accuracy"][i], 0.5, 0.1),
        Check.holds("every test sentence appears both as written and shuffled, so the classes are balanced",
                    m["test_pairs_complete"] and m["test_class_counts"][0] == m["test_class_counts"][1],
                    m["test_class_counts"], "two equal counts, all pairs complete"),
    ]


# =========================================================================== 12.bert-size
@figure("12.bert-size", title="BERT-large has about 340 million parameters",
        caption="The book's BERT (§12.6): a 30,000-token vocabulary, embeddings of size 1,024, 24 transformer "
                "layers with 16 heads of 64 dimensions and MLPs of 4,096 hidden units. The model is built on "
                "PyTorch's meta device, which records every shape and allocates nothing, and its parameters are "
                "counted. a) Where they sit: 60% in the MLPs, 30% in attention, 9% in the embeddings (the "
                "output layer reuses the token embeddings). b) The count grows by the same "
                "amount, about 12 D², with every layer.",
        params={"tiny": dict(vocab_size=30000, context=512, n_layers=24, d_model=1024, n_heads=16, d_mlp=4096,
                             book_total=340e6),
                "full": dict(vocab_size=30000, context=512, n_layers=24, d_model=1024, n_heads=16, d_mlp=4096,
                             book_total=340e6)},
        # nothing is allocated (meta device), but every layer is a Python module: a few hundred build in seconds
        limits={"vocab_size": (1, 1_000_000), "context": (1, 1_000_000), "n_layers": (1, 256), "d_model": (1, 65_536),
                "n_heads": (1, 1024), "d_mlp": (1, 262_144), "book_total": (1.0, 1e13)})
def bert_size(p, run):
    config = _bert_large(p)
    start = time.perf_counter()
    model = meta_model(config)
    params = list(model.parameters())
    total = sum(q.numel() for q in params)
    groups = parameter_groups(config)
    seconds = time.perf_counter() - start
    allocated = sum(q.untyped_storage().nbytes() for q in params if not q.is_meta)  # bytes of real storage
    formula = config.parameter_formula()
    per_layer = sum(q.numel() for q in model.encoder.layers[0].parameters())
    D, F_ = config.d_model, config.d_mlp
    before_layers = formula["embeddings"]
    cumulative = [before_layers + k * per_layer for k in range(config.n_layers + 1)]
    metrics = {"total": total, "book_total": p.book_total, "relative_error": total / p.book_total - 1,
               "groups": groups, "formula": formula, "formula_total": config.parameter_count(),
               "per_layer": per_layer, "per_layer_formula": 4 * D * D + 4 * D + 2 * D * F_ + F_ + D + 4 * D,
               "all_meta": all(q.is_meta for q in params), "float32_bytes": 4 * total, "allocated_bytes": allocated,
               "cumulative": cumulative,
               "n_layers": config.n_layers, "d_model": D}
    return Result(metrics=metrics,
                  notes="Counted: token, position (512) and two segment embeddings with their LayerNorm, 24 "
                        "layers (attention and MLP with biases, two LayerNorms each), the pooler that feeds "
                        "classifiers, and the masked-token head (a dense layer, LayerNorm and an output bias; "
                        "its matrix is the token embeddings). The released BERT-large has 30,522 word pieces "
                        "and a next-sentence head, and is usually quoted at 335-340 million. Built and counted "
                        f"in {seconds:.2f} s.")


def _bert_large(p) -> BertConfig:
    return BertConfig.bert_large(vocab_size=p.vocab_size, context=p.context, n_layers=p.n_layers, d_model=p.d_model,
                                 n_heads=p.n_heads, d_mlp=p.d_mlp)


bert_size.requires(_bert_large)  # BertConfig's checks (heads that divide D), before building


@bert_size.plot
def _(r):
    m = r.metrics
    fig, axes = style.subplots(1, 2, width=4.4, height=3.0)
    ax = axes[0]
    names = list(m["groups"])
    values = np.asarray([m["groups"][k] for k in names]) / 1e6
    y = np.arange(len(names))[::-1]
    ax.barh(y, values, color=[style.DATA, style.MODEL, style.MODEL, style.REGION, style.EXTRA[0], style.EXTRA[0]])
    for yi, v, k in zip(y, values, names):
        ax.text(v + 3, yi, f"{m['groups'][k]:,}", va="center", fontsize=7)
    ax.set(yticks=y, xlim=(0, values.max() * 1.45), xlabel="parameters (millions)",
           title=f"BERT-large: {m['total']:,} parameters")
    ax.set_yticklabels(names)
    ax = axes[1]
    layers = np.arange(m["n_layers"] + 1)
    ax.plot(layers, np.asarray(m["cumulative"]) / 1e6, "o-", color=style.MODEL, ms=3,
            label="embeddings + first k layers")
    ax.axhline(m["book_total"] / 1e6, color=style.TRUTH, ls="--", lw=1, label="the book: about 340 million")
    ax.axhline(m["total"] / 1e6, color=style.DATA, ls=":", lw=1.2, label="whole model (with heads)")
    ax.set(xlabel="transformer layers k", ylabel="parameters (millions)",
           title=f"{m['per_layer']:,} per layer (≈ 12 D²)")
    ax.legend(fontsize=7, loc="lower right")
    style.panel_labels(axes)
    return fig


@bert_size.checks
def _(r):
    m = r.metrics
    D, F_ = m["d_model"], r.params.get("d_mlp", 4 * m["d_model"])
    size = Check.close(f"BERT-large has about {m['book_total'] / 1e6:,.0f} million parameters (within 3%)", m["total"],
                       m["book_total"], 0.03, rel=True)
    book = BertConfig.bert_large()
    if any(r.params.get(key, getattr(book, key)) != getattr(book, key)
           for key in ("vocab_size", "context", "n_layers", "d_model", "n_heads", "d_mlp")):
        size = Check.untested(size.claim, f"the claim is about BERT-large's sizes (|V| = {book.vocab_size:,}, context "
                                          f"{book.context}, {book.n_layers} layers, D = {book.d_model:,}, "
                                          f"{book.n_heads} heads, MLP {book.d_mlp:,}); these parameters build "
                                          "another model")
    layer = f"12D² + 13D parameters (D = {D:,}, MLP 4D)" if F_ == 4 * D else \
        f"4D² + 2·D·F + F + 9D parameters (D = {D:,}, MLP F = {F_:,})"
    return [
        size,
        Check.equal("the closed form equals the module's count, part by part", m["groups"], m["formula"]),
        Check.equal("and in total", m["total"], m["formula_total"]),
        Check.equal(f"one layer holds {layer}", m["per_layer"], m["per_layer_formula"]),
        Check.holds("every parameter lives on the meta device", m["all_meta"], m["all_meta"]),
        Check.equal(f"no storage was allocated for the weights (bytes; in float32 they would take "
                    f"{m['float32_bytes'] / 1e9:.2f} GB)", m["allocated_bytes"], 0),
    ]
