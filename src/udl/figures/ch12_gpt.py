"""Chapter 12: the GPT-style decoder of §12.7 (figure 12.12, GPT-3's size, a sentence's probability)."""

from __future__ import annotations

import copy
import math
import textwrap
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from udl import style
from udl.analysis.ngram import BigramModel, UnigramModel
from udl.data.text import sentences, token_ids
from udl.models.decoding import beam_search, generate, next_token_distribution
from udl.models.gpt import (GPTConfig, attention_weights, causal_gradient, evaluate_cross_entropy, lm_loss, meta_model,
                            parameter_count, parameter_groups, sequence_log_prob, token_log_probs)
from udl.registry import Check, Result, figure
from udl.text.bpe import END_OF_WORD
from udl.train.transformers import pretrained_gpt

GPT3_BOOK_PARAMETERS = 175e9  # §12.7.4
SENTENCE = "The objects do not need to have the same type."  # a sentence of the validation split
PROMPT = "The value of"

def _config(p) -> GPTConfig:
    """The decoder's shape; GPTConfig checks it (heads that divide D...)."""
    return GPTConfig(vocab_size=p.vocab_size, context=p.context, n_layers=p.n_layers, d_model=p.d_model,
                     n_heads=p.n_heads, dropout=p.dropout)


def _decoder(p, run, eval_every: int = 0):
    """The decoder of these figures, trained once per set of parameters (see pretrained_gpt)."""
    config = _config(p)
    return pretrained_gpt(config, steps=p.steps, batch_size=p.batch_size, lr=p.lr, warmup=p.warmup,
                          eval_every=eval_every, seed=run.seed, device=run.device)


def _show(token: str) -> str:
    """A token as the figures print it: the end-of-word marker as "_", specials as they are."""
    return token.replace(END_OF_WORD, "_").replace("\n", "\\n")


def _decoder_params(**changes):
    base = dict(vocab_size=2000, context=64, n_layers=4, d_model=128, n_heads=4, dropout=0.1, steps=600,
                batch_size=32, lr=3e-3, warmup=100)
    return {**base, **changes}


TINY_DECODER = _decoder_params(context=32, n_layers=2, d_model=32, n_heads=2, dropout=0.0, steps=60, batch_size=16,
                               lr=1e-2, warmup=5)
# Below this many training tokens (steps x batch x context) a decoder is not expected to beat the
# unigram and bigram models or to know word order, and those claims are not checked (the tiny
# preset sees 30,720 tokens: enough to test the mechanism, not the quality).
CLAIM_BUDGET = 500_000
FULL_DECODER = _decoder_params()
# What the decoder figures can run: a vocabulary above the tokenizer's base (367 symbols) and below the
# ~7,900 tokens the manual has pairs for; D up to 256, where the initial loss is still within 0.1 of
# log |V| (GPT's N(0, 0.02²) weights give logits of variance ~0.0004·D, measured: +0.06 at 256, +0.15
# at 512); the learning rate and dropout of a working training.
DECODER_LIMITS = {"vocab_size": (400, 8000), "context": (16, 512), "n_layers": (1, 12), "d_model": (8, 256),
                  "n_heads": (1, 16), "dropout": (0.0, 0.9), "steps": (1, 20_000), "batch_size": (1, 512),
                  "lr": (1e-6, 1.0), "warmup": (0, 20_000), "eval_every": (0, 20_000)}


def _check_decoder(fig_id: str, p) -> None:
    """The decoder's parameters together: GPTConfig's own checks, and a warm-up shorter than the training."""
    _config(p)
    if p.warmup >= p.steps:
        raise ValueError(f"The 'warmup' parameter of figure {fig_id} must be less than steps ({p.steps}). "
                         f"Got {p.warmup} instead.")
    if not p.sentence.strip():
        raise ValueError(f"The 'sentence' parameter of figure {fig_id} must be at least one word. "
                         f"Got {p.sentence!r} instead.")


def _if_trained(check: Check, r) -> Check:
    """``check``, a claim about what training achieves; not tested for a run that trains less than the tiny preset,
    the least training the claim was measured at."""
    p, least = r.params, TINY_DECODER
    tokens = p["steps"] * p["batch_size"] * p["context"]
    least_tokens = least["steps"] * least["batch_size"] * least["context"]
    if p["steps"] >= least["steps"] and tokens >= least_tokens:
        return check
    return Check.untested(check.claim, f"needs at least the tiny preset's training ({least['steps']} steps, "
                                       f"{least_tokens:,} tokens); here {p['steps']} steps, {tokens:,} tokens")


