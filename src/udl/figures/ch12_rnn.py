"""Chapter 12 notes: recurrent networks unrolled over a sentence, and how they forget (figure 12.19)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LinearSegmentedColormap

from udl import drawing, style
from udl.analysis.ngram import UnigramModel
from udl.data.sequences import first_token_task
from udl.data.text import python_docs_tokenizer, sentences, token_ids
from udl.models.gpt import language_model_windows, lm_loss
from udl.models.recurrent import RecurrentNetwork, last_step_cross_entropy, step_gradient_norms
from udl.nn.recurrent import GRU
from udl.registry import Check, Limit, Result, figure
from udl.train.recipes import fit_adamw

KINDS = ("elman", "lstm")
NAMES = {"elman": "Elman RNN", "lstm": "LSTM"}
_TEST_SEED = 10_000  # the held-out sequences' seed: never the training set's
EQUAL_TOL = 1e-5  # float32: udl's layers against torch's with the same weights, relative to the largest value
N_GRADIENT = 256  # held-out sequences whose input gradients are averaged
MIN_TASK_STEPS = 300  # the least training the accuracy claim is tested with
MIN_FORGET_LENGTH = 50  # ... and the least longest length (an Elman RNN of 32 units learned T = 40 here)
MIN_LM_STEPS = 200  # the least training the language model's held-out claim is tested with


def _colors() -> dict[str, str]:
    return {"elman": style.EXTRA[0], "lstm": style.MODEL}


def _whole_word(piece: str) -> bool:
    """A BPE token that is a whole word followed by a space: letters, then the end-of-word marker."""
    return piece.endswith("\u2581") and piece[:-1].isalpha()


def _sentence_start(tokenizer, n_words: int, rng: np.random.Generator) -> list[int]:
    """The first ``n_words`` tokens of a held-out sentence whose first ``n_words`` words are one token each."""
    starts = []
    for sentence in sentences("validation"):
        ids = tokenizer.encode(sentence)[:n_words]
        if len(ids) == n_words and all(_whole_word(tokenizer.id_to_token(i)) for i in ids):
            starts.append(ids)
    if not starts:  # a small vocabulary splits most words: take the first tokens of the first sentence
        return tokenizer.encode(sentences("validation")[0])[:n_words]
    return starts[int(rng.integers(len(starts)))]


def _train(model, data, loss, *, steps, batch_size, lr, seed, device) -> list[float]:
    """AdamW (no weight decay) with a 10% warm-up and a cosine decay to lr/10, gradient norm clipped to 1."""
    return fit_adamw(model, data, loss, steps=steps, lr=lr, weight_decay=0.0, floor=0.1, batch_size=batch_size,
                     seed=seed, device=device, clip_grad_norm=1.0, progress=False)


@torch.no_grad()
def _held_out_cross_entropy(model, tokens: torch.Tensor, context: int) -> tuple[float, torch.Tensor]:
    """Mean −log Pr(next token) over non-overlapping windows of held-out text, and the targets scored."""
    x, y = language_model_windows(tokens, context, stride=context + 1)
    return float(lm_loss(model(x), y)), y.flatten()


def _shown(token: str) -> str:
    """A token as the figure prints it: without the end-of-word marker, whitespace made visible."""
    text = token.replace("\u2581", "")
    return text if text.strip() else repr(token)[1:-1].replace(" ", "\u2423").replace("\u2581", "\u2423")


def _slope(norms: np.ndarray) -> float:
    """Least-squares slope of log ‖∂L/∂x_t‖ against the distance T - 1 - t to the output (per step)."""
    distance = np.arange(len(norms))[::-1]
    return float(np.polyfit(distance, np.log(np.maximum(norms, 1e-300)), 1)[0])


def _tensors(result) -> list[torch.Tensor]:
    """The tensors of a recurrent layer's result, ``(output, h_n)`` or ``(output, (h_n, c_n))``, in order."""
    if isinstance(result, torch.Tensor):
        return [result]
    return [t for item in result for t in _tensors(item)]


def _max_difference(ours, theirs) -> float:
    """The largest |difference| of two layers' results, relative to the largest |value| (at least 1) of each
    tensor: an LSTM's cell state can grow to tens, where float32 keeps about six digits."""
    return max(float((a - b).abs().max() / b.abs().max().clamp(min=1.0))
               for a, b in zip(_tensors(ours), _tensors(theirs)))


