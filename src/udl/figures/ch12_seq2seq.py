"""Chapter 12, §12.8: the encoder-decoder transformer and its cross-attention (figs. 12.13 and 12.14).

Both figures use one model: :func:`udl.train.transformers.train_translator` trained on
:mod:`udl.data.numbers` (numbers in digits to English words). It is trained once per
machine and parameter set (:func:`udl.cache.trained`), so 12.13 and 12.14 share it,
whether they run in one process or in several.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from udl import drawing, style
from udl.data.numbers import BOS, EOS, PAD, SOURCE_VOCAB, TARGET_VOCAB, decode_source, number_to_words, target_alignment
from udl.models.seq2seq import (Seq2SeqConfig, beam_search, cross_attention_provenance, cross_attention_weights,
                                decoder_causal_gradient, evaluate_translation)
from udl.registry import Check, Limit, Result, figure
from udl.train.transformers import train_translator

ENCODER_COLOR, DECODER_COLOR, CROSS_COLOR = style.MODEL, style.EXTRA[0], style.DATA

# The translator both figures share: the same values give the same trained model.
TRAIN = {"tiny": dict(max_digits=3, d_model=32, n_heads=2, layers=2, d_mlp=64, steps=250, batch_size=32, lr=5e-3,
                      n_train=4000, n_test=200),
         "full": dict(max_digits=9, d_model=64, n_heads=4, layers=2, d_mlp=128, steps=1500, batch_size=64, lr=3e-3,
                      n_train=50_000, n_test=1000)}
TARGET_EXACT = {"tiny": 0.6, "full": 0.95}  # held-out exact match the figure claims at each training budget
TARGET_TOKEN = {"tiny": 0.9, "full": 0.99}  # and teacher-forced token accuracy
# What the translator can run: the numbers of udl.data.numbers (1 to 9 digits), a model a laptop trains, a
# test set with a validation half (n_test // 2 >= 1).
TRAIN_LIMITS = {"max_digits": (1, 9), "d_model": (8, 256), "n_heads": (1, 16), "layers": (1, 6), "d_mlp": (8, 1024),
                "steps": (1, 20_000), "batch_size": (1, 1024), "lr": (1e-6, 1.0), "n_train": (1, 1_000_000),
                "n_test": (2, 10_000)}


def _config(p) -> Seq2SeqConfig:
    """The translator's shape; Seq2SeqConfig checks it (heads that divide D...)."""
    return Seq2SeqConfig.numbers(p.max_digits, d_model=p.d_model, n_heads=p.n_heads, n_encoder_layers=p.layers,
                                 n_decoder_layers=p.layers, d_mlp=p.d_mlp)


def _check_translator(fig_id: str, p, example_digits: list[int]) -> None:
    """The parameters together: Seq2SeqConfig's checks, a test number of every length, examples that exist."""
    _config(p)
    if p.n_test < p.max_digits:
        raise ValueError(f"The 'n_test' parameter of figure {fig_id} must be at least max_digits ({p.max_digits}): "
                         f"one held-out number of each length. Got {p.n_test} instead.")
    if max(example_digits) > p.max_digits:
        raise ValueError(f"The 'example_digits' parameter of figure {fig_id} must be at most max_digits "
                         f"({p.max_digits}). Got {','.join(map(str, example_digits))} instead.")


def _translator(p, run):
    config = _config(p)
    return train_translator(config, steps=p.steps, batch_size=p.batch_size, lr=p.lr, n_train=p.n_train,
                            n_validation=p.n_test // 2, n_test=p.n_test, max_digits=p.max_digits, seed=run.seed,
                            device=run.device)


def _budget(p) -> str | None:
    """Which preset's accuracy claims this run can test: "full" when it trains at least as much as the full preset
    on its task (9 digits); "tiny", the weaker claim, when it trains as much on fewer digits, or at least as much as
    the tiny preset on a task no harder than tiny's (3 digits); else None (too little training for either claim)."""
    def at_least(preset):
        budget = TRAIN[preset]
        return all(getattr(p, key) >= budget[key] for key in ("steps", "batch_size", "n_train", "d_model", "layers"))

    if at_least("full"):
        return "full" if p.max_digits >= TRAIN["full"]["max_digits"] else "tiny"
    return "tiny" if p.max_digits <= TRAIN["tiny"]["max_digits"] and at_least("tiny") else None


