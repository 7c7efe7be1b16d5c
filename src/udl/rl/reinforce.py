"""Policy gradients: a deep policy network trained by REINFORCE (UDL §19.5).

The policy ``pi[a | s, theta]`` is a deep network on a one-hot encoding of the state
that outputs one logit per action (a softmax turns them into probabilities). REINFORCE
samples I episodes with the current policy and ascends the Monte Carlo estimate of
the gradient of the expected return:

    theta <- theta + alpha (1/I) sum_i sum_t  d log pi[a_it | s_it, theta] / d theta  (G_it - b_it)

where ``G_it = sum_{k>=t} gamma^(k-t) r_i,k+1`` is the discounted return-to-go from
step t (UDL eq. 19.1) and ``b_it`` a baseline that does not depend on the action, so
it leaves the gradient unbiased but lowers its variance (UDL §19.5). Here the
baseline is the batch's mean return from the same state, a Monte Carlo estimate of
``v[s_it]``, so ``G - b`` estimates the advantage of the action taken. An entropy
bonus that fades to zero keeps the shared network from settling early on one action
everywhere (see :func:`reinforce`).

Episodes are simulated from the MDP's own transition tensor, many in parallel in
torch (:func:`sample_episodes`: the same process as stepping the Gymnasium environment
:class:`udl.rl.penguin.PenguinEnv` once per episode, but one tensor operation per step
for the whole batch), or, with ``reinforce(..., env=...)``, by rolling each episode out
in a Gymnasium environment (:func:`sample_env_episodes`, e.g.
``gymnasium.make("udl/Penguin-v0")``). Because the MDP is known, :func:`policy_value`
evaluates a learned policy exactly.

Example::

    from udl.rl.penguin import penguin_mdp
    mdp = penguin_mdp()
    policy = PolicyNetwork(16, 4, hidden=(32, 32), generator=0)
    history = reinforce(policy, mdp, iterations=200, generator=0)
    history["value"][-1]          # exact expected return of the policy from the start state
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.init import initialised_from
from udl.rl.penguin import MDP, policy_evaluation, rollout
from udl.validate import as_generator, check_bool, check_choice, check_float, check_int, check_sizes

BASELINES = ("state", "mean", "none")


def _check_mdp(mdp, owner: str) -> None:
    if not isinstance(mdp, MDP):
        raise TypeError(f"The 'mdp' parameter of {owner} must be an MDP. Got {type(mdp).__name__} instead.")


class PolicyNetwork(nn.Module):
    """A deep policy network ``pi[a | s, theta]`` for a finite MDP (UDL §19.5).

    One-hot state ``(S,)`` -> Linear -> ReLU -> ... -> Linear -> ``A`` action logits.

    Args:
        n_states: number of states S (16 for the penguin).
        n_actions: number of actions A (4 for the penguin).
        hidden: widths of the hidden layers (default ``(32, 32)``: a deep network).
        generator: the random numbers of the initial weights (torch's default
            initialisation of ``nn.Linear``), a ``torch.Generator`` or an int seed; the
            same seed gives the weights that ``torch.manual_seed(seed)`` gave. None
            draws from torch's global generator.

    Shape:
        input: ``(N,)`` integer states in ``[0, S)``; output: ``(N, A)`` logits.

    Example::

        >>> net = PolicyNetwork(16, 4, generator=0)
        >>> net(torch.tensor([0, 5])).shape
        torch.Size([2, 4])
        >>> net.probabilities().shape       # pi[a|s] for every state
        torch.Size([16, 4])
    """

    def __init__(self, n_states: int, n_actions: int, hidden: tuple[int, ...] = (32, 32), *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "PolicyNetwork"
        self.n_states = check_int(n_states, "n_states", owner)
        self.n_actions = check_int(n_actions, "n_actions", owner)
        self.hidden = check_sizes(hidden, "hidden", owner, min_len=0)
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):  # the layers in order, as torch.manual_seed(seed) drew them
            widths = (self.n_states, *self.hidden, self.n_actions)
            layers: list[nn.Module] = []
            for i, (d_from, d_to) in enumerate(zip(widths[:-1], widths[1:])):
                if i > 0:
                    layers.append(nn.ReLU())
                layers.append(nn.Linear(d_from, d_to))
            self.net = nn.Sequential(*layers)

    @property
    def depth(self) -> int:
        """The number of hidden layers."""
        return len(self.hidden)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """Action logits for integer ``states``: ``(N,) -> (N, A)``."""
        if not isinstance(states, torch.Tensor) or states.dtype not in (torch.int64, torch.int32):
            raise TypeError("The 'states' argument of PolicyNetwork must be an integer torch.Tensor. "
                            f"Got {getattr(states, 'dtype', type(states).__name__)} instead.")
        if states.dim() != 1 or (states.numel() and (states.min() < 0 or states.max() >= self.n_states)):
            raise ValueError(f"The 'states' argument of PolicyNetwork must be a 1-D tensor of states in "
                             f"[0, {self.n_states - 1}]. Got shape {tuple(states.shape)} instead.")
        x = F.one_hot(states.long(), self.n_states).to(self.net[0].weight.dtype)  # (N,) -> (N, S)
        return self.net(x)

    def probabilities(self) -> torch.Tensor:
        """The whole policy ``pi[a|s]`` as an ``(S, A)`` tensor (rows sum to one)."""
        states = torch.arange(self.n_states, device=self.net[0].weight.device)
        return torch.softmax(self(states), dim=1)


def returns_to_go(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted returns ``G_t = r_{t+1} + gamma G_{t+1}`` from every step (UDL eq. 19.1).

    ``rewards[i, t]`` is the reward received after the action at step t of episode i
    (zero after the episode ends).

    Shape:
        rewards: ``(I, T)``; output: ``(I, T)``.
    """
    if not isinstance(rewards, torch.Tensor) or rewards.dim() != 2:
        raise ValueError("The 'rewards' parameter of returns_to_go must be a 2-D torch.Tensor (I, T). "
                         f"Got {getattr(rewards, 'shape', type(rewards).__name__)} instead.")
    gamma = check_float(gamma, "gamma", "returns_to_go", low=0.0, high=1.0)
    G = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + gamma * running
        G[:, t] = running
    return G


