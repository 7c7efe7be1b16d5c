"""The variational autoencoder (UDL §17.6-17.8): a nonlinear latent variable model and its bound.

The generative model (§17.2) draws a latent variable z from a standard normal prior and
passes it through the *decoder* network f[z, φ], which gives the parameters of a
distribution over the data:

    Pr(z) = Norm_z[0, I],   Pr(x | z, φ) = a distribution with parameters f[z, φ],
    Pr(x | φ) = ∫ Pr(x | z, φ) Pr(z) dz                                    (§17.2, intractable)

The *encoder* g[x, θ] gives a diagonal normal q(z | x, θ) = Norm_z[μ, diag σ²] that
approximates the posterior Pr(z | x, φ) (§17.5). Together they give the evidence lower
bound (§17.3-17.4), which is maximised over φ and θ:

    ELBO[θ, φ] = E_q[ log Pr(x | z, φ) ] − D_KL[ q(z | x, θ) ‖ Pr(z) ]  ≤  log Pr(x | φ)

The reconstruction term is estimated with samples z = μ + σ ⊙ ε, ε ~ Norm[0, I] (the
reparameterisation trick, §17.7: the noise no longer depends on θ, so gradients pass
through μ and σ); the KL term between two normals is in closed form (§17.6):

    D_KL = ½ Σ_d ( σ_d² + μ_d² − 1 − log σ_d² ).

The bound is loose by D_KL[q ‖ Pr(z | x)]. Importance sampling with q as the proposal
(§17.8.1) estimates log Pr(x | φ) itself, from K samples z_k ~ q(z | x):

    log Pr(x | φ) ≈ log (1/K) Σ_k Pr(x | z_k, φ) Pr(z_k) / q(z_k | x),

whose expectation is the ELBO for K = 1 and rises with K towards log Pr(x | φ)
(Burda et al. 2016).

**The likelihood.** scikit-learn's 8x8 digits are counts: each pixel is the number of
inked pixels (0-16) in a 4x4 block of a 32x32 binary bitmap. ``likelihood="binomial"``
(the default for them) models pixel d as Binomial(n, p_d) with n = 16, p_d = sigmoid of the
decoder's output: exactly a Bernoulli per underlying bitmap pixel, the 16 of a block
sharing one probability. It is a true probability over the data's 17 grey levels, so
log Pr(x) is a number of nats that can be compared between models, and it is ≤ 0. With
``n_trials=1`` it is the Bernoulli likelihood of binary images. A Bernoulli
"likelihood" applied to grey levels (the common binary cross-entropy loss) is not a
distribution over grey images, and a normal likelihood is a density (its log can be
positive) that spends probability on values the data never take; ``likelihood="normal"``
(fixed σ, a linear decoder giving probabilistic PCA, §17.1's linear case) is kept for
continuous data and for the closed-form tests.

Images are rows of D pixels in [0, 1] (``(N, 64)`` for the digits).

Example::

    >>> model = VAE(VAEConfig.digits(), generator=0)
    >>> x = torch.rand(5, 64)
    >>> model.elbo(x, generator=0).shape, model.kl(*model.encode(x)).shape
    (torch.Size([5]), torch.Size([5]))
    >>> model.sample(3, generator=0).shape
    torch.Size([3, 64])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.deep import relu_mlp
from udl.nn.init import initialised_from
from udl.validate import _refuse, as_generator, check_choice, check_float, check_input, check_int, check_tensor

__all__ = ["VAEConfig", "VAE", "gaussian_kl", "monte_carlo_kl", "LIKELIHOODS"]

LIKELIHOODS = ("binomial", "normal")


# --------------------------------------------------------------------------- the KL term
def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """D_KL[ Norm[μ, diag σ²] ‖ Norm[0, I] ] in closed form, one value per row (§17.6).

        D_KL = ½ Σ_d ( σ_d² + μ_d² − 1 − log σ_d² )

    Shape:
        mu, log_var: ``(N, D_z)`` -> ``(N,)``.
    """
    check_tensor(mu, "mu", "gaussian_kl", ndim=2, dtype="float")
    check_tensor(log_var, "log_var", "gaussian_kl", shape=tuple(mu.shape), dtype="float")
    return 0.5 * (log_var.exp() + mu ** 2 - 1.0 - log_var).sum(-1)


def monte_carlo_kl(mu: torch.Tensor, log_var: torch.Tensor, n_samples: int = 10_000, *,
                   generator: torch.Generator | int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The same KL estimated by sampling: the mean of log q(z) − log Pr(z) over z ~ q, and its standard error.

    The check on :func:`gaussian_kl`: D_KL[q ‖ p] = E_q[log q(z) − log p(z)], estimated
    from ``n_samples`` reparameterised draws z = μ + σ ⊙ ε.

    Returns:
        ``(estimate, standard_error)``, each ``(N,)``.
    """
    owner = "monte_carlo_kl"
    check_tensor(mu, "mu", owner, ndim=2, dtype="float")
    check_tensor(log_var, "log_var", owner, shape=tuple(mu.shape), dtype="float")
    n_samples = check_int(n_samples, "n_samples", owner, minimum=2)
    generator = as_generator(generator, owner, optional=False)
    eps = torch.randn((n_samples, *mu.shape), generator=generator, dtype=mu.dtype).to(mu.device)  # (K, N, D_z)
    z = mu + (0.5 * log_var).exp() * eps
    log_q = _normal_log_prob(z, mu, log_var)  # (K, N)
    log_p = _normal_log_prob(z, torch.zeros_like(mu), torch.zeros_like(log_var))
    terms = log_q - log_p
    return terms.mean(0), terms.std(0) / math.sqrt(n_samples)