def _untested_budget(claim: str) -> Check:
    """An accuracy claim of a run that trains less than either preset (see ``_budget``)."""
    tiny, full = TRAIN["tiny"], TRAIN["full"]
    return Check.untested(claim, f"needs the training of a preset: at most {tiny['max_digits']} digits with at least "
                                 f"{tiny['steps']} steps of {tiny['batch_size']}, {tiny['n_train']:,} examples, "
                                 f"D = {tiny['d_model']}, {tiny['layers']} layers; or {full['max_digits']} digits with "
                                 f"{full['steps']} steps of {full['batch_size']}, {full['n_train']:,} examples, "
                                 f"D = {full['d_model']}, {full['layers']} layers")


def _words(ids) -> list[str]:
    """Target ids as token strings up to and including <eos>."""
    out = []
    for i in ids:
        if int(i) == PAD:
            break
        out.append(TARGET_VOCAB[int(i)])
        if int(i) == EOS:
            break
    return out


def _example(test, digits: int) -> int:
    """The index of the first test number with ``digits`` digits (else the longest)."""
    lengths = np.array([len(str(int(n))) for n in test.numbers])
    hits = np.flatnonzero(lengths == digits)
    return int(hits[0]) if len(hits) else int(np.argmax(lengths))


# --------------------------------------------------------------------------- 12.13
@figure("12.13", title="An encoder-decoder transformer translating numbers into words",
        caption="An encoder-decoder transformer trained to translate numbers written in digits (\"4,071\") into "
                "English words (\"four thousand seventy-one\"), a translation task with exact answers. a) The "
                "encoder reads the source characters with ordinary self-attention, each token seeing every "
                "other; its outputs, one vector per character, feed every decoder layer. The decoder reads the "
                "target shifted right behind <bos>; its self-attention is masked so that each position sees only "
                "earlier words, and its cross-attention block (orange) takes queries from the decoder and keys "
                "and values from the encoder's outputs. The words on top are the model's own greedy translation "
                "of a held-out number. As for a decoder-only model, training maximises the probability of each "
                "next target word. b) Training loss. c) Exact-match accuracy on held-out numbers (none of them "
                "seen in training) by number of digits. d) The decoder's output at position t does not depend on "
                "target words after t: the gradient with respect to later inputs is exactly zero.",
        params={"tiny": dict(**TRAIN["tiny"], example_digits=3),
                "full": dict(**TRAIN["full"], example_digits=7)},
        limits={**TRAIN_LIMITS, "example_digits": (1, 9)})
