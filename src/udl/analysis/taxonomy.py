"""Where each unsupervised model of udl sits in the book's taxonomy, measured by calling it (UDL §14.1, fig. 14.1).

The book sorts unsupervised models by three questions. A *generative* model can draw
new examples. A *probabilistic* generative model also defines a distribution
Pr(x) over the data, so the probability of an example can be evaluated (exactly, or
through a bound). A *latent variable* model maps an underlying variable z to the data
(and often back); any of the three kinds may have one.

Here each question is answered by calling the model, not by a label attached to it:

- **samples**: the model's sampler is called; the answer is yes when it returns finite
  values of the data's shape (tokens within the vocabulary for a language model).
- **probability**: the model's own evaluator is called on *every* point of a small data
  space and the probabilities are added up (a quadrature for a continuous density, a
  sum over all values for discrete data): ``"exact"`` when they total one. A model whose
  evaluator is a lower bound (the VAE's and diffusion model's ELBO) shows it: the bound's
  probabilities total less than one, while the importance-sampled estimate
  (1/K) Σ_k Pr(x, z_k) / q(z_k | x), z_k ~ q(z | x), whose expectation is Pr(x)
  exactly, totals one; that is ``"bound"``. ``"none"``: the model offers no evaluator,
  and where it maps a low-dimensional z to the data the rank of that map's Jacobian
  shows that its samples fill a surface of zero volume (no density exists).
- **latent**: the model's map from its latent variable to the data is called, and the
  shapes at both ends are reported.

Each probe knows *how* to call one kind of model (udl's models have different
interfaces); what the model can do is what the calls return. Normalizing flows
(chapter 16) are not implemented in udl, so none is probed.

Example::

    >>> rows = probe_systems()
    >>> {r["name"]: region(r) for r in rows}["GPT decoder (language model)"]
    ('probabilistic', False)
"""

from __future__ import annotations

import importlib
import inspect
import math
from typing import Any, Callable

import numpy as np
import torch

from udl.systems import SYSTEMS, System
from udl.validate import (_refuse, as_generator, check_callable, check_float, check_instance, check_int,
                          check_sequence, check_tensor)

__all__ = ["probe", "probe_systems", "region", "diffusion_log_weights", "jacobian_rank", "PROBES",
           "MASS_TOL", "IS_MASS_TOL"]

MASS_TOL = 1e-6  # an exact evaluator's probabilities total one within this
IS_MASS_TOL = 0.05  # the importance-sampled estimate totals one within this (it is a Monte Carlo sum)
BOUND_GAP = 1e-3  # a bound's probabilities total at most 1 - this
N_SAMPLES = 64  # samples drawn to test a sampler


# --------------------------------------------------------------------------- helpers
def jacobian_rank(fn: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, *, rtol: float = 1e-6) -> int:
    """The rank of ∂fn(z)/∂z at one latent ``z`` ``(D_z,)``: the dimension of the surface fn's outputs fill there.

    Singular values below ``rtol`` times the largest count as zero. Computed in float64.
    """
    owner = "jacobian_rank"
    check_callable(fn, "fn", owner)
    check_tensor(z, "z", owner, shape=("D_z",), dtype="float")
    check_float(rtol, "rtol", owner, low=0.0, high=1.0, low_open=True, high_open=True)
    z = z.detach().double()
    jac = torch.autograd.functional.jacobian(lambda v: fn(v[None]).reshape(-1), z)  # (D, D_z)
    s = torch.linalg.svdvals(jac)
    return int((s > rtol * s.max()).sum()) if float(s.max()) > 0 else 0


def _log_normal(x: torch.Tensor, mean: torch.Tensor, var: float) -> torch.Tensor:
    """log Norm_x[mean, var I], summed over the last axis."""
    return -0.5 * (((x - mean) ** 2) / var + math.log(2 * math.pi * var)).sum(-1)