# =========================================================================== 12.19
@figure("12.19", title="Recurrent networks: one network applied word by word, and how it forgets",
        caption="a) An Elman recurrent network, trained briefly as a language model on the Python reference "
                "manual, reads the start of a held-out sentence one token at a time. Each token's embedding "
                "(orange column) enters the same network (cyan boxes, one set of weights); the network hands "
                "its hidden state (orange arrows) to the next step and also outputs it (cyan column), and a "
                "linear layer turns that output into a guess of the next token (top, with its probability). "
                "b) How much each output depends on each input of the same sentence, ‖∂h_t/∂x_s‖: nothing "
                "later than the word itself (zero above the diagonal), and less and less for words further "
                "back. c) A task that needs memory: the label is the first token, and every token after it is "
                "a random distractor, so only the final output is classified. Held-out accuracy against the "
                "sequence length for an Elman network and an LSTM of the same width, trained with the same "
                "steps (dotted: chance). d) The gradient of the loss reaching input step t, against the "
                "distance to the output, at initialisation (dashed) and after training (solid) at the longest "
                "length; the legend gives the fitted decay per step (after training a solved task's loss, and with it every gradient, is near zero: the slope is what matters). The Elman network's gradient vanishes "
                "geometrically, so it cannot learn to carry the first token far; the LSTM's gated cell keeps "
                "it.",
        params={"tiny": dict(vocab_size=2000, lm_context=12, lm_embed=12, lm_hidden=12, lm_steps=30, lm_batch=16,
                             lm_lr=5e-3, n_words=6, lengths=[3, 8], task_vocab=10, n_classes=2, task_embed=8,
                             task_hidden=12, task_steps=30, task_batch=64, task_lr=0.01, forget_bias=2.0,
                             n_train=1024, n_test=256),
                "full": dict(vocab_size=2000, lm_context=24, lm_embed=32, lm_hidden=48, lm_steps=400, lm_batch=32,
                             lm_lr=5e-3, n_words=8, lengths=[5, 20, 60], task_vocab=10, n_classes=2, task_embed=8,
                             task_hidden=32, task_steps=400, task_batch=256, task_lr=0.01, forget_bias=2.0,
                             n_train=16384, n_test=2048)},
        # the tokenizer's base vocabulary (~370) to the ~7,900 tokens the manual has pairs for; sequences short
        # enough for a loop over time in Python on a CPU
        limits={"vocab_size": (400, 8000), "lm_context": (2, 256), "lm_embed": (1, 256), "lm_hidden": (1, 256),
                "lm_steps": (1, 20_000), "lm_batch": (1, 512), "lm_lr": (1e-6, 1.0), "n_words": (2, 16),
                "lengths": Limit(1, 400, max_len=8), "task_vocab": (3, 1000), "n_classes": (2, 100),
                "task_embed": (1, 256), "task_hidden": (1, 256), "task_steps": (1, 20_000), "task_batch": (1, 2048),
                "task_lr": (1e-6, 1.0), "forget_bias": (-10.0, 10.0), "n_train": (1, 100_000),
                "n_test": (1, 100_000)})