def encoder_decoder(p, run):
    tr = _translator(p, run)
    model, data = tr.model, tr.data
    test = data.test
    greedy = evaluate_translation(model, test.src, test.tgt)
    digits = np.array([len(str(int(n))) for n in test.numbers])
    correct = greedy.correct.numpy()
    by_digits = [float(correct[digits == d].mean()) for d in range(1, p.max_digits + 1)]
    count_by_digits = [int((digits == d).sum()) for d in range(1, p.max_digits + 1)]

    i = _example(test, p.example_digits)
    src_i = test.src[i:i + 1]
    n_src = int((src_i != model.config.pad_id).sum())
    prediction = _words(greedy.predictions[i])
    truth = _words(test.tgt[i, 1:])

    # queries from the decoder, keys and values from the encoder: hooks and gradients on a batch of held-out pairs
    batch = slice(0, min(16, len(test.numbers)))
    prov = cross_attention_provenance(model, test.src[batch], test.tgt[batch, :-1], generator=run.generator(1))
    # the decoder's output at t does not depend on later target words
    n_tgt = len(truth)  # <bos> + the words: the decoder inputs that predict the words and <eos>
    G = decoder_causal_gradient(model, src_i, test.tgt[i:i + 1, :n_tgt]).numpy()
    later = G[np.triu_indices(n_tgt, 1)]
    earlier = G[np.tril_indices(n_tgt)]
    # source padding changes nothing: each short held-out source alone (no padding) vs in the padded batch
    device = next(model.parameters()).device
    with torch.no_grad():
        src_b, tgt_b = test.src[batch].to(device), test.tgt[batch, :-1].to(device)
        in_batch = model(src_b, tgt_b)
        pad_effect = 0.0
        for b in range(len(src_b)):
            n = int((src_b[b] != model.config.pad_id).sum())
            alone = model(src_b[b:b + 1, :n], tgt_b[b:b + 1])
            pad_effect = max(pad_effect, float((alone - in_batch[b:b + 1]).abs().max()))

    train_set = set(data.train.numbers.tolist())
    overlap = len(train_set & set(test.numbers.tolist())) + len(train_set & set(data.validation.numbers.tolist()))
    losses = np.asarray(tr.losses)
    window = max(1, len(losses) // 50)
    parts = {"encoder": [model.encoder], "decoder": [model.decoder],
             "embeddings": [model.src_embed, model.tgt_embed, model.src_positions, model.tgt_positions]}
    counts = {k: sum(q.numel() for mod in mods for q in mod.parameters()) for k, mods in parts.items()}
    c = model.config
    metrics = {
        "budget": _budget(p), "target_exact_match": TARGET_EXACT.get(_budget(p)),
        "target_token_accuracy": TARGET_TOKEN.get(_budget(p)),
        "exact_match": greedy.exact_match, "token_accuracy": greedy.token_accuracy,
        "exact_match_by_digits": by_digits, "test_count_by_digits": count_by_digits,
        "n_test": len(test.numbers), "n_train": len(data.train.numbers), "train_heldout_overlap": overlap,
        "first_loss": float(losses[:window].mean()), "final_loss": float(losses[-window:].mean()),
        "example_number": int(test.numbers[i]), "example_source": decode_source(test.src[i]),
        "example_truth": number_to_words(int(test.numbers[i])), "example_tokens": prediction,
        "example_truth_tokens": truth, "example_correct": prediction == truth, "example_source_length": n_src,
        "context_vs_encoder_max": max(prov["context_vs_encoder"]),
        "query_input_vs_decoder_max": max(prov["query_input_vs_decoder"]),
        "grad_kv_target_max": max(prov["grad_k_tgt"] + prov["grad_v_tgt"]),
        "grad_kv_source_min": min(prov["grad_k_src"] + prov["grad_v_src"]),
        "grad_q_target_min": min(prov["grad_q_tgt"]), "grad_q_source_first_layer": prov["grad_q_src"][0],
        "provenance": prov, "causal_later_max": float(later.max()) if later.size else 0.0,
        "causal_earlier_min": float(earlier.min()), "pad_effect": pad_effect,
        "parameters": counts, "total_parameters": sum(q.numel() for q in model.parameters()),
        "config": {"d_model": c.d_model, "n_heads": c.n_heads, "d_mlp": c.d_mlp, "n_encoder_layers":
                   c.n_encoder_layers, "n_decoder_layers": c.n_decoder_layers, "norm_first": c.norm_first},
    }
    arrays = {"losses": losses, "causal_gradient": G}
    notes = (f"{p.steps:,} steps of AdamW (batches of {p.batch_size}) on {p.n_train:,} training examples with at most "
             f"{p.max_digits} digits; data generation and training took {tr.seconds:.0f} s on {run.device.type} "
             f"(shared with fig. 12.14 within one process). Held-out numbers are never in the training set.")
    if metrics["budget"] == "tiny":
        notes += (f" This is a small run: the {TARGET_EXACT['full']:.0%} exact-match claim is checked at the full "
                  f"preset's budget; here the claim is {TARGET_EXACT['tiny']:.0%}.")
    elif metrics["budget"] is None:
        notes += " This run trains less than either preset: its accuracy claims are not tested."
    return Result(metrics=metrics, arrays=arrays, notes=notes)


def _stack_box(ax, x0, x1, y0, y1, color, label, *, alpha=0.22):
    """A stage of the encoder or decoder stack over ``[x0, x1] x [y0, y1]``, tinted with its colour."""
    drawing.box(ax, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, label, face=color, edge=color, lw=1.0,
                alpha=alpha, fontsize=7.5)


@encoder_decoder.requires
def _(p):
    _check_translator("12.13", p, [p.example_digits])


@encoder_decoder.plot
def _(r):
    m, a = r.metrics, r.arrays
    c = m["config"]
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(12, 8.6), layout="constrained")
        grid = fig.add_gridspec(2, 3, height_ratios=[1.45, 1])
        ax_a = fig.add_subplot(grid[0, :])
        ax_b, ax_c, ax_d = (fig.add_subplot(grid[1, i]) for i in range(3))

    # a) the architecture, with the example's real tokens
    src = list(m["example_source"])
    dec_in = ["<bos>", *m["example_tokens"][:-1]]
    dec_out = m["example_tokens"]
    ns, nt = len(src), len(dec_out)
    dx = 0.62
    xs0 = 0.5
    xt0 = xs0 + max(ns - 1, 4) * dx + 3.2
    enc_x = (xs0 - 0.4, xs0 + max(ns - 1, 4) * dx + 0.4)
    dec_x = (xt0 - 0.4, xt0 + (nt - 1) * dx + 0.4)
    for j, ch in enumerate(src):
        drawing.box(ax_a, xs0 + j * dx, 0.5, 0.5, 0.5, ch, edge=ENCODER_COLOR, lw=0.9, fontsize=8.5)
    for j, w in enumerate(dec_in):
        drawing.box(ax_a, xt0 + j * dx, 0.475, 0.5, 0.95, w, edge=DECODER_COLOR, lw=0.9, rotation=90)
    for j, w in enumerate(dec_out):
        drawing.box(ax_a, xt0 + j * dx, 5.725, 0.5, 0.95, w, lw=0.9, rotation=90, weight="bold",
                    edge=CROSS_COLOR if m["example_correct"] else style.EXTRA[2])
    for x0, n in ((xs0, ns), (xt0, nt)):
        for j in range(n):
            ax_a.annotate("", xy=(x0 + j * dx, 1.15), xytext=(x0 + j * dx, 0.97),
                          arrowprops=dict(arrowstyle="-|>", color="black", lw=0.6))
    _stack_box(ax_a, *enc_x, 1.15, 1.65, ENCODER_COLOR, f"embedding + position\n(D = {c['d_model']})")
    _stack_box(ax_a, *enc_x, 1.85, 4.25, ENCODER_COLOR,
               f"{c['n_encoder_layers']} × encoder layer:\n\nself-attention\n({c['n_heads']} heads, no mask)\n"
               f"add & norm\nMLP {c['d_model']}→{c['d_mlp']}→{c['d_model']}\nadd & norm")
    for j in range(ns):  # X_enc: one output vector per source character
        ax_a.add_patch(plt.Rectangle((xs0 + j * dx - 0.13, 4.45), 0.26, 0.65, fc=ENCODER_COLOR, ec="black", lw=0.5))
    ax_a.text(enc_x[0] - 0.1, 4.78, "$X_{enc}$", ha="right", va="center", fontsize=9)
    _stack_box(ax_a, *dec_x, 1.15, 1.65, DECODER_COLOR, f"embedding + position (D = {c['d_model']})")
    _stack_box(ax_a, *dec_x, 1.85, 2.55, DECODER_COLOR,
               f"masked self-attention ({c['n_heads']} heads): t sees ≤ t\nadd & norm")
    _stack_box(ax_a, *dec_x, 2.7, 3.4, CROSS_COLOR, "cross-attention: Q from the decoder,\nK and V from $X_{enc}$; "
               "add & norm", alpha=0.4)
    _stack_box(ax_a, *dec_x, 3.55, 4.25, DECODER_COLOR, f"MLP {c['d_model']}→{c['d_mlp']}→{c['d_model']}\nadd & norm")
    ax_a.annotate("", xy=(dec_x[1] + 0.25, 1.85), xytext=(dec_x[1] + 0.25, 4.25),
                  arrowprops=dict(arrowstyle="-", color=DECODER_COLOR, lw=1.5))
    ax_a.text(dec_x[1] + 0.4, 3.05, f"× {c['n_decoder_layers']}\ndecoder\nlayers", ha="left", va="center",
              fontsize=8)
    _stack_box(ax_a, *dec_x, 4.45, 5.05, DECODER_COLOR, f"linear + softmax over {len(_vocab())} target tokens")
    ax_a.annotate("", xy=(dec_x[0], 3.05), xytext=(xs0 + (ns - 1) * dx + 0.2, 4.78),
                  arrowprops=dict(arrowstyle="-|>", color=CROSS_COLOR, lw=2.2, connectionstyle="arc3,rad=-0.3"))
    ax_a.text((enc_x[1] + dec_x[0]) / 2, 5.3, "keys and values\nfor every decoder layer", color=CROSS_COLOR,
              ha="center", va="bottom", fontsize=7.5)
    verdict = "correct" if m["example_correct"] else f"wrong; truth: \"{m['example_truth']}\""
    ax_a.set_title(f"a) encoder (left) and decoder (right) on the held-out \"{m['example_source']}\": the model "
                   f"writes \"{' '.join(dec_out[:-1]).replace(' - ', '-')}\" ({verdict})", loc="left", fontsize=9)
    ax_a.set(xlim=(enc_x[0] - 1.0, dec_x[1] + 1.6), ylim=(-0.15, 6.3), xticks=[], yticks=[])
    ax_a.spines[["left", "bottom"]].set_visible(False)

    # b) training loss
    losses = a["losses"]
    window = max(1, len(losses) // 50)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    ax_b.semilogy(np.arange(window, len(losses) + 1), smooth, color=style.MODEL, lw=1.2)
    ax_b.set(xlabel="step", ylabel="cross-entropy per target token")
    ax_b.set_title(f"b) training loss ({m['total_parameters']:,} parameters)", loc="left", fontsize=9)

    # c) held-out exact match by number of digits
    d = np.arange(1, len(m["exact_match_by_digits"]) + 1)
    ax_c.bar(d, 100 * np.asarray(m["exact_match_by_digits"]), color=style.MODEL, width=0.7)
    ax_c.axhline(100 * m["exact_match"], color=style.TRUTH, ls="--", lw=0.9, label=f"all: {m['exact_match']:.1%}")
    ax_c.set(xlabel="digits in the number (held-out numbers)", ylabel="exact match (%)", ylim=(0, 105), xticks=d)
    ax_c.set_xticklabels([f"{x}\n({n})" for x, n in zip(d, m["test_count_by_digits"])], fontsize=7.5)
    ax_c.legend(fontsize=7.5, loc="lower left")
    ax_c.set_title(f"c) {m['n_test']} held-out numbers, greedy decoding", loc="left", fontsize=9)

    # d) causal gradient
    G = a["causal_gradient"]
    shown = np.where(G > 0, G, np.nan)
    im = ax_d.imshow(np.log10(shown), cmap=style.CMAP)
    ax_d.imshow(np.where(G == 0, 1.0, np.nan), cmap="Greys", vmin=0, vmax=4)
    labels = ["<bos>", *m["example_truth_tokens"][:-1]]
    ax_d.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel="decoder input t'",
             ylabel="output position t")
    ax_d.set_xticklabels(labels, rotation=90, fontsize=6)
    ax_d.set_yticklabels(labels, fontsize=6)
    fig.colorbar(im, ax=ax_d, label="log$_{10}$ max |∂ logits$_t$ / ∂ $e_{t'}$|", shrink=0.8)
    ax_d.set_title("d) later inputs have zero gradient (gray)", loc="left", fontsize=9)
    return fig