def diffusion_log_weights(process, denoiser: torch.nn.Module, x: torch.Tensor, n_samples: int, *,
                          generator: torch.Generator | int | None = 0) -> torch.Tensor:
    """log w = log Pr(x, z_1 … z_T) − log q(z_1 … z_T | x) along K forward chains from each x (UDL §18.4).

    The reverse model is the one algorithm 18.2 samples from, with a density at every step:
    Pr(z_T) = Norm[0, I]; Pr(z_{t-1} | z_t) = Norm[μ_t, β̃_t I] for t ≥ 2, with
    μ_t = (z_t − β_t / √(1 − ᾱ_t) · g[z_t, t]) / √α_t; and Pr(x | z_1) = Norm[μ_1, β_1 I]
    (β̃_1 = 0, so the last step uses β_1, Ho et al.'s larger choice). The proposal is the
    forward process q(z_t | z_{t-1}) = Norm[√(1 − β_t) z_{t-1}, β_t I] (eq. 18.1).

    The mean of log w over the chains estimates the ELBO; ``logsumexp(log w) − log K`` is the
    importance-sampled estimate of log Pr(x), and the mean of w itself is unbiased for Pr(x).

    Args:
        process: a :class:`udl.models.diffusion.Diffusion`.
        denoiser: g[z_t, t], called as ``denoiser(z, t)``.
        x: ``(N, D)`` data points.
        n_samples: K, chains per point.
        generator: the chains' noise: a ``torch.Generator`` or an int seed. Default: 0.

    Returns:
        ``(K, N)``, in nats.
    """
    from udl.models.diffusion import Diffusion

    owner = "diffusion_log_weights"
    check_instance(process, "process", owner, Diffusion)
    check_instance(denoiser, "denoiser", owner, torch.nn.Module)
    check_tensor(x, "x", owner, shape=("N", "D"), dtype="float")
    n_samples = check_int(n_samples, "n_samples", owner)
    generator = as_generator(generator, owner, optional=False)
    dtype = next(denoiser.parameters()).dtype
    n, d = x.shape
    z_prev = x.to(dtype).repeat(n_samples, 1)  # (K N, D): z_0 = x, K copies of every point
    log_q = torch.zeros(n_samples * n, dtype=torch.float64)
    log_p = torch.zeros(n_samples * n, dtype=torch.float64)
    with torch.no_grad():
        for t in range(1, process.T + 1):
            beta, alpha, alpha_bar = (float(process.beta[t]), float(process.alpha[t]), float(process.alpha_bar[t]))
            eps = torch.randn(z_prev.shape, generator=generator, dtype=dtype)
            z_t = math.sqrt(1 - beta) * z_prev + math.sqrt(beta) * eps  # eq. 18.1
            log_q += _log_normal(z_t.double(), math.sqrt(1 - beta) * z_prev.double(), beta)
            g = denoiser(z_t, torch.full((len(z_t),), t, dtype=torch.long))
            mu = (z_t - beta / math.sqrt(1 - alpha_bar) * g) / math.sqrt(alpha)  # alg. 18.2's mean
            var = beta if t == 1 else process.posterior(t)[2]  # β̃_t
            log_p += _log_normal(z_prev.double(), mu.double(), var)
            z_prev = z_t
        log_p += _log_normal(z_prev.double(), torch.zeros_like(z_prev, dtype=torch.float64), 1.0)  # Pr(z_T)
    return (log_p - log_q).view(n_samples, n)


def _finite_shape(samples: torch.Tensor, shape: tuple[int, ...]) -> bool:
    return tuple(samples.shape) == shape and bool(torch.isfinite(samples.double()).all())


def _row(system: System) -> dict[str, Any]:
    return {"name": system.name, "target": system.target, "chapter": system.chapter, "error": "",
            "samples": False, "sample_shape": [], "sampler": "",
            "probability": "none", "evaluator": "", "mass": None, "bound_mass": None, "bound_gap": None,
            "latent": False, "latent_shape": [], "data_shape": [], "latent_map": "",
            "jacobian_rank": -1, "data_dims": -1}