def recurrent_networks(p, run):
    device = run.device
    # ---- a) a language model on real text, unrolled over the start of a held-out sentence
    tokenizer = python_docs_tokenizer(p.vocab_size)
    train_ids, held_out = token_ids("train", tokenizer), token_ids("validation", tokenizer)
    lm = RecurrentNetwork(p.vocab_size, p.lm_embed, p.lm_hidden, p.vocab_size, kind="elman",
                          generator=run.generator(1))
    lm_losses = _train(lm, language_model_windows(train_ids, p.lm_context), lm_loss, steps=p.lm_steps,
                       batch_size=p.lm_batch, lr=p.lm_lr, seed=run.seed, device=device)
    lm.cpu().eval()
    lm_ce, targets = _held_out_cross_entropy(lm, held_out, p.lm_context)
    unigram = UnigramModel(p.vocab_size).fit(train_ids.numpy())

    ids = _sentence_start(tokenizer, p.n_words, run.rng)
    tokens = torch.tensor([ids])
    x = lm.embed(tokens).detach().requires_grad_()  # (1, N, D): the word embeddings
    outputs, hidden = lm.from_embeddings(x)  # (1, N, |V|), (1, N, H)
    n = len(ids)
    # the whole Jacobian ∂h_t/∂x_s, (N, H, N, D), and its Frobenius norm for every pair (t, s)
    full = torch.autograd.functional.jacobian(lambda e: lm.from_embeddings(e[None])[1][0], x[0].detach(),
                                              vectorize=True)  # (N, H, N, D)
    jacobian = full.pow(2).sum((1, 3)).sqrt().numpy()  # (N, N): [t, s] = ‖∂h_t/∂x_s‖
    cell = lm.recurrent.layers[0]
    h, unrolled = torch.zeros(1, p.lm_hidden), []
    with torch.no_grad():
        for t in range(n):  # the same cell at every step, its last output fed back
            h = cell(x[:, t], h)
            unrolled.append(h)
        unrolled = torch.stack(unrolled, 1)
        probs = torch.softmax(outputs[0].double(), -1)  # (N, |V|)
        top_p, top_i = probs.max(-1)
        torch_rnn = lm.recurrent.to_torch()
        rnn_difference = _max_difference(lm.recurrent(x), torch_rnn(x))

    # ---- c, d) the first-token task at several lengths, for an Elman network and an LSTM
    lengths = sorted(set(p.lengths))
    longest = lengths[-1]
    accuracy = {k: [] for k in KINDS}
    final_loss = {k: [] for k in KINDS}
    norms = {}
    options = {"elman": {}, "lstm": {"forget_bias": p.forget_bias}}
    torch_difference = {}
    for i, length in enumerate(run.progress(lengths, desc="lengths")):
        train = first_token_task(p.n_train, length, n_classes=p.n_classes, vocab_size=p.task_vocab, seed=run.seed)
        x_test, y_test = first_token_task(p.n_test, length, n_classes=p.n_classes, vocab_size=p.task_vocab,
                                          seed=run.seed + _TEST_SEED)
        for kind in KINDS:
            net = RecurrentNetwork(p.task_vocab, p.task_embed, p.task_hidden, p.n_classes, kind=kind,
                                   generator=run.generator(100 + i), **options[kind])
            if length == longest:
                norms[f"{kind}_init"] = step_gradient_norms(net, x_test[:N_GRADIENT], y_test[:N_GRADIENT]).numpy()
            losses = _train(net, train, last_step_cross_entropy, steps=p.task_steps,
                            batch_size=min(p.task_batch, p.n_train), lr=p.task_lr, seed=run.seed + i, device=device)
            net.cpu().eval()
            with torch.no_grad():
                accuracy[kind].append(float((net(x_test)[:, -1].argmax(-1) == y_test).float().mean()))
            final_loss[kind].append(float(np.mean(losses[-max(1, len(losses) // 20):])))
            if length == longest:
                norms[f"{kind}_trained"] = step_gradient_norms(net, x_test[:N_GRADIENT], y_test[:N_GRADIENT]).numpy()
                with torch.no_grad():
                    xs = net.embed(x_test[:64])
                    torch_difference[kind] = _max_difference(net.recurrent(xs), net.recurrent.to_torch()(xs))
    # the LSTM with torch's initial values (no forget bias): its gradient at initialisation
    plain = RecurrentNetwork(p.task_vocab, p.task_embed, p.task_hidden, p.n_classes, kind="lstm",
                             generator=run.generator(100 + len(lengths) - 1))
    x_test, y_test = first_token_task(N_GRADIENT, longest, n_classes=p.n_classes, vocab_size=p.task_vocab,
                                      seed=run.seed + _TEST_SEED)
    norms["lstm_torch_init"] = step_gradient_norms(plain, x_test, y_test).numpy()
    # a GRU with random weights against torch.nn.GRU (the figure trains none)
    gru = GRU(p.task_embed, p.task_hidden, n_layers=2, generator=run.generator(7))
    xs = torch.randn(4, longest, p.task_embed, generator=run.generator(8))
    with torch.no_grad():
        torch_difference["gru"] = _max_difference(gru(xs), gru.to_torch()(xs))
    torch_difference["elman_lm"] = rnn_difference

    slopes = {name: _slope(v) if longest >= 3 else float("nan") for name, v in norms.items()}
    metrics = {
        "sentence_tokens": [_shown(tokenizer.id_to_token(i)) for i in ids],
        "predicted_tokens": [_shown(tokenizer.id_to_token(int(i))) for i in top_i],
        "predicted_probs": top_p.tolist(),
        "lm_parameters": sum(q.numel() for q in lm.parameters()), "lm_steps": len(lm_losses),
        "lm_held_out_cross_entropy": lm_ce, "unigram_cross_entropy": unigram.cross_entropy(targets.numpy()),
        "uniform_cross_entropy": math.log(p.vocab_size), "held_out_tokens_scored": len(targets),
        "lm_first_loss": float(np.mean(lm_losses[:max(1, len(lm_losses) // 20)])),
        "lm_final_loss": float(np.mean(lm_losses[-max(1, len(lm_losses) // 20):])),
        "unrolled_difference": float((unrolled - hidden.detach()).abs().max()),
        "future_dependence": float(np.triu(jacobian, 1).max()) if n > 1 else 0.0,
        "least_past_dependence": float(np.tril(jacobian)[np.tril_indices(n)].min()),
        "lengths": lengths, "chance": 1.0 / p.n_classes,
        **{f"{k}_accuracy": accuracy[k] for k in KINDS},
        **{f"{k}_final_loss": final_loss[k] for k in KINDS},
        **{f"slope_{name}": s for name, s in slopes.items()},
        **{f"decay_per_step_{name}": math.exp(s) if math.isfinite(s) else float("nan") for name, s in slopes.items()},
        **{f"torch_difference_{k}": v for k, v in torch_difference.items()},
    }
    arrays = {"embeddings": x[0].detach().numpy(), "hidden": hidden[0].detach().numpy(), "jacobian": jacobian,
              "lm_losses": np.asarray(lm_losses, dtype=np.float32),
              **{f"norms_{k}": v for k, v in norms.items()}}
    return Result(metrics=metrics, arrays=arrays,
                  notes="The book draws the idea; here every number comes from trained udl networks "
                        "(udl.nn.recurrent, written from the equations and equal to torch.nn.RNN, LSTM and GRU). "
                        f"a) An Elman network (tanh, H = {p.lm_hidden}) over byte-pair tokens ({p.vocab_size:,}) "
                        f"of the manual, {p.lm_steps} AdamW steps on windows of {p.lm_context} tokens; the "
                        "sentence is the start of a held-out one whose first words are single tokens, and each "
                        "column shows all of an embedding's or a hidden state's entries. c, d) "
                        f"{p.n_classes} label tokens, {p.task_vocab - p.n_classes} distractor tokens, "
                        f"{p.n_train:,} training and {p.n_test:,} held-out sequences per length, H = "
                        f"{p.task_hidden}, {p.task_steps} AdamW steps of {p.task_batch} for both networks. The "
                        f"LSTM's forget-gate bias starts at {p.forget_bias:g} (f_t ≈ σ[{p.forget_bias:g}] = "
                        f"{1 / (1 + math.exp(-p.forget_bias)):.2f}), a common initialisation; with torch's "
                        "initial values its gradient at initialisation decays by "
                        f"{metrics['decay_per_step_lstm_torch_init']:.3f} per step (the Elman network's: "
                        f"{metrics['decay_per_step_elman_init']:.3f}).")


@recurrent_networks.requires
def _(p):
    if p.n_classes >= p.task_vocab:
        raise ValueError(f"The 'task_vocab' parameter of figure 12.19 must exceed n_classes ({p.n_classes}): the "
                         f"distractors are the other tokens. Got {p.task_vocab} instead.")


@recurrent_networks.plot
def _(r):
    m, a = r.metrics, r.arrays
    colors = _colors()
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(11, 8.2), layout="constrained")
        grid = fig.add_gridspec(2, 3, height_ratios=[1.25, 1])
        ax = fig.add_subplot(grid[0, :])
        ax_jac, ax_acc, ax_grad = (fig.add_subplot(grid[1, j]) for j in range(3))
    _draw_unrolled(ax, m, a)

    jac = a["jacobian"]
    n = len(jac)
    shown = np.where(jac > 0, jac, np.nan)
    image = ax_jac.imshow(np.log10(shown), cmap=style.CMAP)
    fig.colorbar(image, ax=ax_jac, shrink=0.8, label="log₁₀ ‖∂h_t/∂x_s‖")
    ax_jac.set(xticks=range(n), yticks=range(n), xlabel="input word s", ylabel="output h_t")
    ax_jac.set_title("each output depends on its past", loc="right", fontsize=9)
    ax_jac.set_xticklabels(m["sentence_tokens"], rotation=60, fontsize=7)
    ax_jac.set_yticklabels(m["sentence_tokens"], fontsize=7)
    for t in range(n):
        for s in range(t + 1, n):
            ax_jac.text(s, t, "0", ha="center", va="center", fontsize=6, color=style.REGION)

    lengths = m["lengths"]
    for k in KINDS:
        ax_acc.plot(lengths, m[f"{k}_accuracy"], "o-", color=colors[k], label=NAMES[k])
    ax_acc.axhline(m["chance"], color=style.TRUTH, ls=":", lw=1, label="chance")
    ax_acc.set(xlabel="sequence length T", ylabel="held-out accuracy", ylim=(0, 1.05))
    ax_acc.set_title("label: the first token", loc="right", fontsize=9)
    ax_acc.legend(fontsize=7, loc="lower left")

    for k in KINDS:
        for stage, ls in (("init", "--"), ("trained", "-")):
            v = a[f"norms_{k}_{stage}"]
            distance = np.arange(len(v))[::-1]
            factor = m[f"decay_per_step_{k}_{stage}"]
            ax_grad.semilogy(distance, v, ls=ls, color=colors[k],
                             label=f"{NAMES[k]}, {'initial' if stage == 'init' else 'trained'}: ×{factor:.2f}/step")
    ax_grad.set(xlabel="distance T − 1 − t to the output", ylabel="mean ‖∂L/∂x_t‖")
    ax_grad.set_title(f"gradient to step t, T = {lengths[-1]}", loc="right", fontsize=9)
    ax_grad.legend(fontsize=6.5, loc="lower left")
    style.panel_labels(np.array([ax, ax_jac, ax_acc, ax_grad]))
    return fig


def _draw_unrolled(ax, m, a):
    """Fig. 12.19 drawn from the run: tokens, embeddings, one network per step, hidden states, guesses."""
    tokens, emb, hid = m["sentence_tokens"], a["embeddings"], a["hidden"]
    n = len(tokens)
    step = 1.6
    ax.set(xlim=(-1.0, step * n - 0.4), ylim=(-0.5, 9.6))
    ax.axis("off")
    cmap = LinearSegmentedColormap.from_list("udl_signed", [style.MODEL, "white", style.DATA])
    e_max, h_max = float(np.abs(emb).max()) or 1.0, float(np.abs(hid).max()) or 1.0
    for t in range(n):
        cx = step * t
        drawing.box(ax, cx, 0.0, 1.3, 0.55, tokens[t], face="#F5F5F5", fontsize=8)
        ax.imshow(emb[t][:, None], extent=(cx - 0.18, cx + 0.18, 0.6, 2.6), cmap=cmap, vmin=-e_max, vmax=e_max,
                  aspect="auto", zorder=2)
        drawing.arrow(ax, (cx, 2.65), (cx, 3.15), color="gray", lw=0.8)
        drawing.box(ax, cx, 3.6, 1.0, 0.8, "RNN", face=style.MODEL, fontsize=8, weight="bold",
                    boxstyle="round,pad=0.02,rounding_size=0.1", zorder=2)
        if t + 1 < n:
            drawing.arrow(ax, (cx + 0.5, 3.6), (cx + step - 0.5, 3.6), color=style.DATA, lw=1.8)
        drawing.arrow(ax, (cx, 4.05), (cx, 4.55), color="gray", lw=0.8)
        ax.imshow(hid[t][:, None], extent=(cx - 0.18, cx + 0.18, 4.6, 7.4), cmap=cmap, vmin=-h_max, vmax=h_max,
                  aspect="auto", zorder=2)
        drawing.arrow(ax, (cx, 7.45), (cx, 7.95), color="gray", lw=0.8)
        drawing.box(ax, cx, 8.35, 1.45, 0.6, f"{m['predicted_tokens'][t]}\n{m['predicted_probs'][t]:.2f}",
                    face="#E8F7FA", fontsize=6.5)
    ax.annotate("h₀ = 0", (-0.5, 3.6), (-1.0, 3.6), fontsize=7, va="center",
                arrowprops=dict(arrowstyle="-|>", color=style.DATA, lw=1.2))
    ax.text(-0.95, 1.6, "word\nembeddings", fontsize=7, ha="left", va="center")
    ax.text(-0.95, 6.0, "output\nembeddings\n(hidden\nstates)", fontsize=7, ha="left", va="center")
    ax.text(-0.95, 8.35, "next token?", fontsize=7, ha="left", va="center")
    ax.set_title(f"an Elman network ({m['lm_parameters']:,} parameters, {m['lm_steps']} steps) unrolled over a "
                 f"held-out sentence: held-out cross-entropy {m['lm_held_out_cross_entropy']:.2f} nats per token "
                 f"(unigram {m['unigram_cross_entropy']:.2f})", fontsize=9, loc="right")


@recurrent_networks.checks
def _(r):
    m, p = r.metrics, r.params
    lengths, chance = m["lengths"], m["chance"]
    checks = [
        Check.less(f"udl's Elman RNN, LSTM and GRU equal torch.nn.RNN, LSTM and GRU with the same weights "
                   f"(max |difference| of outputs and final states over the largest |value| (at least 1), float32)",
                   max(m[f"torch_difference_{k}"] for k in ("elman_lm", "elman", "lstm", "gru")), EQUAL_TOL),
        Check.less("the unrolled chain (the same cell at every step, its hidden state fed to the next) gives the "
                   "network's outputs", m["unrolled_difference"], 1e-6),
        Check.equal("no output depends on a later word (∂h_t/∂x_s = 0 for s > t)", m["future_dependence"], 0.0),
        Check.greater("every output depends on its own word and every earlier word (least ‖∂h_t/∂x_s‖, s ≤ t)",
                      m["least_past_dependence"], 0.0),
    ]
    claim = (f"the trained language model's held-out cross-entropy is below the unigram model's "
             f"({m['unigram_cross_entropy']:.3f} nats): its outputs use the preceding words")
    if p["lm_steps"] < MIN_LM_STEPS:
        checks.append(Check.untested(claim, f"needs at least {MIN_LM_STEPS} training steps; here {p['lm_steps']}"))
    else:
        checks.append(Check.less(claim, m["lm_held_out_cross_entropy"], m["unigram_cross_entropy"]))

    claim = "the Elman RNN's gradient to early inputs decays faster per step than the LSTM's (at initialisation)"
    if lengths[-1] < 3:
        checks.append(Check.untested(claim, f"needs a length of at least 3 to fit a slope; longest {lengths[-1]}"))
    else:
        checks.append(Check.less(claim, m["slope_elman_init"], m["slope_lstm_init"]))
        checks.append(Check.less("... also against an LSTM with torch's initial values (no forget-gate bias)",
                                 m["slope_elman_init"], m["slope_lstm_torch_init"]))

    claim = ("the LSTM reaches at least 0.95 held-out accuracy at a length where the Elman RNN stays near chance "
             f"(within 0.1 of {chance:g})")
    if p["task_steps"] < MIN_TASK_STEPS or lengths[-1] < MIN_FORGET_LENGTH:
        checks.append(Check.untested(claim, f"needs at least {MIN_TASK_STEPS} training steps and a length of at "
                                            f"least {MIN_FORGET_LENGTH}; here {p['task_steps']} steps, longest "
                                            f"{lengths[-1]}"))
    else:
        found = [T for T, e, l in zip(lengths, m["elman_accuracy"], m["lstm_accuracy"])
                 if l >= 0.95 and e <= chance + 0.1]
        checks.append(Check.holds(claim, bool(found), {"lengths": lengths, "elman": m["elman_accuracy"],
                                                       "lstm": m["lstm_accuracy"]}, "some length"))
    return checks