def _untested_below_budget(claim: str, m) -> Check:
    return Check.untested(claim, f"needs at least {m['claim_budget']:,} training tokens (steps x batch_size x "
                                 f"context); here {m['trained_tokens']:,}")


# --------------------------------------------------------------------------- 12.12
@figure("12.12", title="A GPT-style decoder trained on the Python reference manual",
        caption="A decoder-only transformer (token and learned position embeddings, pre-LN layers with masked "
                "self-attention, a final LayerNorm and an output layer tied to the token embeddings) trained to "
                "predict the next BPE token of the Python reference manual that ships with CPython. a) One "
                "validation sentence starting with <bos>: every position attends only to itself and earlier "
                "positions (orange lines, width proportional to the attention weight averaged over the heads "
                "of the last layer), and above each position the decoder's three most likely next tokens are "
                "drawn as bars, the true next token in orange. b) The attention weights as a matrix: zero above "
                "the diagonal. c) Training and validation cross-entropy against the unigram and bigram models "
                "fitted by counting on the same training tokens. d) Continuations of one prompt by greedy "
                "decoding, top-k sampling, nucleus sampling and beam search. Because of the mask, the logits at "
                "position t have exactly zero gradient with respect to every later input.",
        params={"tiny": dict(**TINY_DECODER, eval_every=20, sentence=SENTENCE, prompt=PROMPT, new_tokens=16,
                             top_k=10, top_p=0.9, beam_width=4),
                "full": dict(**FULL_DECODER, eval_every=50, sentence=SENTENCE, prompt=PROMPT, new_tokens=24,
                             top_k=10, top_p=0.9, beam_width=4)},
        limits={**DECODER_LIMITS, "new_tokens": (1, 511), "top_k": (1, 8000), "top_p": (1e-6, 1.0),
                "beam_width": (1, 32)})