def _bound_verdict(row: dict[str, Any]) -> str:
    """"bound" when the bound's total is below one and the importance estimate's is one."""
    ok = row["bound_mass"] < 1 - BOUND_GAP and abs(row["mass"] - 1) < IS_MASS_TOL and row["bound_gap"] > 0
    return "bound" if ok else "inconsistent"


# --------------------------------------------------------------------------- the probes, one per kind of model
def _probe_mixture(model, row, generator):
    x, z = model.sample(N_SAMPLES, generator=generator)  # ancestral: z ~ Cat[λ], then x ~ Pr(x | z)
    row.update(samples=_finite_shape(x, (N_SAMPLES, model.dim)), sample_shape=list(x.shape),
               sampler="MixtureOfGaussians.sample")
    if model.dim != 1:
        raise ValueError("the quadrature of this probe needs one-dimensional data")
    lo = float((model.means - 12 * model.covariances[:, 0, 0].sqrt()[:, None]).min())
    hi = float((model.means + 12 * model.covariances[:, 0, 0].sqrt()[:, None]).max())
    grid = torch.linspace(lo, hi, 20_001, dtype=torch.float64)
    row.update(evaluator="MixtureOfGaussians.prob, trapezoid rule on 20,001 points",
               mass=float(torch.trapezoid(model.prob(grid[:, None]), grid)))
    row["probability"] = "exact" if abs(row["mass"] - 1) < MASS_TOL else "unnormalised"
    posterior = model.posterior(x)  # Pr(z | x): the discrete latent behind each sample
    row.update(latent=bool(torch.allclose(posterior.sum(1), torch.ones(len(x), dtype=posterior.dtype))),
               latent_shape=[model.n_components], data_shape=[model.dim],
               latent_map="z in {1..K} -> Norm[mu_z, Sigma_z]; posterior Pr(z | x)")


def _probe_vae(model, row, generator):
    c = model.config
    model.eval()
    x = model.sample(N_SAMPLES, generator=generator, noise=True)  # z ~ Norm[0, I], x ~ Pr(x | z)
    row.update(samples=_finite_shape(x, (N_SAMPLES, c.d_in)), sample_shape=list(x.shape), sampler="VAE.sample")
    if c.likelihood != "binomial" or (c.n_trials + 1) ** c.d_in > 10_000:
        raise ValueError("the sum over the data space needs binomial pixels and at most 10,000 images")
    levels = torch.arange(c.n_trials + 1, dtype=torch.float32) / c.n_trials
    every = torch.cartesian_prod(*[levels] * c.d_in).reshape(-1, c.d_in)  # every image the model can draw
    with torch.no_grad():
        elbo = model.elbo(every, generator=generator, n_samples=4000).double()
        is_ll = model.importance_log_likelihood(every, 20_000, generator=generator).double()
    row.update(evaluator=f"VAE.elbo and VAE.importance_log_likelihood on all {len(every)} images",
               mass=float(is_ll.exp().sum()), bound_mass=float(elbo.exp().sum()),
               bound_gap=float((is_ll - elbo).mean()))
    row["probability"] = _bound_verdict(row)
    z = torch.randn(5, c.d_latent, generator=generator)
    with torch.no_grad():
        decoded, (mu, _) = model.mean_image(z), model.encode(x[:5])
    row.update(latent=tuple(decoded.shape) == (5, c.d_in) and tuple(mu.shape) == (5, c.d_latent),
               latent_shape=[c.d_latent], data_shape=[c.d_in], latent_map="VAE.decode: z -> Pr(x | z); VAE.encode")