def sample_episodes(mdp: MDP, pi: torch.Tensor, n_episodes: int, max_steps: int,
                    generator: torch.Generator | int, exploring_starts: bool = False) -> dict[str, torch.Tensor]:
    """Simulate ``n_episodes`` episodes of policy ``pi`` in parallel.

    Args:
        mdp: the :class:`~udl.rl.penguin.MDP`.
        pi: ``(S, A)`` action probabilities.
        n_episodes: I, episodes in the batch.
        max_steps: T, the episode length limit.
        generator: what draws the starts, actions and moves: a ``torch.Generator`` (its
            stream continues) or an int seed.
        exploring_starts: start in uniformly random non-terminal states instead of
            ``mdp.start`` (default False).

    Returns:
        ``{"states", "actions"}`` (int64) and ``{"rewards", "alive"}`` (float; alive is
        1 for steps that belong to the episode), each of shape ``(I, T)``.
    """
    _check_mdp(mdp, "sample_episodes")
    n_episodes = check_int(n_episodes, "n_episodes", "sample_episodes")
    max_steps = check_int(max_steps, "max_steps", "sample_episodes")
    if not isinstance(pi, torch.Tensor) or pi.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"The 'pi' parameter of sample_episodes must be a ({mdp.n_states}, {mdp.n_actions}) "
                         f"tensor. Got {getattr(pi, 'shape', type(pi).__name__)} instead.")
    if not torch.isfinite(pi).all() or (pi < 0).any() or not torch.allclose(pi.sum(1).double(),
                                                                         torch.ones(1, dtype=torch.float64)):
        raise ValueError("The 'pi' parameter of sample_episodes must have rows that are probability "
                         "distributions. Got other values instead.")
    generator = as_generator(generator, "sample_episodes", optional=False)
    check_bool(exploring_starts, "exploring_starts", "sample_episodes")
    # inverse-CDF sampling: the first index whose cumulative probability exceeds u ~ U(0, 1)
    P_cdf = torch.tensor(mdp.P, dtype=torch.float64).cumsum(2)  # (S, A, S)
    r = torch.tensor(mdp.r, dtype=torch.float32)
    terminal = torch.tensor(mdp.terminal)
    pi_cdf = pi.detach().to(torch.float64).cpu().cumsum(1)  # (S, A)
    pi_cdf = pi_cdf / pi_cdf[:, -1:]
    states = torch.zeros(n_episodes, max_steps, dtype=torch.int64)
    actions = torch.zeros(n_episodes, max_steps, dtype=torch.int64)
    rewards = torch.zeros(n_episodes, max_steps)
    alive = torch.zeros(n_episodes, max_steps)
    if exploring_starts:  # uniformly random non-terminal start states, as Monte Carlo methods do (UDL §19.3)
        candidates = torch.nonzero(~terminal).squeeze(1)
        s = candidates[torch.randint(len(candidates), (n_episodes,), generator=generator)]
    else:
        s = torch.full((n_episodes,), mdp.start, dtype=torch.int64)
    running = torch.ones(n_episodes, dtype=torch.bool)
    for t in range(max_steps):
        u = torch.rand(n_episodes, 2, 1, generator=generator, dtype=torch.float64)
        a = (pi_cdf[s] <= u[:, 0]).sum(1).clamp(max=mdp.n_actions - 1)  # (I, A) -> (I,)
        states[:, t], actions[:, t] = s, a
        alive[:, t] = running.float()
        rewards[:, t] = torch.where(running, r[s, a], 0.0)
        running = running & ~terminal[s]  # acting in a terminal state ends the episode
        if not running.any():
            break
        s = (P_cdf[s, a] <= u[:, 1]).sum(1).clamp(max=mdp.n_states - 1)  # (I, S) -> (I,)
    return {"states": states, "actions": actions, "rewards": rewards, "alive": alive}