def _vocab():
    return TARGET_VOCAB


@encoder_decoder.checks
def _(r):
    m = r.metrics
    if m["budget"] is None:
        learned = [_untested_budget("held-out exact-match accuracy (greedy) reaches the preset's claim"),
                   _untested_budget("teacher-forced token accuracy on held-out numbers reaches the preset's claim"),
                   _untested_budget("training lowers the loss: final / first")]
    else:
        learned = [
            Check.greater(f"held-out exact-match accuracy (greedy) at this training budget ({m['budget']}) is at "
                          f"least {m['target_exact_match']:.0%}", m["exact_match"], m["target_exact_match"] - 1e-12),
            Check.greater(f"teacher-forced token accuracy on held-out numbers is at least "
                          f"{m['target_token_accuracy']:.0%}", m["token_accuracy"], m["target_token_accuracy"] - 1e-12),
            Check.less("training lowers the loss: final / first", m["final_loss"] / m["first_loss"], 0.5)]
    return learned[:2] + [
        Check.equal("no held-out number is in the training set", m["train_heldout_overlap"], 0),
        Check.less("cross-attention's keys and values are computed from the encoder's output: "
                   "max |context - X_enc| over decoder layers", m["context_vs_encoder_max"], 1e-6),
        Check.less("its queries are computed from the decoder's hidden state: max |query input - decoder state|",
                   m["query_input_vs_decoder_max"], 1e-6),
        Check.equal("keys and values do not depend on the target: ‖∂K/∂e_tgt‖, ‖∂V/∂e_tgt‖ (max over layers)",
                    m["grad_kv_target_max"], 0.0),
        Check.greater("they do depend on the source: min ‖∂K/∂e_src‖, ‖∂V/∂e_src‖", m["grad_kv_source_min"], 0.0),
        Check.equal("first decoder layer: the queries do not depend on the source, ‖∂Q/∂e_src‖",
                    m["grad_q_source_first_layer"], 0.0),
        Check.greater("the queries depend on the target: min ‖∂Q/∂e_tgt‖", m["grad_q_target_min"], 0.0),
        Check.equal("the decoder's output at t does not depend on later target words: max |∂ logits_t / ∂ e_t'|, "
                    "t' > t", m["causal_later_max"], 0.0),
        Check.greater("and does depend on every word up to t: min over t' <= t", m["causal_earlier_min"], 0.0),
        Check.less("source padding changes nothing: max |logits(alone) - logits(in padded batch)|",
                   m["pad_effect"], 1e-5),
        learned[2],
    ]


