"""Denoising diffusion models: the forward process, its learned reverse and the samplers (UDL chapter 18).

**Notation.** The book writes the data as x and the latent variables as z_1 ... z_T, all of
the data's shape. Each forward step blends the previous variable with fresh noise::

    z_1 = √(1 - β_1) x + √β_1 ε_1,   z_t = √(1 - β_t) z_{t-1} + √β_t ε_t,   ε_t ~ N(0, I)   (UDL eq. 18.1)

with a fixed noise schedule β_1 ... β_T in (0, 1). Here ``alpha[t] = 1 - β_t`` and
``alpha_bar[t] = Π_{s≤t} (1 - β_s)``; **the book names this cumulative product α_t**
(its eq. 18.7), the DDPM paper and diffusers ᾱ_t: ``alpha_bar`` is the book's α_t. All
three are stored with index t = 0 … T, where t = 0 stands for the data itself
(β_0 = 0, ᾱ_0 = 1), so ``alpha_bar[t]`` is the value at the book's step t.

**Diffusion kernel** (§18.2.1): the chain can be skipped, z_t given x is normal::

    q(z_t | x) = Norm[√ᾱ_t x, (1 - ᾱ_t) I],  i.e.  z_t = √ᾱ_t x + √(1 - ᾱ_t) ε          (UDL §18.2.1)

**Conditional diffusion distribution** (§18.2.4): given x as well, one step back is normal::

    q(z_{t-1} | z_t, x) = Norm[ (1 - ᾱ_{t-1}) √α_t / (1 - ᾱ_t) · z_t
                                + √ᾱ_{t-1} β_t / (1 - ᾱ_t) · x ,
                                β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t) · I ]                        (UDL §18.2.4)

**Training** (§18.4-18.5, algorithm 18.1): a network g[z_t, t] predicts the noise ε that made z_t
from x, fitted by least squares (the "simple" loss, up to constants the ELBO's terms)::

    L = Σ_i Σ_t || g[√ᾱ_t x_i + √(1 - ᾱ_t) ε_it, t] - ε_it ||²                            (UDL §18.5, alg. 18.1)

**Ancestral sampling** (§18.5, algorithm 18.2): from z_T ~ N(0, I), for t = T … 1::

    z_{t-1} = 1/√α_t · (z_t - β_t / √(1 - ᾱ_t) · g[z_t, t]) + σ_t ε                    (UDL alg. 18.2)

with σ_t² = β̃_t = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t) (the posterior variance, diffusers'
``fixed_small``) or σ_t² = β_t (``fixed_large``); no noise is added at t = 1.

**DDIM** (§18.6.2, Song et al. 2021): a non-Markovian forward process with the same
kernels q(z_t|x) admits a deterministic reverse that may jump over steps: with the
estimate x̂ = (z_t - √(1 - ᾱ_t) ĝ) / √ᾱ_t and an earlier step s < t::

    z_s = √ᾱ_s x̂ + √(1 - ᾱ_s - σ²) ĝ + σ ε,   σ = η √((1 - ᾱ_s)/(1 - ᾱ_t)) √(1 - ᾱ_t/ᾱ_s)

η = 0 is deterministic; η = 1 with s = t - 1 is ancestral sampling with σ_t² = β̃_t.

**Classifier-free guidance** (§18.6.3, Ho & Salimans 2022): one network learns both the
conditional g[z_t, t, c] and (with the label replaced by a null class ∅ for a share of
the training examples) the unconditional g[z_t, t, ∅]; sampling uses::

    ĝ = (1 + w) g[z_t, t, c] - w g[z_t, t, ∅]

A denoiser is any ``nn.Module`` called as ``model(z, t)`` or ``model(z, t, c)``, with ``t``
an int64 tensor ``(B,)`` of steps in 1 … T (the book's numbering) and ``c`` an int64
tensor ``(B,)`` of classes. diffusers numbers its steps 0 … T - 1: its step k is t = k + 1.

Example::

    process = Diffusion.linear(1000)
    z_t = process.diffuse(x, 500, generator=0)                   # one draw from q(z_500 | x)
    loss = process.loss(model, x, generator=0)                  # the simple loss, one t per example
    x_new = process.sample_ddim(model, (64, 1), n_steps=50, generator=0)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from udl.validate import as_generator, check_choice, check_float, check_instance, check_int, check_tensor

__all__ = ["Diffusion", "ddim_timesteps"]


def _noise(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise of ``shape`` in ``like``'s dtype and device, drawn from ``generator``."""
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=device).to(like.device)