def _normal_log_prob(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log Norm_z[μ, diag σ²], summed over the last axis."""
    return -0.5 * ((z - mu) ** 2 / log_var.exp() + log_var + math.log(2 * math.pi)).sum(-1)


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class VAEConfig:
    """The shape of a :class:`VAE` and its likelihood; the defaults suit the 8x8 digits."""

    d_in: int = 64  # D, pixels per image
    hidden: tuple[int, ...] = (256, 128)  # the encoder's hidden widths, outermost first; the decoder mirrors them
    d_latent: int = 8  # D_z, dimensions of the latent variable z
    likelihood: str = "binomial"  # Pr(x | z): "binomial" (counts x·n of n trials) or "normal" (fixed σ)
    n_trials: int = 16  # binomial: n (the digits: 16 bitmap pixels per block; 1 gives a Bernoulli)
    sigma: float = 0.1  # normal: the standard deviation σ of every pixel

    def __post_init__(self):
        owner = "VAEConfig"
        check_int(self.d_in, "d_in", owner)
        if isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, (list, tuple)):
            _refuse("hidden", owner, "a tuple of positive ints", repr(self.hidden), TypeError)
        object.__setattr__(self, "hidden", tuple(check_int(h, "hidden", owner) for h in self.hidden))
        check_int(self.d_latent, "d_latent", owner)
        check_choice(self.likelihood, "likelihood", owner, LIKELIHOODS)
        check_int(self.n_trials, "n_trials", owner)
        check_float(self.sigma, "sigma", owner, low=0.0, low_open=True)

    @classmethod
    def digits(cls, **changes) -> VAEConfig:
        """The 8x8 digits: 64 → 256 → 128 → 2·8, binomial likelihood of 16 trials (the defaults), with ``changes``."""
        return cls(**changes)

    @classmethod
    def tiny(cls, **changes) -> VAEConfig:
        """For tests: 8 → 6 → 2·2 and back, with ``changes``."""
        return cls(**{**dict(d_in=8, hidden=(6,), d_latent=2), **changes})

    def parameter_count(self) -> int:
        """Encoder D → h_1 → ... → h_K → 2 D_z plus decoder D_z → h_K → ... → h_1 → D, weights and biases."""
        widths = (self.d_in, *self.hidden)
        encoder = (*widths, 2 * self.d_latent)
        decoder = (self.d_latent, *widths[::-1])
        return sum((a + 1) * b for path in (encoder, decoder) for a, b in zip(path[:-1], path[1:]))



# --------------------------------------------------------------------------- the model
class VAE(nn.Module):
    """A variational autoencoder with fully connected encoder and decoder (UDL §17.6).

    encoder g[x, θ]: ``D → hidden → 2 D_z`` (ReLU between layers), split into μ and log σ²;
    decoder f[z, φ]: ``D_z → reversed(hidden) → D``: the logits of the binomial's p (or
    the normal's mean). ``forward(x)`` is the mean image of Pr(x | z = μ(x)): the
    reconstruction of the autoencoder view; the probabilistic quantities are
    :meth:`elbo`, :meth:`importance_log_likelihood` and :meth:`sample`.

    Args:
        config: a :class:`VAEConfig`, or ``"digits"`` / ``"tiny"``. Default: ``VAEConfig.digits()``.
        generator: the random initial weights (torch's default initialisation,
            U(−1/√fan_in, 1/√fan_in)): a ``torch.Generator`` or an int seed. Default: None,
            torch's global generator.

    Shape:
        x: ``(N, D)`` in [0, 1]; z: ``(N, D_z)``; forward output: ``(N, D)``.

    Example::

        >>> VAE("tiny", generator=0)(torch.zeros(3, 8)).shape
        torch.Size([3, 8])
    """

    def __init__(self, config: VAEConfig | str = "digits", *, generator: torch.Generator | int | None = None):
        super().__init__()
        if isinstance(config, str):
            check_choice(config, "config", "VAE", ("digits", "tiny"))
            config = getattr(VAEConfig, config)()
        if not isinstance(config, VAEConfig):
            _refuse("config", "VAE", "a VAEConfig or 'digits' / 'tiny'", repr(config), TypeError)
        self.config = config
        generator = as_generator(generator, "VAE")
        widths = (config.d_in, *config.hidden)
        with initialised_from(self, generator):
            self.encoder = relu_mlp((*widths, 2 * config.d_latent))
            self.decoder = relu_mlp((config.d_latent, *widths[::-1]))

    @classmethod
    def tiny(cls, config: VAEConfig | str = "tiny", *, generator: torch.Generator | int | None = None) -> VAE:
        """A test-sized VAE (``VAEConfig.tiny()``)."""
        return cls(config, generator=generator)

    def _dtype(self) -> torch.dtype:
        return self.decoder[0].weight.dtype

    def _check_x(self, x, owner: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[-1] != self.config.d_in or x.dtype != self._dtype():
            check_input(x, "x", owner, shape=("N", self.config.d_in), dtype=self._dtype())
        return x

    # ---- the two networks
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The parameters of q(z | x) = Norm[μ, diag σ²]: ``(μ, log σ²)``, each ``(N, D_z)``."""
        h = self.encoder(self._check_x(x, "VAE.encode"))  # (N, 2 D_z)
        mu, log_var = h.chunk(2, dim=-1)  # (N, D_z) each
        return mu, log_var

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """f[z, φ]: the parameters of Pr(x | z): binomial logits (or the normal's mean), ``(N, D)``."""
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[-1] != self.config.d_latent:
            check_input(z, "z", "VAE.decode", shape=("N", self.config.d_latent), dtype=self._dtype())
        return self.decoder(z)

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z]: the binomial's p = sigmoid[f] (E[count / n] = p) or the normal's mean, ``(N, D)``."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.config.likelihood == "binomial" else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction E[x | z = μ(x)], ``(N, D) -> (N, D)``."""
        mu, _ = self.encode(x)
        return self.mean_image(mu)

    # ---- the pieces of the bound
    @staticmethod
    def reparameterise(mu: torch.Tensor, log_var: torch.Tensor, *,
                       generator: torch.Generator | int | None = None, n_samples: int | None = None) -> torch.Tensor:
        """z = μ + σ ⊙ ε with ε ~ Norm[0, I] drawn from ``generator`` (§17.7).

        Returns ``(N, D_z)``, or ``(K, N, D_z)`` with ``n_samples=K``.
        """
        generator = as_generator(generator, "VAE.reparameterise")
        shape = tuple(mu.shape) if n_samples is None else (
            check_int(n_samples, "n_samples", "VAE.reparameterise"), *mu.shape)
        eps = torch.randn(shape, generator=generator, dtype=mu.dtype,
                          device=generator.device if generator is not None else "cpu").to(mu.device)
        return mu + (0.5 * log_var).exp() * eps  # (…, N, D_z)

    def log_likelihood(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """log Pr(x | z) summed over pixels, from the decoder's output ``out = f[z]``.

        binomial: with counts k = n·x, log C(n, k) + k·f − n·log(1 + e^f) (p = sigmoid[f]);
        normal: −½ Σ ((x − f)²/σ² + log 2πσ²). ``out`` may carry leading sample axes
        ``(K, N, D)``; the result is ``out``'s shape without the last axis.
        """
        c = self.config
        if c.likelihood == "normal":
            return -0.5 * (((x - out) / c.sigma) ** 2 + math.log(2 * math.pi * c.sigma ** 2)).sum(-1)
        n = float(c.n_trials)
        k = torch.round(x * n)  # the counts behind the grey levels
        log_choose = torch.lgamma(torch.tensor(n + 1.0, dtype=x.dtype, device=x.device)) \
            - torch.lgamma(k + 1.0) - torch.lgamma(n - k + 1.0)  # log C(n, k), (N, D)
        return (log_choose + k * out - n * F.softplus(out)).sum(-1)

    def kl(self, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """D_KL[q(z | x) ‖ Pr(z)] in closed form, ``(N,)``: :func:`gaussian_kl`."""
        return gaussian_kl(mu, log_var)

    def elbo(self, x: torch.Tensor, *, generator: torch.Generator | int | None = None,
             n_samples: int = 1) -> torch.Tensor:
        """The evidence lower bound of each row of ``x``, in nats (§17.4, §17.6).

            ELBO = (1/K) Σ_k log Pr(x | z_k, φ) − D_KL[q(z | x, θ) ‖ Pr(z)],   z_k = μ + σ ⊙ ε_k

        Differentiable (the reparameterisation trick): −elbo(x).mean() is the training loss.

        Args:
            x: ``(N, D)``.
            generator: the noise ε: a ``torch.Generator`` or an int seed. Default: torch's global generator.
            n_samples: K, samples per row for the reconstruction term. Default: 1.

        Returns:
            ``(N,)``.
        """
        x = self._check_x(x, "VAE.elbo")
        n_samples = check_int(n_samples, "n_samples", "VAE.elbo")
        generator = as_generator(generator, "VAE.elbo")
        mu, log_var = self.encode(x)
        z = self.reparameterise(mu, log_var, generator=generator, n_samples=n_samples)  # (K, N, D_z)
        reconstruction = self.log_likelihood(x, self.decode(z.flatten(0, 1)).view(n_samples, *x.shape))  # (K, N)
        return reconstruction.mean(0) - self.kl(mu, log_var)

    @torch.no_grad()
    def importance_log_likelihood(self, x: torch.Tensor, n_samples: int = 1000, *,
                                  generator: torch.Generator | int = 0, chunk: int = 250) -> torch.Tensor:
        """log Pr(x | φ) estimated by importance sampling with q(z | x) as the proposal (§17.8.1).

            log Pr(x) ≈ logsumexp_k [ log Pr(x | z_k) + log Pr(z_k) − log q(z_k | x) ] − log K,  z_k ~ q(z | x)

        Its expectation lies between the ELBO (K = 1) and log Pr(x), rising with K.

        Args:
            x: ``(N, D)``.
            n_samples: K. Default: 1000.
            generator: the samples: a ``torch.Generator`` or an int seed. Default: 0.
            chunk: samples decoded at once (memory only). Default: 250.

        Returns:
            ``(N,)``, in nats.
        """
        owner = "VAE.importance_log_likelihood"
        x = self._check_x(x, owner)
        n_samples = check_int(n_samples, "n_samples", owner)
        chunk = check_int(chunk, "chunk", owner)
        generator = as_generator(generator, owner, optional=False)
        mu, log_var = self.encode(x)
        log_w = []
        for start in range(0, n_samples, chunk):
            k = min(chunk, n_samples - start)
            z = self.reparameterise(mu, log_var, generator=generator, n_samples=k)  # (k, N, D_z)
            log_px = self.log_likelihood(x, self.decode(z.flatten(0, 1)).view(k, *x.shape))  # (k, N)
            log_pz = _normal_log_prob(z, torch.zeros_like(mu), torch.zeros_like(log_var))
            log_q = _normal_log_prob(z, mu, log_var)
            log_w.append(log_px + log_pz - log_q)
        return torch.logsumexp(torch.cat(log_w), 0) - math.log(n_samples)

    # ---- generation
    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | int | None = None, noise: bool = False) -> torch.Tensor:
        """New images: z ~ Norm[0, I] through the decoder (ancestral sampling, §17.8).

        Args:
            n: how many.
            generator: z (and the pixel noise): a ``torch.Generator`` or an int seed.
            noise: draw x ~ Pr(x | z) (binomial counts / n, or the normal clipped to
                [0, 1]) instead of returning the mean image E[x | z]. Default: False.

        Returns:
            ``(n, D)``.
        """
        n = check_int(n, "n", "VAE.sample")
        generator = as_generator(generator, "VAE.sample")
        device = self.decoder[0].weight.device
        z = torch.randn(n, self.config.d_latent, generator=generator, dtype=self._dtype()).to(device)
        mean = self.mean_image(z)
        if not noise:
            return mean
        c = self.config
        if c.likelihood == "binomial":
            u = torch.rand((c.n_trials, *mean.shape), generator=generator, dtype=mean.dtype).to(device)
            return (u < mean).sum(0).to(mean.dtype) / c.n_trials  # n Bernoulli trials per pixel
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(device)
        return (mean + c.sigma * eps).clamp(0.0, 1.0)

    @torch.no_grad()
    def interpolate(self, x_a: torch.Tensor, x_b: torch.Tensor, n_steps: int = 8) -> torch.Tensor:
        """Mean images along the straight line between the posterior means of two images (§17.8).

        z_t = (1 − t) μ(x_a) + t μ(x_b) for t = 0, 1/(n−1), ..., 1.

        Shape:
            x_a, x_b: ``(D,)``; output ``(n_steps, D)``.
        """
        owner = "VAE.interpolate"
        n_steps = check_int(n_steps, "n_steps", owner, minimum=2)
        for name, v in (("x_a", x_a), ("x_b", x_b)):
            check_tensor(v, name, owner, shape=(self.config.d_in,), dtype=self._dtype())
        mu, _ = self.encode(torch.stack([x_a, x_b]))  # (2, D_z)
        t = torch.linspace(0, 1, n_steps, dtype=mu.dtype, device=mu.device)[:, None]  # (n_steps, 1)
        return self.mean_image((1 - t) * mu[0] + t * mu[1])  # (n_steps, D)