# --------------------------------------------------------------------------- 12.14
@figure("12.14", title="Cross-attention: decoder queries attend to the encoder's outputs",
        caption="Cross-attention in the trained number translator of fig. 12.13. a) It computes what "
                "self-attention computes, except that the queries come from the decoder's embeddings X_dec and "
                "the keys and values from the encoder's outputs X_enc (sizes as measured for one held-out "
                "example, D/H per head): the source supplies what the sentence says, the decoder what has been "
                "written so far. b-d) Weights of one head for held-out numbers, with the model's own translation "
                "as decoder input: each row is the query that predicts the word on its left and sums to one over "
                "the source characters. The head shown is the one that puts the most weight on the digits each "
                "word names, chosen over the whole held-out set. The words for digits look at the digits they "
                "name; \"hundred\", \"thousand\" and \"million\", which no single digit names, often look at a "
                "comma, where a group of three digits ends. e) The mean weight every "
                "head puts on a word's own digits, against what uniform attention would put there, and the "
                "held-out exact match of greedy decoding and of beam search.",
        params={"tiny": dict(**TRAIN["tiny"], example_digits=[2, 3], beam_width=3),
                "full": dict(**TRAIN["full"], example_digits=[4, 6, 9], beam_width=4)},
        limits={**TRAIN_LIMITS, "example_digits": Limit(1, 9, max_len=4), "beam_width": (1, 16)})