def sample_env_episodes(env: gym.Env, pi: torch.Tensor, n_episodes: int, max_steps: int, *,
                        seed: int) -> dict[str, torch.Tensor]:
    """Episodes of policy ``pi`` rolled out one by one in a Gymnasium environment with discrete spaces.

    Episode i is :func:`udl.rl.penguin.rollout` with ``seed + i`` (the environment's reset
    and the action draws). The result has :func:`sample_episodes`'s layout, so
    :func:`surrogate_loss` takes either.

    Args:
        env: the environment (``gymnasium.make("udl/Penguin-v0")``, FrozenLake, ...).
        pi: ``(S, A)`` action probabilities.
        n_episodes: I, episodes in the batch.
        max_steps: T, the episode length limit (the environment may end episodes sooner).
        seed: the seed of the first episode.

    Returns:
        ``{"states", "actions"}`` (int64) and ``{"rewards", "alive"}`` (float), each ``(I, T)``;
        entries after an episode's end are zero.
    """
    owner = "sample_env_episodes"
    if not isinstance(env, gym.Env) or not isinstance(env.observation_space, gym.spaces.Discrete) \
            or not isinstance(env.action_space, gym.spaces.Discrete):
        raise TypeError(f"The 'env' parameter of {owner} must be a gymnasium.Env with Discrete observation and "
                        f"action spaces. Got {type(env).__name__} instead.")
    S, A = int(env.observation_space.n), int(env.action_space.n)
    if not isinstance(pi, torch.Tensor) or pi.shape != (S, A) or not torch.isfinite(pi).all() or (pi < 0).any() \
            or not torch.allclose(pi.sum(1).double(), torch.ones(1, dtype=torch.float64), atol=1e-5):
        raise ValueError(f"The 'pi' parameter of {owner} must be a ({S}, {A}) tensor whose rows are probability "
                         f"distributions. Got {getattr(pi, 'shape', type(pi).__name__)} instead.")
    n_episodes = check_int(n_episodes, "n_episodes", owner)
    max_steps = check_int(max_steps, "max_steps", owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    p = pi.detach().double().cpu().numpy()
    p = p / p.sum(axis=1, keepdims=True)
    states = torch.zeros(n_episodes, max_steps, dtype=torch.int64)
    actions = torch.zeros(n_episodes, max_steps, dtype=torch.int64)
    rewards = torch.zeros(n_episodes, max_steps)
    alive = torch.zeros(n_episodes, max_steps)
    for i in range(n_episodes):
        s, a, r = rollout(env, p, seed=seed + i, max_steps=max_steps)
        n = len(a)
        states[i, :n], actions[i, :n] = torch.from_numpy(s[:-1]), torch.from_numpy(a)
        rewards[i, :n], alive[i, :n] = torch.from_numpy(r).float(), 1.0
    return {"states": states, "actions": actions, "rewards": rewards, "alive": alive}


def policy_value(policy: PolicyNetwork, mdp: MDP) -> np.ndarray:
    """Exact state values ``v[s | pi]`` of the network's stochastic policy, shape ``(S,)``."""
    if not isinstance(policy, PolicyNetwork):
        raise TypeError(f"The 'policy' parameter of policy_value must be a PolicyNetwork. "
                        f"Got {type(policy).__name__} instead.")
    _check_mdp(mdp, "policy_value")
    with torch.no_grad():
        pi = policy.probabilities().double().cpu().numpy()
    return policy_evaluation(mdp, pi / pi.sum(axis=1, keepdims=True))


def _baseline(G: torch.Tensor, states: torch.Tensor, alive: torch.Tensor, kind: str, n_states: int) -> torch.Tensor:
    if kind == "none":
        return torch.zeros_like(G)
    if kind == "mean":
        return (G * alive).sum() / alive.sum().clamp(min=1) * torch.ones_like(G)
    # per-state mean return in this batch: a Monte Carlo estimate of v[s]
    flat_s, flat_g, flat_w = states.reshape(-1), (G * alive).reshape(-1), alive.reshape(-1)  # (I*T,)
    total = torch.zeros(n_states, dtype=G.dtype).index_add_(0, flat_s, flat_g)
    count = torch.zeros(n_states, dtype=G.dtype).index_add_(0, flat_s, flat_w)
    v_hat = total / count.clamp(min=1)
    return v_hat[states]  # (S,) indexed by (I, T) -> (I, T)


def surrogate_loss(policy: PolicyNetwork, batch: dict[str, torch.Tensor], gamma: float, *,
                   baseline: str = "state", entropy: float = 0.0) -> torch.Tensor:
    """The loss whose gradient is minus the REINFORCE estimate (plus an optional entropy bonus).

        L = -(1/I) sum_i sum_t [ log pi[a_it | s_it] (G_it - b_it) + entropy * H[pi[. | s_it]] ]

    ``G`` (returns-to-go) and ``b`` (the baseline) are constants: only ``log pi`` and
    ``H`` carry gradients, so ``-dL/dtheta`` is the policy-gradient estimate of UDL §19.5.

    Args:
        policy: the :class:`PolicyNetwork`.
        batch: episodes from :func:`sample_episodes`.
        gamma: the discount factor of the returns.
        baseline: ``"state"`` (batch mean return from the same state), ``"mean"`` (one
            batch mean) or ``"none"``.
        entropy: weight of the entropy bonus (default 0).

    Returns:
        A scalar tensor.
    """
    if not isinstance(policy, PolicyNetwork):
        raise TypeError(f"The 'policy' parameter of surrogate_loss must be a PolicyNetwork. "
                        f"Got {type(policy).__name__} instead.")
    keys = ("states", "actions", "rewards", "alive")
    if not isinstance(batch, dict) or any(k not in batch for k in keys):
        raise ValueError(f"The 'batch' parameter of surrogate_loss must be a dict with keys {', '.join(keys)} "
                         f"(see sample_episodes). Got {type(batch).__name__} instead.")
    check_choice(baseline, "baseline", "surrogate_loss", BASELINES)
    entropy = check_float(entropy, "entropy", "surrogate_loss", low=0.0)
    device = policy.net[0].weight.device
    I, T = batch["states"].shape
    G = returns_to_go(batch["rewards"], gamma)  # (I, T)
    b = _baseline(G, batch["states"], batch["alive"], baseline, policy.n_states)  # (I, T)
    alive = batch["alive"].to(device)
    weight = (G - b).to(device) * alive
    logits = policy(batch["states"].reshape(-1).to(device))  # (I*T,) -> (I*T, A)
    log_p = torch.log_softmax(logits, dim=1)  # (I*T, A)
    log_pi = log_p.gather(1, batch["actions"].reshape(-1, 1).to(device)).reshape(I, T)  # (I*T, 1) -> (I, T)
    H = -(log_p.exp() * log_p).sum(dim=1).reshape(I, T)  # entropy of pi[.|s_it]: (I*T,) -> (I, T)
    return -((log_pi * weight).sum() + entropy * (H * alive).sum()) / I


def reinforce(policy: PolicyNetwork, mdp: MDP, *, iterations: int = 200, episodes: int = 32,
              lr: float = 1e-2, max_steps: int = 50, baseline: str = "state", entropy: float = 0.1,
              exploring_starts: bool = False, generator: torch.Generator | int = 0,
              env: gym.Env | None = None) -> dict[str, list[float]]:
    """Train ``policy`` on ``mdp`` with REINFORCE (UDL §19.5), in place.

    Each iteration samples ``episodes`` episodes, computes returns-to-go ``G`` and the
    baseline ``b``, and takes one Adam step on the surrogate loss

        -(1/I) sum_i sum_t [ log pi[a_it | s_it] (G_it - b_it) + beta_k H[pi[. | s_it]] ],

    whose first term's gradient is minus the REINFORCE estimate. The second is an
    entropy bonus (not in the book; Williams & Peng 1991): all states share the
    network, so without it an early, locally good action (on the penguin grid: "up",
    away from the holes) takes over every state before the fish is found. Its weight
    ``beta_k`` falls linearly from ``entropy`` to zero, so the last updates follow the
    book's gradient alone.

    Args:
        policy: a :class:`PolicyNetwork` with the MDP's numbers of states and actions.
        mdp: the :class:`~udl.rl.penguin.MDP` (episodes start from ``mdp.start``).
        iterations: policy updates (default 200).
        episodes: episodes per update, I (default 32).
        lr: Adam's learning rate (default 1e-2).
        max_steps: episode length limit, T (default 50; gamma^50 is 0.005 for gamma 0.9).
        baseline: ``"state"`` (batch mean return per state, default), ``"mean"`` (one
            batch mean) or ``"none"``.
        entropy: initial weight of the entropy bonus (default 0.1; 0 gives plain REINFORCE).
        exploring_starts: start episodes in uniformly random non-terminal states
            instead of ``mdp.start`` (default False).
        generator: what draws the episodes, a ``torch.Generator`` or an int seed
            (default 0). The policy's weights are not redrawn.
        env: None (default: episodes from ``mdp``'s transition tensor, many at once, by
            :func:`sample_episodes`) or a Gymnasium environment that simulates ``mdp``
            (``gymnasium.make("udl/Penguin-v0")``): each episode is rolled out in it by
            :func:`sample_env_episodes`, seeded from ``generator``. ``mdp`` still gives
            the discount and the exact values in the history.

    Returns:
        ``{"return": mean sampled return G_0 of each iteration's episodes, "value": exact
        expected return v[start | pi] of the policy before each update, "loss": the
        surrogate loss}``.
    """
    if not isinstance(policy, PolicyNetwork):
        raise TypeError(f"The 'policy' parameter of reinforce must be a PolicyNetwork. "
                        f"Got {type(policy).__name__} instead.")
    _check_mdp(mdp, "reinforce")
    if (policy.n_states, policy.n_actions) != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"The 'policy' parameter of reinforce must have {mdp.n_states} states and "
                         f"{mdp.n_actions} actions. Got {policy.n_states} and {policy.n_actions} instead.")
    owner = "reinforce"
    iterations = check_int(iterations, "iterations", owner)
    episodes = check_int(episodes, "episodes", owner)
    max_steps = check_int(max_steps, "max_steps", owner)
    lr = check_float(lr, "lr", owner, low=0.0, low_open=True)
    check_choice(baseline, "baseline", owner, BASELINES)
    entropy = check_float(entropy, "entropy", owner, low=0.0)
    check_bool(exploring_starts, "exploring_starts", owner)
    generator = as_generator(generator, owner, optional=False)
    if env is not None:
        if not isinstance(env, gym.Env) or getattr(env.observation_space, "n", None) != mdp.n_states \
                or getattr(env.action_space, "n", None) != mdp.n_actions:
            raise ValueError(f"The 'env' parameter of reinforce must be None or a gymnasium.Env with "
                             f"Discrete({mdp.n_states}) observations and Discrete({mdp.n_actions}) actions. "
                             f"Got {type(env).__name__} instead.")
        if exploring_starts:
            raise ValueError("The 'exploring_starts' parameter of reinforce must be False when env is given. "
                             "Got True instead.")
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    history: dict[str, list[float]] = {"return": [], "value": [], "loss": []}
    for k in range(iterations):
        with torch.no_grad():
            pi = policy.probabilities()
        history["value"].append(float(policy_evaluation(mdp, _normalised(pi))[mdp.start]))
        if env is None:
            batch = sample_episodes(mdp, pi, episodes, max_steps, generator, exploring_starts)
        else:
            seed = int(torch.randint(2 ** 31 - 1, (1,), generator=generator))
            batch = sample_env_episodes(env, pi, episodes, max_steps, seed=seed)
        beta = entropy * (1 - k / iterations)  # the entropy bonus fades out linearly
        loss = surrogate_loss(policy, batch, mdp.gamma, baseline=baseline, entropy=beta)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        discounts = mdp.gamma ** torch.arange(max_steps, dtype=batch["rewards"].dtype)  # gamma^t
        history["return"].append(float((batch["rewards"] * discounts).sum(1).mean()))  # mean G_0
        history["loss"].append(loss.item())
    policy.eval()
    return history


def _normalised(pi: torch.Tensor) -> np.ndarray:
    p = pi.double().cpu().numpy()
    return p / p.sum(axis=1, keepdims=True)


__all__ = ["PolicyNetwork", "reinforce", "surrogate_loss", "returns_to_go", "sample_episodes", "sample_env_episodes",
           "policy_value"]