def _probe_diffusion(denoiser, row, generator):
    from udl.models.diffusion import Diffusion  # the process that goes with the denoiser

    # five steps (ᾱ_5 = 0.11): few enough that importance sampling along the chains is accurate
    process = Diffusion.linear(5, 0.05, 0.6)
    denoiser.eval()
    d = denoiser.d_in
    x = process.sample_ddpm(denoiser, (N_SAMPLES, d), generator=generator)
    row.update(samples=_finite_shape(x, (N_SAMPLES, d)), sample_shape=list(x.shape),
               sampler=f"Diffusion.sample_ddpm ({process.T} steps)")
    if d != 1:
        raise ValueError("the quadrature of this probe needs one-dimensional data")
    spread = process.sample_ddpm(denoiser, (4000, d), generator=generator)  # where the grid must reach
    grid = torch.linspace(float(spread.min()) - 3, float(spread.max()) + 3, 301, dtype=torch.float64)
    log_w = diffusion_log_weights(process, denoiser, grid[:, None], 4000, generator=generator)  # (K, N)
    elbo, is_ll = log_w.mean(0), torch.logsumexp(log_w, 0) - math.log(len(log_w))
    row.update(evaluator="the ELBO and importance sampling along forward chains (K = 4000), 301-point grid",
               mass=float(torch.trapezoid(is_ll.exp(), grid)), bound_mass=float(torch.trapezoid(elbo.exp(), grid)),
               bound_gap=float((is_ll - elbo).mean()))
    row["probability"] = _bound_verdict(row)
    chain = process.forward_chain(x[:5], generator=generator)  # x -> z_1 ... z_T
    row.update(latent=tuple(chain.shape) == (process.T + 1, 5, d), latent_shape=[process.T, d], data_shape=[d],
               latent_map="forward chain x -> z_1..z_T; reverse z_T -> x")


def _probe_gpt(model, row, generator):
    from udl.models.decoding import generate
    from udl.models.gpt import sequence_log_prob

    model.eval()
    vocab, length = model.config.vocab_size, 4  # continuations of 4 tokens after a start token 0
    prompt = torch.zeros(N_SAMPLES, 1, dtype=torch.long)
    x = generate(model, prompt, length, strategy="top_k", k=vocab, generator=generator)[:, 1:]  # ancestral
    in_vocab = bool(((x >= 0) & (x < vocab)).all())
    row.update(samples=tuple(x.shape) == (N_SAMPLES, length) and in_vocab, sample_shape=list(x.shape),
               sampler="udl.models.decoding.generate (ancestral, top-k = |V|)")
    every = torch.cartesian_prod(*[torch.arange(vocab)] * length)  # (|V|^4, 4): every continuation
    with torch.no_grad():
        log_p = sequence_log_prob(model, torch.cat([torch.zeros(len(every), 1, dtype=torch.long), every], 1))
    row.update(evaluator=f"udl.models.gpt.sequence_log_prob on all {len(every)} sequences",
               mass=float(log_p.exp().sum()), data_shape=[length])
    row["probability"] = "exact" if abs(row["mass"] - 1) < MASS_TOL else "unnormalised"
    # no latent: the chain rule Pr(x) = Π_t Pr(x_t | x_<t) involves the observed tokens only


def _probe_gan(gen_net, row, generator):
    from udl.models.gan import GAN, DCGANDiscriminator

    c = gen_net.config
    gan = GAN(gen_net, DCGANDiscriminator(c, generator=generator), c.d_latent)
    x = gan.sample(N_SAMPLES, generator=generator)
    shape = (N_SAMPLES, c.channels, c.image_size, c.image_size)
    row.update(samples=_finite_shape(x, shape), sample_shape=list(x.shape), sampler="GAN.sample")
    z = gan.latent(1, generator=generator)[0]
    gan.eval()
    row.update(latent=True, latent_shape=[c.d_latent], data_shape=list(shape[1:]), latent_map="GAN: z -> g[z]",
               jacobian_rank=jacobian_rank(lambda v: gan.double()(v), z), data_dims=int(np.prod(shape[1:])))
    gan.float()