def _clip(clip, owner: str) -> float | None:
    return None if clip is None else check_float(clip, "clip", owner, low=0.0, low_open=True)


def ddim_timesteps(T: int, n_steps: int) -> list[int]:
    """The subsequence of steps a DDIM sampler visits: ``n_steps`` jumps from T down to 0.

    ``t_k = round(T - k T / n_steps)`` for k = 0 … n_steps - 1, then 0 (the data): evenly
    spaced, starting at T where z_T ~ N(0, I) holds (diffusers' "trailing" spacing, in the
    book's numbering). ``n_steps = T`` gives every step.

    Returns:
        ``n_steps + 1`` ints, strictly decreasing, first T, last 0.

    Example::

        >>> ddim_timesteps(1000, 4)
        [1000, 750, 500, 250, 0]
    """
    T = check_int(T, "T", "ddim_timesteps")
    n_steps = check_int(n_steps, "n_steps", "ddim_timesteps", maximum=T)
    steps = np.round(np.arange(T, 0, -T / n_steps)).astype(np.int64)[:n_steps]
    return [int(t) for t in steps] + [0]


class Diffusion:
    """The diffusion process of a noise schedule β_1 … β_T: forward, posterior, loss and samplers.

    Args:
        beta: the schedule β_1 … β_T, a 1-D sequence or tensor of values in (0, 1).
            The named schedules are the classmethods :meth:`linear` and :meth:`cosine`.

    Attributes:
        T: the number of steps.
        beta, alpha, alpha_bar: float64 tensors ``(T + 1,)`` indexed by the step t = 0 … T
            (t = 0: β = 0, α = ᾱ = 1). ``alpha = 1 - beta``, ``alpha_bar`` = cumulative
            product of ``alpha`` (the book's α_t).

    Example::

        >>> process = Diffusion.linear(1000)
        >>> round(float(process.alpha_bar[1000]), 8)
        4.036e-05
    """

    def __init__(self, beta):
        if isinstance(beta, torch.Tensor):
            beta = beta.detach().cpu().numpy()
        if not isinstance(beta, (np.ndarray, list, tuple)):
            raise TypeError(f"The 'beta' parameter of Diffusion must be a 1D sequence of floats in (0, 1). "
                            f"Got {type(beta).__name__} instead.")
        try:
            values = np.asarray(beta, dtype=np.float64)
        except (TypeError, ValueError):  # strings, None, ragged lists
            raise TypeError(f"The 'beta' parameter of Diffusion must be a 1D sequence of floats in (0, 1). "
                            f"Got {beta!r} instead.") from None
        if values.ndim != 1 or values.size == 0 or not np.all((values > 0) & (values < 1)):
            raise ValueError(f"The 'beta' parameter of Diffusion must be a 1D sequence of floats in (0, 1). "
                             f"Got {np.array2string(values, threshold=6)} instead.")
        self.T = len(values)
        self.beta = torch.cat([torch.zeros(1, dtype=torch.float64), torch.from_numpy(values.copy())])  # β_0 = 0
        self.alpha = 1.0 - self.beta
        # ᾱ_t = Π_{s≤t} (1 - β_s)  (UDL eq. 18.7, where it is written α_t)
        self.alpha_bar = torch.cumprod(self.alpha, 0)

    @classmethod
    def linear(cls, T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> Diffusion:
        """β_t rising linearly from ``beta_1`` to ``beta_T`` over T steps (Ho et al. 2020's schedule)."""
        T = check_int(T, "T", "Diffusion.linear")
        beta_1 = check_float(beta_1, "beta_1", "Diffusion.linear", low=0.0, high=1.0, low_open=True, high_open=True)
        beta_T = check_float(beta_T, "beta_T", "Diffusion.linear", low=0.0, high=1.0, low_open=True, high_open=True)
        return cls(np.linspace(beta_1, beta_T, T))

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Diffusion:
        """Nichol & Dhariwal (2021)'s schedule: ᾱ follows a squared cosine in t / T.

        ``ᾱ(t) = f(t) / f(0)`` with ``f(t) = cos²(π/2 · (t/T + s) / (1 + s))``, and
        ``β_t = min(1 - ᾱ(t) / ᾱ(t - 1), max_beta)`` (the cap keeps β_T below one), so
        ᾱ_t falls slowly at both ends instead of dropping to nearly zero well before T.
        """
        T = check_int(T, "T", "Diffusion.cosine")
        s = check_float(s, "s", "Diffusion.cosine", low=0.0)
        max_beta = check_float(max_beta, "max_beta", "Diffusion.cosine", low=0.0, high=1.0, low_open=True,
                               high_open=True)
        t = np.arange(T + 1, dtype=np.float64)
        f = np.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
        return cls(np.minimum(1.0 - f[1:] / f[:-1], max_beta))

    def __repr__(self) -> str:
        return f"Diffusion(T={self.T}, beta_1={float(self.beta[1]):.3g}, beta_T={float(self.beta[-1]):.3g})"

    # ------------------------------------------------------------------ helpers
    def _steps(self, t, batch: int, owner: str, *, minimum: int = 1) -> torch.Tensor:
        """``t`` (an int or an int tensor ``(B,)``) as an int64 CPU tensor ``(batch,)`` in [minimum, T]."""
        if isinstance(t, torch.Tensor):
            check_tensor(t, "t", owner, shape=(batch,), dtype="int")
            t = t.detach().cpu().long()
            if len(t) and (int(t.min()) < minimum or int(t.max()) > self.T):
                raise ValueError(f"The 't' parameter of {owner} must hold steps in [{minimum}, {self.T}]. "
                                 f"Got values in [{int(t.min())}, {int(t.max())}] instead.")
            return t
        return torch.full((batch,), check_int(t, "t", owner, minimum=minimum, maximum=self.T), dtype=torch.long)

    @staticmethod
    def _per_example(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Coefficients ``(B,)`` (float64) shaped to broadcast over ``like`` ``(B, ...)``, in its dtype and device."""
        return values.to(like.dtype).to(like.device).view(-1, *([1] * (like.dim() - 1)))  # (B, 1, ..., 1)

    @staticmethod
    def _data(x, name: str, owner: str) -> torch.Tensor:
        check_tensor(x, name, owner, dtype="float")
        if x.dim() < 1 or x.shape[0] == 0:
            raise ValueError(f"The '{name}' parameter of {owner} must be a tensor of shape (B, ...) with B > 0. "
                             f"Got shape {tuple(x.shape)} instead.")
        return x

    # ------------------------------------------------------------------ the forward process
    def forward_step(self, z_prev: torch.Tensor, t, *, noise: torch.Tensor | None = None,
                     generator: torch.Generator | int | None = None) -> torch.Tensor:
        """One step of the forward process: ``z_t = √(1 - β_t) z_{t-1} + √β_t ε`` (UDL eq. 18.1).

        Args:
            z_prev: z_{t-1} (x for t = 1), ``(B, ...)``.
            t: the step, an int or an int tensor ``(B,)`` in 1 … T.
            noise: ε, ``z_prev``'s shape; drawn from ``generator`` when None.
            generator: a ``torch.Generator`` or an int seed for ε. Default: torch's global generator.
        """
        owner = "Diffusion.forward_step"
        z_prev = self._data(z_prev, "z_prev", owner)
        t = self._steps(t, len(z_prev), owner)
        if noise is None:
            noise = _noise(z_prev.shape, z_prev, as_generator(generator, owner))
        check_tensor(noise, "noise", owner, shape=tuple(z_prev.shape))
        beta = self._per_example(self.beta[t], z_prev)
        return torch.sqrt(1 - beta) * z_prev + torch.sqrt(beta) * noise

    def forward_chain(self, x: torch.Tensor, t_max: int | None = None, *,
                      generator: torch.Generator | int | None = None) -> torch.Tensor:
        """Run the forward process step by step from x to z_{t_max} (default T).

        Returns:
            ``(t_max + 1, B, ...)``: entry t is z_t, entry 0 is x.
        """
        owner = "Diffusion.forward_chain"
        x = self._data(x, "x", owner)
        t_max = self.T if t_max is None else check_int(t_max, "t_max", owner, maximum=self.T)
        generator = as_generator(generator, owner)
        chain = [x]
        for t in range(1, t_max + 1):
            chain.append(self.forward_step(chain[-1], t, generator=generator))
        return torch.stack(chain)  # (t_max + 1, B, ...)

    def diffusion_kernel(self, t: int) -> tuple[float, float]:
        """q(z_t | x) = Norm[m x, v I]: the pair ``(m, v) = (√ᾱ_t, 1 - ᾱ_t)`` (UDL eq. 18.7); t in 0 … T."""
        t = check_int(t, "t", "Diffusion.diffusion_kernel", minimum=0, maximum=self.T)
        return math.sqrt(float(self.alpha_bar[t])), 1.0 - float(self.alpha_bar[t])

    def diffuse(self, x: torch.Tensor, t, *, noise: torch.Tensor | None = None,
                generator: torch.Generator | int | None = None) -> torch.Tensor:
        """A draw from the diffusion kernel: ``z_t = √ᾱ_t x + √(1 - ᾱ_t) ε`` (UDL §18.2.1), in one go.

        Args:
            x: the data, ``(B, ...)``.
            t: the step, an int or an int tensor ``(B,)`` (one step per example) in 0 … T.
            noise: ε, ``x``'s shape; drawn from ``generator`` when None.
            generator: a ``torch.Generator`` or an int seed for ε. Default: torch's global generator.
        """
        owner = "Diffusion.diffuse"
        x = self._data(x, "x", owner)
        t = self._steps(t, len(x), owner, minimum=0)
        if noise is None:
            noise = _noise(x.shape, x, as_generator(generator, owner))
        check_tensor(noise, "noise", owner, shape=tuple(x.shape))
        alpha_bar = self._per_example(self.alpha_bar[t], x)
        return torch.sqrt(alpha_bar) * x + torch.sqrt(1 - alpha_bar) * noise

    # ------------------------------------------------------------------ the reverse process
    def posterior(self, t: int) -> tuple[float, float, float]:
        """q(z_{t-1} | z_t, x) = Norm[a z_t + b x, v I]: the triple ``(a, b, v)`` (UDL §18.2.4); t in 1 … T.

        ``a = (1 - ᾱ_{t-1}) √α_t / (1 - ᾱ_t)``, ``b = √ᾱ_{t-1} β_t / (1 - ᾱ_t)``,
        ``v = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t)``; at t = 1: (0, 1, 0), z_0 is x.
        """
        t = check_int(t, "t", "Diffusion.posterior", maximum=self.T)
        a, b, v = self._posterior(torch.tensor([t]))
        return float(a), float(b), float(v)

    def _posterior(self, t: torch.Tensor):
        alpha_bar, alpha_bar_prev, beta = self.alpha_bar[t], self.alpha_bar[t - 1], self.beta[t]
        a = (1 - alpha_bar_prev) * torch.sqrt(self.alpha[t]) / (1 - alpha_bar)
        b = torch.sqrt(alpha_bar_prev) * beta / (1 - alpha_bar)
        v = beta * (1 - alpha_bar_prev) / (1 - alpha_bar)
        return a, b, v

    def posterior_mean(self, z_t: torch.Tensor, x: torch.Tensor, t) -> torch.Tensor:
        """The mean of q(z_{t-1} | z_t, x): ``a z_t + b x`` (UDL §18.2.4)."""
        owner = "Diffusion.posterior_mean"
        z_t = self._data(z_t, "z_t", owner)
        check_tensor(x, "x", owner, shape=tuple(z_t.shape))
        a, b, _ = self._posterior(self._steps(t, len(z_t), owner))
        return self._per_example(a, z_t) * z_t + self._per_example(b, z_t) * x

    def predict_x(self, z_t: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:
        """The data implied by a noise estimate: ``x̂ = (z_t - √(1 - ᾱ_t) ε̂) / √ᾱ_t`` (the kernel solved for x)."""
        owner = "Diffusion.predict_x"
        z_t = self._data(z_t, "z_t", owner)
        check_tensor(eps, "eps", owner, shape=tuple(z_t.shape))
        alpha_bar = self._per_example(self.alpha_bar[self._steps(t, len(z_t), owner)], z_t)
        return (z_t - torch.sqrt(1 - alpha_bar) * eps) / torch.sqrt(alpha_bar)

    def loss(self, model: nn.Module, x: torch.Tensor, c: torch.Tensor | None = None, *, p_uncond: float = 0.0,
             null_class: int | None = None, t: torch.Tensor | None = None, noise: torch.Tensor | None = None,
             generator: torch.Generator | int | None = None) -> torch.Tensor:
        """The simple least-squares loss of algorithm 18.1: ``mean ||g[z_t, t(, c)] - ε||²`` (UDL §18.5, alg. 18.1).

        Each example gets its own step t, uniform in 1 … T, and noise ε ~ N(0, I);
        z_t = √ᾱ_t x + √(1 - ᾱ_t) ε. The squared errors are averaged over the batch and the
        entries (the book's sum, divided by a constant).

        Args:
            model: the denoiser, called as ``model(z_t, t)`` (or ``model(z_t, t, c)``).
            x: the data, ``(B, ...)``.
            c: int64 classes ``(B,)`` for a conditional denoiser; None: unconditional.
            p_uncond: the share of labels replaced by ``null_class`` (label dropout, for
                classifier-free guidance). Default 0.
            null_class: the label that means "no class"; default ``model.null_class``.
            t, noise: the steps ``(B,)`` and the noise (``x``'s shape); drawn when None.
            generator: a ``torch.Generator`` or an int seed for what is drawn, in the order
                t, ε, dropped labels. Default: torch's global generator.

        Returns:
            A scalar tensor.
        """
        owner = "Diffusion.loss"
        check_instance(model, "model", owner, nn.Module)
        x = self._data(x, "x", owner)
        p_uncond = check_float(p_uncond, "p_uncond", owner, low=0.0, high=1.0)
        generator = as_generator(generator, owner)
        device = generator.device if generator is not None else x.device
        if t is None:
            t = torch.randint(1, self.T + 1, (len(x),), generator=generator, device=device)
        t = self._steps(t, len(x), owner).to(x.device)
        if noise is None:
            noise = _noise(x.shape, x, generator)
        z_t = self.diffuse(x, t, noise=noise)
        if c is None:
            return torch.mean((model(z_t, t) - noise) ** 2)
        check_tensor(c, "c", owner, shape=(len(x),), dtype="int")
        if p_uncond > 0:
            null = self._null_class(model, null_class, owner)
            drop = torch.rand(len(x), generator=generator, device=device).to(c.device) < p_uncond
            c = torch.where(drop, torch.full_like(c, null), c)
        return torch.mean((model(z_t, t, c) - noise) ** 2)

    @staticmethod
    def _null_class(model: nn.Module, null_class, owner: str) -> int:
        if null_class is None:
            null_class = getattr(model, "null_class", None)
            if null_class is None:
                raise ValueError(f"The 'null_class' parameter of {owner} must be an int when the model has no "
                                 f"null_class attribute. Got None instead.")
        return check_int(null_class, "null_class", owner, minimum=0)

    def guided_noise(self, model: nn.Module, z_t: torch.Tensor, t, c: torch.Tensor | None = None, *,
                     guidance: float = 0.0, null_class: int | None = None) -> torch.Tensor:
        """The noise estimate, with classifier-free guidance: ``(1 + w) g[z_t, t, c] - w g[z_t, t, ∅]``.

        ``c = None`` calls ``model(z_t, t)`` (an unconditional model; ``guidance`` must be 0);
        ``guidance = 0`` is the plain conditional estimate. For w ≠ 0 the two estimates come
        from one call on the doubled batch.

        Args:
            model: the denoiser. z_t: ``(B, ...)``. t: an int or int tensor ``(B,)`` in 1 … T.
            c: int64 classes ``(B,)`` or None.
            guidance: w >= 0. Default 0.
            null_class: the label meaning "no class"; default ``model.null_class``.
        """
        owner = "Diffusion.guided_noise"
        z_t = self._data(z_t, "z_t", owner)
        t = self._steps(t, len(z_t), owner).to(z_t.device)
        guidance = check_float(guidance, "guidance", owner, low=0.0)
        if c is None:
            if guidance != 0:
                raise ValueError(f"The 'c' parameter of {owner} must be a tensor of classes when guidance != 0. "
                                 f"Got None instead.")
            return model(z_t, t)
        check_tensor(c, "c", owner, shape=(len(z_t),), dtype="int")
        if guidance == 0:
            return model(z_t, t, c)
        null = torch.full_like(c, self._null_class(model, null_class, owner))
        eps_c, eps_null = model(torch.cat([z_t, z_t]), torch.cat([t, t]), torch.cat([c, null])).chunk(2)
        return (1 + guidance) * eps_c - guidance * eps_null

    def ddpm_step(self, eps: torch.Tensor, z_t: torch.Tensor, t: int, *, variance: str = "posterior",
                  clip: float | None = None, noise: torch.Tensor | None = None,
                  generator: torch.Generator | int | None = None) -> torch.Tensor:
        """One step of ancestral sampling (algorithm 18.2): z_t → z_{t-1}.

        ``z_{t-1} = (z_t - β_t / √(1 - ᾱ_t) ε̂) / √α_t + σ_t ε`` (UDL alg. 18.2), with
        ``σ_t² = β̃_t`` (``variance="posterior"``, diffusers' fixed_small) or ``β_t``
        (``"beta"``, fixed_large); at t = 1 no noise is added.

        With ``clip``, the data estimate x̂ = (z_t - √(1 - ᾱ_t) ε̂) / √ᾱ_t is clipped to
        [-clip, clip] and the mean is the posterior mean a z_t + b x̂ of q(z_{t-1} | z_t, x̂)
        (without clipping the same number as the formula above). Near t = T, where ᾱ_t is
        tiny, x̂ multiplies the denoiser's errors by 1/√ᾱ_t: for data known to lie in a
        range (images scaled to [-1, 1]) clipping keeps them there (diffusers' ``clip_sample``).

        Args:
            eps: the noise estimate ĝ[z_t, t], ``z_t``'s shape.
            z_t: ``(B, ...)``. t: the step, an int in 1 … T.
            variance: ``"posterior"`` or ``"beta"``.
            clip: a bound c > 0 on |x̂|, or None (default) for no clipping.
            noise: ε, ``z_t``'s shape; drawn from ``generator`` when None (and t > 1).
            generator: a ``torch.Generator`` or an int seed. Default: torch's global generator.
        """
        owner = "Diffusion.ddpm_step"
        z_t = self._data(z_t, "z_t", owner)
        check_tensor(eps, "eps", owner, shape=tuple(z_t.shape))
        t = check_int(t, "t", owner, maximum=self.T)
        variance = check_choice(variance, "variance", owner, ("posterior", "beta"))
        clip = _clip(clip, owner)
        if noise is not None:
            check_tensor(noise, "noise", owner, shape=tuple(z_t.shape))
        beta, alpha, alpha_bar = float(self.beta[t]), float(self.alpha[t]), float(self.alpha_bar[t])
        if clip is None:
            mean = (z_t - beta / math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha)
        else:
            x_hat = ((z_t - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)).clamp(-clip, clip)
            a, b, _ = self._posterior(torch.tensor([t]))
            mean = float(a) * z_t + float(b) * x_hat
        if t == 1:
            return mean
        sigma2 = beta if variance == "beta" else float(self._posterior(torch.tensor([t]))[2])
        if noise is None:
            noise = _noise(z_t.shape, z_t, as_generator(generator, owner))
        check_tensor(noise, "noise", owner, shape=tuple(z_t.shape))
        return mean + math.sqrt(sigma2) * noise

    def ddim_step(self, eps: torch.Tensor, z_t: torch.Tensor, t: int, t_prev: int, *, eta: float = 0.0,
                  clip: float | None = None, noise: torch.Tensor | None = None,
                  generator: torch.Generator | int | None = None) -> torch.Tensor:
        """One DDIM step from step t to an earlier step ``t_prev`` (deterministic for η = 0).

        ``z_s = √ᾱ_s x̂ + √(1 - ᾱ_s - σ²) ε̂ + σ ε`` with ``x̂ = (z_t - √(1 - ᾱ_t) ε̂) / √ᾱ_t``,
        ``σ = η √((1 - ᾱ_s)/(1 - ᾱ_t)) √(1 - ᾱ_t/ᾱ_s)`` and s = ``t_prev`` (s = 0 gives x̂).

        Args:
            eps: the noise estimate ĝ[z_t, t]. z_t: ``(B, ...)``.
            t: the current step in 1 … T. t_prev: the step to go to, in 0 … t - 1.
            eta: η >= 0, the share of the ancestral noise. Default 0.
            clip: a bound c > 0 on |x̂| (as in :meth:`ddpm_step`), or None. Default None. The
                noise estimate is then the one consistent with the clipped x̂,
                ε̂ = (z_t - √ᾱ_t x̂) / √(1 - ᾱ_t) (diffusers' ``use_clipped_model_output``):
                keeping the network's ε̂ beside a clipped x̂ measured far worse (guided
                digits: Fréchet distance 49 against 10).
            noise: ε (for η > 0); drawn from ``generator`` when None.
            generator: a ``torch.Generator`` or an int seed. Default: torch's global generator.
        """
        owner = "Diffusion.ddim_step"
        z_t = self._data(z_t, "z_t", owner)
        check_tensor(eps, "eps", owner, shape=tuple(z_t.shape))
        t = check_int(t, "t", owner, maximum=self.T)
        t_prev = check_int(t_prev, "t_prev", owner, minimum=0, maximum=t - 1)
        eta = check_float(eta, "eta", owner, low=0.0)
        clip = _clip(clip, owner)
        if noise is not None:
            check_tensor(noise, "noise", owner, shape=tuple(z_t.shape))
        alpha_bar, alpha_bar_prev = float(self.alpha_bar[t]), float(self.alpha_bar[t_prev])
        x_hat = (z_t - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)
        if clip is not None:
            x_hat = x_hat.clamp(-clip, clip)
            eps = (z_t - math.sqrt(alpha_bar) * x_hat) / math.sqrt(1 - alpha_bar)
        sigma = eta * math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
        z_prev = math.sqrt(alpha_bar_prev) * x_hat + math.sqrt(max(1 - alpha_bar_prev - sigma ** 2, 0.0)) * eps
        if sigma == 0:
            return z_prev
        if noise is None:
            noise = _noise(z_t.shape, z_t, as_generator(generator, owner))
        check_tensor(noise, "noise", owner, shape=tuple(z_t.shape))
        return z_prev + sigma * noise

    # ------------------------------------------------------------------ samplers
    def _start(self, model, shape, c, owner, generator, device, dtype):
        check_instance(model, "model", owner, nn.Module)
        if isinstance(shape, int) or not isinstance(shape, (tuple, list, torch.Size)) or len(shape) == 0 \
                or any(not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 1 for s in shape):
            raise ValueError(f"The 'shape' parameter of {owner} must be a tuple of positive ints (B, ...). "
                             f"Got {shape!r} instead.")
        if c is not None:
            check_tensor(c, "c", owner, shape=(shape[0],), dtype="int")
        if device is None:
            parameter = next(model.parameters(), None)
            device = parameter.device if parameter is not None else torch.device("cpu")
            dtype = dtype if dtype is not None else (parameter.dtype if parameter is not None else torch.float32)
        dtype = torch.float32 if dtype is None else dtype
        generator = as_generator(generator, owner)
        like = torch.empty(0, dtype=dtype, device=device)
        return _noise(tuple(shape), like, generator), generator  # z_T ~ N(0, I)

    @torch.no_grad()
    def sample_ddpm(self, model: nn.Module, shape, c: torch.Tensor | None = None, *, guidance: float = 0.0,
                    null_class: int | None = None, variance: str = "posterior", clip: float | None = None,
                    generator: torch.Generator | int | None = None, trajectory: bool = False,
                    device=None, dtype: torch.dtype | None = None):
        """Ancestral sampling (algorithm 18.2): z_T ~ N(0, I), then T steps of :meth:`ddpm_step`.

        Args:
            model: the denoiser (evaluated under ``torch.no_grad``; put it in eval mode).
            shape: the samples' shape ``(B, ...)``.
            c: int64 classes ``(B,)`` for a conditional denoiser; None: unconditional.
            guidance: the classifier-free guidance weight w (see :meth:`guided_noise`). Default 0.
            null_class: the label meaning "no class"; default ``model.null_class``.
            variance: σ_t², ``"posterior"`` (β̃_t) or ``"beta"`` (β_t).
            clip: a bound on the data estimate x̂ at every step (see :meth:`ddpm_step`), or None.
            generator: a ``torch.Generator`` or an int seed: z_T, then each step's noise.
            trajectory: also return every z_t. Default False.
            device, dtype: of the samples; default the model's first parameter's.

        Returns:
            The samples ``shape`` (z_0 = x); with ``trajectory`` the pair ``(samples, path)``,
            ``path`` ``(T + 1, *shape)`` with z_t in entry t.
        """
        owner = "Diffusion.sample_ddpm"
        variance = check_choice(variance, "variance", owner, ("posterior", "beta"))
        clip = _clip(clip, owner)
        z, generator = self._start(model, shape, c, owner, generator, device, dtype)
        path = [z]
        for t in range(self.T, 0, -1):
            eps = self.guided_noise(model, z, t, c, guidance=guidance, null_class=null_class)
            z = self.ddpm_step(eps, z, t, variance=variance, clip=clip, generator=generator)
            if trajectory:
                path.append(z)
        return (z, torch.stack(path[::-1])) if trajectory else z

    @torch.no_grad()
    def sample_ddim(self, model: nn.Module, shape, c: torch.Tensor | None = None, *, n_steps: int = 50,
                    eta: float = 0.0, guidance: float = 0.0, null_class: int | None = None,
                    clip: float | None = None, generator: torch.Generator | int | None = None, trajectory: bool = False,
                    device=None, dtype: torch.dtype | None = None):
        """DDIM sampling in ``n_steps`` jumps along :func:`ddim_timesteps` (deterministic given z_T for η = 0).

        Args: as :meth:`sample_ddpm`, and
            n_steps: the number of denoiser calls, 1 … T. Default 50.
            eta: η, the share of ancestral noise (0: deterministic). Default 0.
            clip: a bound on the data estimate x̂ at every step (see :meth:`ddpm_step`), or None.

        Returns:
            The samples; with ``trajectory`` the triple ``(samples, path, steps)``: ``path``
            ``(n_steps + 1, *shape)`` holds z at the visited steps ``steps`` (a list of ints,
            increasing: 0 for the samples first, T last).
        """
        owner = "Diffusion.sample_ddim"
        n_steps = check_int(n_steps, "n_steps", owner, maximum=self.T)
        clip = _clip(clip, owner)
        z, generator = self._start(model, shape, c, owner, generator, device, dtype)
        steps = ddim_timesteps(self.T, n_steps)
        path = [z]
        for t, t_prev in zip(steps[:-1], steps[1:]):
            eps = self.guided_noise(model, z, t, c, guidance=guidance, null_class=null_class)
            z = self.ddim_step(eps, z, t, t_prev, eta=eta, clip=clip, generator=generator)
            if trajectory:
                path.append(z)
        return (z, torch.stack(path[::-1]), steps[::-1]) if trajectory else z