def gpt_decoder(p, run):
    trained = _decoder(p, run, eval_every=p.eval_every)
    model, tok = trained.model, trained.tokenizer
    V = tok.vocab_size
    bos = tok.special_ids["<bos>"]
    train_ids, val_ids = token_ids("train", tok), token_ids("validation", tok)
    unigram = UnigramModel(V).fit(train_ids.numpy())
    bigram = BigramModel(V).fit(train_ids.numpy())
    val_ce = evaluate_cross_entropy(model, val_ids)

    # a) and b): one sentence, its attention pattern, the next-token predictions and the causal gradient
    sentence = torch.tensor([bos, *tok.encode(p.sentence)])[: p.context]
    with torch.no_grad():
        probs = torch.softmax(model(sentence[None].to(run.device))[0].double(), -1).cpu()  # (N, |V|)
    top_p, top_i = probs.topk(3, dim=-1)  # (N, 3)
    true_next = sentence[1:]
    true_prob = probs[torch.arange(len(true_next)), true_next]
    rank_true = (probs[:-1] > true_prob[:, None]).sum(-1)  # 0 = the top prediction
    weights = attention_weights(model, sentence)  # (L, H, N, N)
    grad = causal_gradient(model, sentence)  # (N, N): output t, input t'
    later = torch.ones_like(grad, dtype=torch.bool).triu(1)

    # d): continuations of the prompt by each strategy, and what they mean for the drawn tokens
    prompt = torch.tensor([bos, *tok.encode(p.prompt)])
    n0 = len(prompt)
    samples = {strategy: generate(model, prompt, p.new_tokens, strategy=strategy, k=p.top_k, p=p.top_p,
                                  generator=run.generator(100 + offset))
               for offset, strategy in enumerate(("greedy", "top_k", "nucleus"))}
    beams, beam_scores = beam_search(model, prompt, p.new_tokens, beam_width=p.beam_width)
    samples["beam"] = beams[0]
    logps = {s: float(sequence_log_prob(model, seq) - sequence_log_prob(model, prompt)) for s, seq in samples.items()}
    uncached = generate(model, prompt, p.new_tokens, use_cache=False)
    # where each sampled token stood in the distribution it was drawn from
    with torch.no_grad():
        outside = {}
        for strategy in ("top_k", "nucleus"):
            seq = samples[strategy]
            logits = model(seq[None, :-1].to(run.device))[0, n0 - 1:].cpu()  # (new, |V|)
            dist = next_token_distribution(logits, strategy=strategy, k=p.top_k, p=p.top_p)
            outside[strategy] = int((dist[torch.arange(len(logits)), seq[n0:]] == 0).sum())

    shown = [_show(tok.id_to_token(int(i))) for i in sentence]
    metrics = {
        "parameters": sum(q.numel() for q in model.parameters()), "vocab_size": V,
        "train_tokens": len(train_ids), "validation_tokens": len(val_ids),
        "steps": p.steps, "trained_tokens": p.steps * p.batch_size * p.context, "claim_budget": CLAIM_BUDGET,
        "initial_loss": trained.losses[0], "log_vocab": math.log(V),
        "final_train_loss": float(np.mean(trained.losses[-max(1, p.steps // 20):])),
        "validation_ce": val_ce, "validation_perplexity": math.exp(val_ce),
        "initial_validation_ce": trained.eval_ce[0],
        "bigram_ce": bigram.cross_entropy(val_ids.numpy()), "unigram_ce": unigram.cross_entropy(val_ids.numpy()),
        "sentence_tokens": shown, "top3_tokens": [[_show(tok.id_to_token(int(i))) for i in row] for row in top_i],
        "top3_probs": top_p.tolist(), "true_next_prob": true_prob.tolist(),
        "true_next_top1": float((rank_true == 0).double().mean()),
        "grad_later_max": float(grad[later].max()), "grad_earlier_min": float(grad[~later].min()),
        "attention_row_sum_error": float((weights.sum(-1) - 1).abs().max()),
        "attention_above_diagonal_max": float(weights[..., later].abs().max()),
        "samples": {s: tok.decode(seq.tolist()) for s, seq in samples.items()},  # prompt + continuation
        "prompt": p.prompt, "sample_logp": logps, "beam_scores": beam_scores.tolist(),
        "cached_equals_uncached": bool(torch.equal(samples["greedy"], uncached)),
        "sampled_outside_kept_set": outside,
    }
    metrics["bigram_perplexity"] = math.exp(metrics["bigram_ce"])
    metrics["unigram_perplexity"] = math.exp(metrics["unigram_ce"])
    arrays = {"losses": np.asarray(trained.losses), "eval_steps": np.asarray(trained.eval_steps),
              "eval_ce": np.asarray(trained.eval_ce), "attention": weights[-1].mean(0).numpy(),
              "gradient": grad.numpy()}
    notes = (f"GPT-3 trains 175 billion parameters on 300 billion tokens; this decoder has "
             f"{metrics['parameters']:,} parameters, a {V:,}-token BPE vocabulary learned on the manual's training "
             f"split ({len(train_ids):,} tokens) and a context of {p.context} tokens, trained for {p.steps:,} steps "
             f"of {p.batch_size} windows (AdamW, warm-up then cosine decay, dropout {p.dropout:g}). The book's "
             f"figure starts each sequence with <start>; here it is <bos>. ")
    if metrics["trained_tokens"] < CLAIM_BUDGET:
        notes += (f"With {metrics['trained_tokens']:,} training tokens the decoder is not expected to beat the "
                  f"unigram and bigram models; those claims are checked from {CLAIM_BUDGET:,} tokens.")
    return Result(metrics=metrics, arrays=arrays, notes=notes)


@gpt_decoder.requires
def _(p):
    _check_decoder("12.12", p)
    if p.top_k > p.vocab_size:
        raise ValueError(f"The 'top_k' parameter of figure 12.12 must be at most vocab_size ({p.vocab_size}). "
                         f"Got {p.top_k} instead.")
    # prompt and continuation are scored in one forward pass: they must fit in the context; a prompt has at
    # most one token per byte plus one end-of-word marker per word (and <bos>)
    room = p.context - 1 - len(p.prompt.encode()) - len(p.prompt.split())
    if p.new_tokens > room:
        raise ValueError(f"The 'new_tokens' parameter of figure 12.12 must be at most {room}: context - 1 - "
                         f"(bytes + words of the prompt, a bound on its tokens). Got {p.new_tokens} instead.")


@gpt_decoder.plot
def _(r):
    m, a = r.metrics, r.arrays
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(11, 8.2), layout="constrained")
        grid = fig.add_gridspec(2, 3, height_ratios=[1.1, 1])
        ax_a = fig.add_subplot(grid[0, :])
        ax_b, ax_c, ax_d = (fig.add_subplot(grid[1, i]) for i in range(3))

    # a) inputs at the bottom, masked attention lines, next-token bars on top
    tokens, n = m["sentence_tokens"], len(m["sentence_tokens"])
    att = a["attention"]
    for t in range(n):
        for s in range(t + 1):
            ax_a.plot([s, t], [0.25, 1.75], color=style.DATA, lw=0.3 + 4 * att[t, s], alpha=0.25 + 0.75 * att[t, s],
                      solid_capstyle="round", zorder=1)
        ax_a.text(t, 0, tokens[t], ha="center", va="top", fontsize=7.5, rotation=60, rotation_mode="anchor",
                  bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=style.REGION))
    ax_a.add_patch(plt.Rectangle((-0.5, 0.3), n, 1.4, fc=style.REGION, alpha=0.25, zorder=0))
    ax_a.text(n - 0.45, 1.0, "masked\nself-attention\nlayers", ha="left", va="center", fontsize=7.5)
    for t in range(n):
        truth = tokens[t + 1] if t + 1 < n else None
        for j, (word, prob) in enumerate(zip(m["top3_tokens"][t], m["top3_probs"][t])):
            y = 2.05 + 0.55 * j
            color = style.DATA if word == truth else style.MODEL
            ax_a.barh(y, 0.85 * prob, left=t - 0.42, height=0.42, color=color, alpha=0.9)
            label = word if len(word) <= 7 else word[:6] + "…"
            ax_a.text(t - 0.42, y + 0.27, f"{label} {prob:.2f}", fontsize=5.8, va="bottom", ha="left")
    ax_a.set(xlim=(-0.7, n + 1.3), ylim=(-1.1, 3.75), xticks=[], yticks=[])
    ax_a.spines[["left", "bottom"]].set_visible(False)
    ax_a.set_title("a) masked self-attention and the three most likely next tokens (orange: the true next token)",
                   loc="left", fontsize=9)

    # b) attention matrix
    ax_b.imshow(att, cmap="Oranges", vmin=0, vmax=att.max())
    ax_b.set(xticks=range(n), yticks=range(n), xlabel="key (earlier token)", ylabel="query (position)")
    ax_b.set_xticklabels(tokens, rotation=90, fontsize=6)
    ax_b.set_yticklabels(tokens, fontsize=6)
    ax_b.set_title("b) attention, last layer (head mean)", loc="left", fontsize=9)

    # c) learning curves
    losses = a["losses"]
    window = max(1, len(losses) // 40)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    ax_c.plot(np.arange(window, len(losses) + 1), smooth, color=style.MODEL, lw=1.2, label="training")
    ax_c.plot(a["eval_steps"], a["eval_ce"], "o-", color=style.MODEL, mfc="white", ms=3, lw=1, label="validation")
    ax_c.axhline(m["bigram_ce"], color=style.TRUTH, ls="--", lw=0.9, label=f"bigram (ppl {m['bigram_perplexity']:.0f})")
    ax_c.axhline(m["unigram_ce"], color=style.TRUTH, ls=":", lw=0.9,
                 label=f"unigram (ppl {m['unigram_perplexity']:.0f})")
    ax_c.set(xlabel="step", ylabel="cross-entropy (nats / token)", ylim=(0, m["log_vocab"] * 1.05))
    ax_c.legend(fontsize=7, loc="upper right")
    ax_c.set_title(f"c) validation perplexity {m['validation_perplexity']:.0f}", loc="left", fontsize=9)

    # d) samples
    ax_d.axis("off")
    ax_d.set_title(f'd) continuations of "{m["prompt"]}"', loc="left", fontsize=9)

    names = {"greedy": "greedy", "top_k": f"top-k (k={r.params.get('top_k', '')})",
             "nucleus": f"nucleus (p={r.params.get('top_p', '')})",
             "beam": f"beam (W={r.params.get('beam_width', '')})"}
    y = 0.97
    for key, label in names.items():
        text = m["samples"][key].replace("\n", " ⏎ ")
        ax_d.text(0, y, f"{label}, log Pr = {m['sample_logp'][key]:.1f}", fontsize=7.5, fontweight="bold",
                  va="top", transform=ax_d.transAxes, color=style.MODEL)
        wrapped = textwrap.fill(text, 52)
        ax_d.text(0, y - 0.06, wrapped, fontsize=7, va="top", transform=ax_d.transAxes, family="monospace")
        y -= 0.08 + 0.055 * (wrapped.count("\n") + 1)
    return fig


@gpt_decoder.checks
def _(r):
    m = r.metrics
    claims = {"validation perplexity below the bigram model's (fitted on the same training tokens)": "bigram",
              "validation perplexity below the unigram model's": "unigram"}
    if m["trained_tokens"] >= m["claim_budget"]:
        checks = [Check.less(claim, m["validation_perplexity"], m[f"{model}_perplexity"])
                  for claim, model in claims.items()]
    else:
        checks = [_untested_below_budget(claim, m) for claim in claims]
    return checks + [
        _if_trained(Check.less("training lowers the validation cross-entropy: after - before (nats per token)",
                               m["validation_ce"] - m["initial_validation_ce"], 0.0), r),
        Check.close("at initialisation the decoder predicts nearly uniformly: first loss vs log |V|",
                    m["initial_loss"], m["log_vocab"], 0.1),
        _if_trained(Check.less("training lowers the loss: final training loss / first loss", m["final_train_loss"] /
                               m["initial_loss"], 1.0), r),
        Check.equal("the logits at position t do not depend on later inputs: max |∂ logits_t / ∂ x_t'|, t' > t",
                    m["grad_later_max"], 0.0),
        Check.greater("and do depend on every input up to t: min |∂ logits_t / ∂ x_t'|, t' <= t",
                      m["grad_earlier_min"], 0.0),
        Check.equal("masked attention puts zero weight above the diagonal", m["attention_above_diagonal_max"], 0.0),
        Check.less("each query's attention weights sum to one: max |Σ_t' a - 1|", m["attention_row_sum_error"], 1e-5),
        Check.holds("greedy decoding with the key/value cache gives the same tokens as without it",
                    m["cached_equals_uncached"], m["cached_equals_uncached"]),
        Check.equal("sampled tokens outside the top-k set / outside the nucleus",
                    [m["sampled_outside_kept_set"]["top_k"], m["sampled_outside_kept_set"]["nucleus"]], [0, 0]),
        Check.greater("beam search finds a continuation at least as likely as greedy's: log Pr(beam) - "
                      "log Pr(greedy)", m["sample_logp"]["beam"] - m["sample_logp"]["greedy"], -1e-9),
    ]


# --------------------------------------------------------------------------- 12.gpt3-size
def _resident_bytes() -> int:
    """This process's resident memory now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096
    except OSError:
        import resource  # here, not at the top: Unix only, and needed only off Linux

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@figure("12.gpt3-size", title="Where GPT-3's 175 billion parameters are",
        caption="GPT-3 as the book describes it (96 layers, D = 12,288, 96 heads of 128, a context of 2,048 and "
                "GPT-2's 50,257-token vocabulary) built as a udl GPT on PyTorch's meta device, which gives every "
                "tensor a shape but no memory, and its parameters counted part by part. a) Almost all of them "
                "sit in the transformer layers: per layer four D x D attention matrices and two D x 4D MLP "
                "matrices, 12·D² in all, so 12·L·D² ≈ 174 billion, against 0.6 billion for the (tied) token "
                "embeddings. b) One layer, matrix by matrix. The closed-form count equals the count of the "
                "module's parameters exactly; in float32 the weights alone would fill about 700 GB.",
        params={"tiny": dict(n_layers=96, d_model=12288, n_heads=96, context=2048, vocab_size=50257),
                "full": dict(n_layers=96, d_model=12288, n_heads=96, context=2048, vocab_size=50257)},
        # nothing is allocated (meta device), but every layer is a Python module: a few hundred build in seconds
        limits={"n_layers": (1, 256), "d_model": (1, 65_536), "n_heads": (1, 1024), "context": (1, 1_000_000),
                "vocab_size": (1, 1_000_000)})
def gpt3_size(p, run):
    config = _gpt3_config(p)
    before, start = _resident_bytes(), time.perf_counter()
    model = meta_model(config)
    seconds = time.perf_counter() - start
    grown = _resident_bytes() - before
    groups = parameter_groups(model)  # the module's own parameters, by where they sit
    layer = model.layers[0]
    one_layer = {"Ω_q": layer.self_attn.q_proj.weight.numel(), "Ω_k": layer.self_attn.k_proj.weight.numel(),
                 "Ω_v": layer.self_attn.v_proj.weight.numel(), "Ω_c": layer.self_attn.out_proj.weight.numel(),
                 "MLP in": layer.linear1.weight.numel(), "MLP out": layer.linear2.weight.numel(),
                 "biases + LN": sum(q.numel() for n, q in layer.named_parameters() if q.dim() == 1)}
    total = sum(q.numel() for q in model.parameters())
    D, L = config.d_model, config.n_layers
    metrics = {"parameters": total, "book_parameters": GPT3_BOOK_PARAMETERS,
               "formula_groups": config.parameter_formula(), "module_groups": groups,
               "formula_total": config.parameter_count(), "parameter_count": parameter_count(config),
               "twelve_L_D2": 12 * L * D * D, "layers_share": (groups["attention"] + groups["MLP"]) / total,
               "one_layer": one_layer, "float32_bytes": 4 * total,
               "resident_growth_under_100MB": bool(grown < 100e6),
               "non_meta_parameters": sum(not q.is_meta for q in model.parameters()),
               "gpt2_small": parameter_count(GPTConfig.gpt2_small()),
               "config": {"n_layers": L, "d_model": D, "n_heads": config.n_heads, "d_head": config.d_head,
                          "context": config.context, "vocab_size": config.vocab_size}}
    notes = (f"Built on the meta device in {seconds:.2f} s; the process's resident memory grew by "
             f"{grown / 1e6:.1f} MB (the float32 weights would take {4 * total / 1e9:.0f} GB). GPT-3 alternates dense "
             f"and locally banded sparse attention layers; the pattern has no parameters and does not change the "
             f"count. The vocabulary size (GPT-2's) is not in the book.")
    return Result(metrics=metrics, notes=notes)


def _gpt3_config(p) -> GPTConfig:
    return GPTConfig.gpt3(n_layers=p.n_layers, d_model=p.d_model, n_heads=p.n_heads, context=p.context,
                          vocab_size=p.vocab_size)


gpt3_size.requires(_gpt3_config)  # GPTConfig's checks (heads that divide D), before building


@gpt3_size.plot
def _(r):
    m = r.metrics
    fig, (ax_a, ax_b) = style.subplots(1, 2, width=4.6, height=3.2)
    groups = {k: v for k, v in m["module_groups"].items() if v}
    names = list(groups)[::-1]
    values = np.array([groups[k] for k in names], dtype=float)
    labels = [f"{k}\n(= output layer, tied)" if k == "token embeddings" else k for k in names]
    bars = ax_a.barh(labels, values, color=[style.MODEL if k in ("attention", "MLP") else style.DATA for k in names])
    for bar, v in zip(bars, values):
        ax_a.text(bar.get_width() * 1.3, bar.get_y() + bar.get_height() / 2, f"{v / 1e9:.3g} B", va="center",
                  fontsize=8)
    ax_a.set(xscale="log", xlabel="parameters (log scale)", xlim=(values.min() / 3, values.max() * 20))
    share = m["module_groups"]["attention"] + m["module_groups"]["MLP"]
    ax_a.text(0.98, 0.03, f"attention + MLP = {share / 1e9:.1f} B\n12·L·D² = {m['twelve_L_D2'] / 1e9:.1f} B",
              transform=ax_a.transAxes, ha="right", va="bottom", fontsize=8)
    ax_a.set_title(f"a) GPT-3: {m['parameters'] / 1e9:.1f} billion parameters", loc="left", fontsize=9)
    layer = m["one_layer"]
    names = list(layer)[::-1]
    values = np.array([layer[k] for k in names]) / 1e6
    ax_b.barh(names, values, color=[style.MODEL if k.startswith("Ω") else style.EXTRA[0] if "MLP" in k
                                    else style.REGION for k in names])
    for i, v in enumerate(values):
        ax_b.text(v + 5, i, f"{v:,.1f} M", va="center", fontsize=8)
    D = m["config"]["d_model"]
    ax_b.set(xlabel="parameters (millions)", xlim=(0, values.max() * 1.35))
    ax_b.set_title(f"b) one of {m['config']['n_layers']} layers (D = {D:,}): 12·D² = {12 * D * D / 1e6:,.0f} M",
                   loc="left", fontsize=9)
    return fig


@gpt3_size.checks
def _(r):
    m = r.metrics
    c, book = m["config"], GPTConfig.gpt3()
    L, D = c["n_layers"], c["d_model"]
    size_claims = [Check.close("GPT-3 has about 175 billion parameters (within 1%)", m["parameters"],
                               m["book_parameters"], 0.01, rel=True),
                   Check.greater("the transformer layers hold over 99% of the parameters", m["layers_share"], 0.99)]
    if any(c[key] != getattr(book, key) for key in ("n_layers", "d_model", "n_heads", "context", "vocab_size")):
        why = (f"the claim is about GPT-3's sizes ({book.n_layers} layers, D = {book.d_model:,}, {book.n_heads} heads, "
               f"context {book.context:,}, |V| = {book.vocab_size:,}); these parameters build another model")
        size_claims = [Check.untested(check.claim, why) for check in size_claims]
    return [
        size_claims[0],
        Check.equal("the closed form equals the module's count, part by part", m["formula_groups"],
                    m["module_groups"]),
        Check.equal("and in total (also by parameter_count)", [m["formula_total"], m["parameter_count"]],
                    [m["parameters"], m["parameters"]]),
        size_claims[1],
        # Ω_q, Ω_k, Ω_v, Ω_c (4D²) and the MLP's two D x 4D matrices (8D²) per layer; biases 4D + 4D + D
        Check.close("attention + MLP = 12·L·D² up to their 9·L·D biases",
                    m["module_groups"]["attention"] + m["module_groups"]["MLP"], m["twelve_L_D2"], 9 * L * D),
        Check.equal("counted without allocating: parameters with storage", m["non_meta_parameters"], 0),
        Check.holds("the process's resident memory grew by less than 100 MB (the float32 weights: ~700 GB; the "
                    "growth itself is in the notes)", m["resident_growth_under_100MB"],
                    m["resident_growth_under_100MB"]),
        Check.close("GPT-2 small, counted the same way, has 124 million", m["gpt2_small"], 124e6, 0.01, rel=True),
    ]


# --------------------------------------------------------------------------- 12.sentence-prob
@figure("12.sentence-prob", title="The probability of a sentence is a product of next-token probabilities",
        caption="The decoder of figure 12.12 (the same training, shared through a cache) scores a validation "
                "sentence of the Python reference manual by the chain rule: Pr(x_2 ... x_N | <bos>) is the "
                "product over t of Pr(x_t | x_1 ... x_{t-1}). a) Each factor, taken one token at a time with the "
                "key/value cache, and the running log-probability. The same total comes from one forward pass "
                "with masked self-attention (the sum of the log-probabilities of every next token, i.e. -N times "
                "the mean cross-entropy) and from recomputing every prefix from scratch. b) Validation sentences "
                "against the same words shuffled: the decoder prefers the real word order.",
        params={"tiny": dict(**TINY_DECODER, eval_every=20, sentence=SENTENCE, n_sentences=40),
                "full": dict(**FULL_DECODER, eval_every=50, sentence=SENTENCE, n_sentences=100)},
        limits={**DECODER_LIMITS, "n_sentences": (1, 1000)})
def sentence_probability(p, run):
    trained = _decoder(p, run, eval_every=p.eval_every)
    tok = trained.tokenizer
    bos = tok.special_ids["<bos>"]
    tokens = torch.tensor([bos, *tok.encode(p.sentence)])[: p.context + 1]
    n = len(tokens) - 1  # predicted tokens
    results = {}
    # float64 for the identities (float32 shown too): the three computations differ only by rounding
    for precision, model in (("float32", trained.model), ("float64", copy.deepcopy(trained.model).double())):
        with torch.no_grad():
            one_pass = token_log_probs(model, tokens)  # (N,) all factors from one masked forward pass
            cached = token_log_probs(model, tokens, use_cache=True)  # one token at a time, key/value cache
            dev = next(model.parameters()).device
            prefix = torch.stack([torch.log_softmax(model(tokens[None, :t].to(dev))[0, -1].double(), -1)[tokens[t]]
                                  for t in range(1, n + 1)]).cpu()  # every prefix from scratch
            ce = float(lm_loss(model(tokens[None, :-1].to(dev)), tokens[None, 1:].to(dev)))
        results[precision] = {"one_pass": float(one_pass.sum()), "cached": float(cached.sum()),
                              "prefix": float(prefix.sum()), "minus_n_ce": -n * ce,
                              "max_factor_gap": float((one_pass - cached).abs().max())}
        if precision == "float32":
            factors = cached.exp()

    # real sentences against their words shuffled
    model = trained.model
    pool = [s for s in sentences("validation") if s != p.sentence]
    picks = run.rng.permutation(len(pool))
    real, shuffled = [], []
    for i in picks:
        words = pool[i].split()
        ids = tok.encode(pool[i])
        if len(words) < 4 or len(ids) + 1 > p.context + 1:
            continue
        mixed = list(words)
        while mixed == words:
            mixed = [words[j] for j in run.rng.permutation(len(words))]
        real.append(float(sequence_log_prob(model, torch.tensor([bos, *ids]))))
        shuffled.append(float(sequence_log_prob(model, torch.tensor([bos, *tok.encode(" ".join(mixed))]))))
        if len(real) == p.n_sentences:
            break
    real_a, shuffled_a = np.array(real), np.array(shuffled)
    r64 = results["float64"]
    metrics = {"sentence": p.sentence, "tokens": [_show(tok.id_to_token(int(i))) for i in tokens],
               "n_predicted": n, "vocab_size": tok.vocab_size, "factors": factors.tolist(),
               "trained_tokens": p.steps * p.batch_size * p.context, "claim_budget": CLAIM_BUDGET,
               "log_prob": r64["one_pass"], "probability": math.exp(r64["one_pass"]), "by_precision": results,
               "gap_cached": abs(r64["one_pass"] - r64["cached"]), "gap_prefix": abs(r64["one_pass"] - r64["prefix"]),
               "gap_cross_entropy": abs(r64["one_pass"] - r64["minus_n_ce"]),
               "n_pairs": len(real)}
    if real:  # none when no validation sentence of four words or more fits the context
        metrics.update(real_beats_shuffled=float((real_a > shuffled_a).mean()), mean_real_log_prob=float(real_a.mean()),
                       mean_shuffled_log_prob=float(shuffled_a.mean()))
    arrays = {"factors": factors.numpy(), "real": real_a, "shuffled": shuffled_a}
    notes = ("The identities are checked on a float64 copy of the trained decoder, where the three computations "
             "differ only by rounding; the float32 gaps are in by_precision. ")
    if metrics["trained_tokens"] < CLAIM_BUDGET:
        notes += (f"This decoder saw only {metrics['trained_tokens']:,} training tokens, too few to know word order; "
                  f"the real-against-shuffled claim is checked from {CLAIM_BUDGET:,}.")
    return Result(metrics=metrics, arrays=arrays, notes=notes)


@sentence_probability.requires
def _(p):
    _check_decoder("12.sentence-prob", p)


@sentence_probability.plot
def _(r):
    m, a = r.metrics, r.arrays
    fig, (ax_a, ax_b) = style.subplots(1, 2, width=5.0, height=3.4, gridspec_kw={"width_ratios": [1.6, 1]})
    f = a["factors"]
    x = np.arange(len(f))
    ax_a.bar(x, f, color=style.MODEL, width=0.7)
    ax_a.set(yscale="log", ylim=(f.min() / 4, 1.5), ylabel="Pr(x_t | x_1 ... x_{t-1})  (log scale)", xticks=x)
    ax_a.set_xticklabels(m["tokens"][1:], rotation=70, fontsize=7)
    for xi, v in zip(x, f):
        ax_a.text(xi, v * 1.15, f"{v:.2g}", ha="center", fontsize=6)
    twin = ax_a.twinx()
    twin.plot(x, np.cumsum(np.log(f)), "o-", color=style.DATA, ms=3, lw=1.2)
    twin.set_ylabel("running log-probability", color=style.DATA)
    twin.spines["right"].set_visible(True)
    ax_a.set_title(f"a) log Pr(sentence | <bos>) = {m['log_prob']:.2f}  (Pr = {m['probability']:.2g})",
                   loc="left", fontsize=9)
    ax_b.set(xlabel="log Pr(words shuffled)", ylabel="log Pr(real sentence)")
    if not m["n_pairs"]:
        ax_b.set_title("b) no validation sentence of 4+ words fits the context", loc="left", fontsize=9)
        return fig
    ax_b.scatter(a["shuffled"], a["real"], s=10, color=style.DATA, alpha=0.8)
    lo, hi = min(a["real"].min(), a["shuffled"].min()), max(a["real"].max(), a["shuffled"].max())
    ax_b.plot([lo, hi], [lo, hi], color=style.TRUTH, lw=0.8, ls="--")
    ax_b.set_title(f"b) real order wins in {100 * m['real_beats_shuffled']:.0f}% of {m['n_pairs']}", loc="left",
                   fontsize=9)
    return fig


@sentence_probability.checks
def _(r):
    m = r.metrics
    word_order = "the decoder prefers real word order: share of validation sentences more likely than their " \
                 "shuffled words"
    return [
        Check.less("one masked forward pass and one token at a time with the key/value cache give the same "
                   "log-probability: |difference|", m["gap_cached"], 1e-5),
        Check.less("and so does recomputing every prefix from scratch (the chain rule, term by term): |difference|",
                   m["gap_prefix"], 1e-5),
        Check.less("log Pr(sentence) = -N x mean cross-entropy of one forward pass: |difference|",
                   m["gap_cross_entropy"], 1e-5),
        _if_trained(Check.greater("trained, the decoder finds the sentence likelier than uniform guessing does: "
                                  "log Pr - (-N log |V|)", m["log_prob"] + m["n_predicted"] * math.log(m["vocab_size"]),
                                  0.0), r),
        _untested_below_budget(word_order, m) if m["trained_tokens"] < m["claim_budget"] else
        Check.untested(word_order, "needs a validation sentence of four words or more that fits the context")
        if not m["n_pairs"] else Check.greater(word_order, m["real_beats_shuffled"], 0.75),
    ]