def _probe_autoencoder(model, row, generator):
    x = torch.rand(5, model.d_in, generator=generator)
    with torch.no_grad():
        code = model.encode(x)
        back = model.decode(code)
    row.update(latent=tuple(back.shape) == tuple(x.shape), latent_shape=[int(code.shape[1])],
               data_shape=[model.d_in], latent_map="Autoencoder.encode / decode (a code, no distribution over it)",
               sampler="none: the model defines no distribution over its codes to draw from",
               jacobian_rank=jacobian_rank(lambda v: model.double().decode(v), code[0]), data_dims=model.d_in)
    model.float()


PROBES: dict[str, Callable] = {  # System.target -> how to call that kind of model
    "udl.models.mixture:MixtureOfGaussians": _probe_mixture,
    "udl.models.vae:VAE": _probe_vae,
    "udl.models.denoisers:MLPDenoiser": _probe_diffusion,
    "udl.models.gpt:GPT": _probe_gpt,
    "udl.models.gan:DCGANGenerator": _probe_gan,
    "udl.models.autoencoder:Autoencoder": _probe_autoencoder,
}


def probe(system: System, *, generator: torch.Generator | int | None = 0) -> dict[str, Any]:
    """Build one unsupervised system and measure what it can do: samples, probability, latent.

    A system that fails to build, has no probe or whose probe raises is reported in
    ``row["error"]``, not raised.

    Returns:
        A dict: ``samples`` (bool), ``sample_shape``, ``probability`` ("exact", "bound",
        "none"; "unnormalised" or "inconsistent" when a measurement contradicts the
        evaluator), ``mass`` (the evaluated probabilities, or the importance estimate's,
        totalled over the data space), ``bound_mass`` and ``bound_gap`` (mean log-estimate
        minus mean bound, nats), each None where not measured, ``latent`` (bool) with ``latent_shape`` / ``data_shape``,
        ``jacobian_rank`` and ``data_dims`` for a model without an evaluator, and the
        names of what was called.
    """
    check_instance(system, "system", "probe", System)
    seed = as_generator(generator, "probe", optional=False)
    row = _row(system)
    try:
        module, name = system.target.split(":")
        takes_seed = "generator" in inspect.signature(getattr(importlib.import_module(module), name)).parameters
        model = system.build(generator=seed) if takes_seed else system.build()  # a mixture is given, not drawn
        fn = PROBES.get(system.target)
        if fn is None:
            raise LookupError(f"no probe for {system.target}")
        fn(model, row, seed)
    except Exception as error:  # noqa: BLE001 - reported to the figure's checks
        row["error"] = f"{type(error).__name__}: {error}"
    return row


def probe_systems(systems: tuple[System, ...] = SYSTEMS, *, generator: int = 0) -> list[dict[str, Any]]:
    """:func:`probe` every ``"unsupervised"`` system of the registry (seed ``generator + i`` for the i-th)."""
    check_sequence(systems, "systems", "probe_systems", of="System entries")
    for system in systems:
        check_instance(system, "systems", "probe_systems", System)
    generator = check_int(generator, "generator", "probe_systems", minimum=0)
    chosen = [s for s in systems if s.paradigm == "unsupervised"]
    return [probe(s, generator=int(generator) + i) for i, s in enumerate(chosen)]


def region(row: dict[str, Any]) -> tuple[str, bool]:
    """The innermost set a probed model belongs to, and whether it is in the latent-variable set.

    "probabilistic" (it samples and evaluates a normalised probability, exactly or through
    a bound), "generative" (it samples), else "unsupervised".
    """
    if not isinstance(row, dict) or not {"samples", "probability", "latent"} <= set(row):
        _refuse("row", "region", "a dict from probe() with 'samples', 'probability' and 'latent'",
                repr(row)[:60], TypeError)
    if row["samples"] and row["probability"] in ("exact", "bound"):
        inner = "probabilistic"
    elif row["samples"]:
        inner = "generative"
    else:
        inner = "unsupervised"
    return inner, bool(row["latent"])