def cross_attention(p, run):
    tr = _translator(p, run)
    model, test = tr.model, tr.data.test
    greedy = evaluate_translation(model, test.src, test.tgt)
    beam = evaluate_translation(model, test.src, test.tgt, strategy="beam", beam_width=p.beam_width)

    # alignment over the held-out set, teacher-forced on the true words: row i predicts word tgt[i + 1]
    tgt_in, tgt_out = test.tgt[:, :-1], test.tgt[:, 1:]
    W = cross_attention_weights(model, test.src, tgt_in)  # (L, B, H, T, S)
    W_mean = W.mean(2)  # (L, B, T, S): the mean over heads
    real = test.src != PAD
    row_sum_error = float((W.sum(-1) - 1).abs().amax(dim=(0, 2))[tgt_out != PAD].max())
    pad_mass = float(W.masked_select(~real[None, :, None, None, :].expand_as(W)).abs().max()) \
        if (~real).any() else 0.0
    n_layers = W.shape[0]
    on_digits = [[] for _ in range(n_layers)]
    chance = []
    best_head = np.zeros((n_layers, W.shape[2]))  # summed weight on the named digits, per layer and head
    n_words = 0
    for b, n in enumerate(test.numbers.tolist()):
        align = target_alignment(int(n))
        n_src = int(real[b].sum())
        for i, positions in enumerate(align):  # query row i predicts word i
            idx = list(positions)
            for layer in range(n_layers):
                on_digits[layer].append(float(W_mean[layer, b, i, idx].sum()))
            best_head += W[:, b, :, i, idx].sum(-1).numpy()
            chance.append(len(idx) / n_src)
            n_words += 1
    alignment = [float(np.mean(v)) for v in on_digits]
    head_alignment = best_head / n_words  # (L, H)
    chance_mass = float(np.mean(chance))
    layer, head = np.unravel_index(int(np.argmax(head_alignment)), head_alignment.shape)  # chosen on the test set

    # beam vs greedy: the log-probability of what each finds
    tokens, scores = beam_search(model, test.src, beam_width=p.beam_width)
    beam_logp = scores[:, 0]
    greedy_logp = _log_probs(model, test.src, greedy.predictions, BOS, EOS)
    beam_not_worse = float((beam_logp >= greedy_logp - 1e-6).double().mean())

    examples = []
    arrays = {}
    for k, digits in enumerate(p.example_digits):
        i = _example(test, digits)
        words = _words(greedy.predictions[i])
        ids = greedy.predictions[i:i + 1, :len(words)]
        dec_in = torch.cat([torch.full((1, 1), BOS), ids[:, :-1]], 1)  # the inputs that produced the translation
        n_src = int(real[i].sum())
        w = cross_attention_weights(model, test.src[i:i + 1, :n_src], dec_in)[layer, 0, head]  # (T, S)
        arrays[f"weights_{k}"] = w.numpy()
        examples.append({"number": int(test.numbers[i]), "source": "".join(_source_chars(test.src[i])),
                         "tokens": words, "correct": bool(greedy.correct[i])})
    metrics = {
        "budget": _budget(p), "n_test": len(test.numbers), "beam_width": p.beam_width,
        "exact_match_greedy": greedy.exact_match, "exact_match_beam": beam.exact_match,
        "beam_minus_greedy": beam.exact_match - greedy.exact_match, "beam_not_worse_fraction": beam_not_worse,
        "mean_logp_greedy": float(greedy_logp.mean()), "mean_logp_beam": float(beam_logp.mean()),
        "row_sum_error": row_sum_error, "padding_weight_max": pad_mass,
        "alignment_by_layer": alignment, "alignment_last_layer": alignment[-1], "alignment_best_layer": max(alignment),
        "alignment_chance": chance_mass, "alignment_best_head": float(head_alignment.max()),
        "head_alignment": head_alignment.tolist(), "best_head": [int(layer) + 1, int(head) + 1],
        "n_words": n_words, "examples": examples,
        "query_shape": [int(len(examples[-1]["tokens"])), int(model.config.d_model)],
        "key_shape": [len(examples[-1]["source"]), int(model.config.d_model)],
        "n_heads": int(model.config.n_heads), "d_model": int(model.config.d_model),
    }
    notes = ("Alignment: the attention weight a query row puts on the source characters of the digits its word "
             "names (udl.data.numbers.target_alignment), averaged over every word of the held-out set with the "
             "true words as decoder inputs; chance is the number of those characters over the source length.")
    return Result(metrics=metrics, arrays=arrays, notes=notes)


def _source_chars(ids) -> list[str]:
    return [SOURCE_VOCAB[int(i)] for i in ids if int(i) != PAD]


@torch.no_grad()
def _log_probs(model, src, predictions, bos, eos):
    """Σ log Pr(y_t | y_<t, x) of each predicted sentence up to and including <eos> (teacher forcing)."""
    device = next(model.parameters()).device
    src, predictions = src.to(device), predictions.to(device)
    tgt_in = torch.cat([torch.full((len(src), 1), bos, device=device), predictions[:, :-1]], 1)  # (B, L)
    logp = torch.log_softmax(model(src, tgt_in).double(), -1).gather(-1, predictions[..., None])[..., 0]  # (B, L)
    is_eos = predictions == eos
    after = (torch.cumsum(is_eos, 1) - is_eos.long()) > 0  # positions after the first <eos>
    return logp.masked_fill(after, 0.0).sum(1).cpu()  # (B,)


@cross_attention.requires
def _(p):
    _check_translator("12.14", p, p.example_digits)


@cross_attention.plot
def _(r):
    m, a = r.metrics, r.arrays
    examples = m["examples"]
    k = len(examples)
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(3.6 * (k + 2), 4.4), layout="constrained")
        grid = fig.add_gridspec(1, k + 2, width_ratios=[1.35] + [1] * k + [0.9])
        ax_a = fig.add_subplot(grid[0])
        axes = [fig.add_subplot(grid[1 + j]) for j in range(k)]
        ax_e = fig.add_subplot(grid[-1])

    # a) the computation, with measured sizes
    T, D = m["query_shape"]
    S = m["key_shape"][0]
    q = D // m["n_heads"]
    nodes = {"xdec": ((0.2, 0.07), f"$X_{{dec}}$\n{T}×{D}", DECODER_COLOR),
             "xenc": ((0.72, 0.07), f"$X_{{enc}}$\n{S}×{D}", ENCODER_COLOR),
             "q": ((0.2, 0.36), f"Q = $X_{{dec}}Ω_q + β_q$\n{T}×{D}", DECODER_COLOR),
             "k": ((0.56, 0.36), f"K = $X_{{enc}}Ω_k + β_k$\n{S}×{D}", ENCODER_COLOR),
             "v": ((0.9, 0.36), f"V = $X_{{enc}}Ω_v + β_v$\n{S}×{D}", ENCODER_COLOR),
             "a": ((0.36, 0.64), f"weights, per head:\nsoftmax over the source\nof Q Kᵀ / √{q}: {T}×{S}", CROSS_COLOR),
             "out": ((0.62, 0.9), f"weights · V, heads joined\nand mixed by $Ω_c$: {T}×{D}", CROSS_COLOR)}
    for (x, y), text, color in nodes.values():
        ax_a.text(x, y, text, ha="center", va="center", fontsize=7.5, transform=ax_a.transAxes,
                  bbox=dict(boxstyle="round,pad=0.35", fc=color, alpha=0.25, ec=color))
    for a_, b_ in (("xdec", "q"), ("xenc", "k"), ("xenc", "v"), ("q", "a"), ("k", "a"), ("a", "out"), ("v", "out")):
        (x0, y0), (x1, y1) = nodes[a_][0], nodes[b_][0]
        ax_a.annotate("", xy=(x1, y1 - 0.075), xytext=(x0, y0 + 0.075), xycoords="axes fraction",
                      arrowprops=dict(arrowstyle="-|>", lw=0.8, color="black", shrinkA=0, shrinkB=0))
    ax_a.set(xlim=(0, 1), ylim=(0, 1))
    ax_a.axis("off")
    ax_a.set_title("a) cross-attention", loc="left", fontsize=9)

    # b...) weights for held-out examples
    for j, (ax, ex) in enumerate(zip(axes, examples)):
        w = a[f"weights_{j}"]
        im = ax.imshow(w, cmap="Oranges", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(ex["source"])), list(ex["source"]), fontsize=8)
        ax.set_yticks(range(len(ex["tokens"])), ex["tokens"], fontsize=7)
        ax.set_xlabel("source character (key, value)")
        mark = "✓" if ex["correct"] else "✗"
        ax.set_title(f"{chr(ord('b') + j)}) {ex['source']} {mark}", loc="left", fontsize=9)
    layer, head = m["best_head"]
    axes[0].set_ylabel(f"predicted word (query); layer {layer}, head {head}")
    fig.colorbar(im, ax=axes[-1], label="attention weight", shrink=0.8)

    # e) alignment per layer and head vs chance
    H = np.asarray(m["head_alignment"])  # (L, H)
    n_layers, n_heads = H.shape
    width = 0.8 / n_heads
    for h in range(n_heads):
        x = np.arange(1, n_layers + 1) - 0.4 + (h + 0.5) * width
        ax_e.bar(x, H[:, h], width=0.9 * width, color=CROSS_COLOR, alpha=0.45 + 0.55 * (h + 1) / n_heads,
                 label="heads, in order" if h == 0 else None)
    ax_e.plot(np.arange(1, n_layers + 1), m["alignment_by_layer"], "s", color=style.TRUTH, ms=5,
              label="mean over heads")
    ax_e.axhline(m["alignment_chance"], color=style.TRUTH, ls="--", lw=0.9, label="uniform attention")
    ax_e.set(xticks=np.arange(1, n_layers + 1), xlabel="decoder layer",
             ylabel="mean weight on the word's own digits", ylim=(0, 1))
    ax_e.legend(fontsize=7, loc="upper left")
    ax_e.set_title(f"{chr(ord('b') + k)}) alignment; exact match\ngreedy {m['exact_match_greedy']:.1%}, "
                   f"beam (W={m['beam_width']}) {m['exact_match_beam']:.1%}", loc="left", fontsize=9)
    return fig


@cross_attention.checks
def _(r):
    m = r.metrics
    alignment = ("words attend to the digits they name: the best decoder layer's weight on them (mean over heads) / "
                 "uniform attention's")
    return [
        Check.less("each query's cross-attention weights sum to one over the source: max |Σ_s a - 1|",
                   m["row_sum_error"], 1e-5),
        Check.equal("no weight on source padding", m["padding_weight_max"], 0.0),
        Check.greater(alignment, m["alignment_best_layer"] / m["alignment_chance"], 1.5) if m["budget"] else
        _untested_budget(alignment),
        Check.greater("beam search finds translations at least as likely as greedy decoding's (share of held-out "
                      "numbers, up to 1e-6 in log-probability)", m["beam_not_worse_fraction"], 0.99),
        Check.greater("beam search's exact match is within one point of greedy decoding's or better",
                      m["beam_minus_greedy"], -0.01),
    ]
