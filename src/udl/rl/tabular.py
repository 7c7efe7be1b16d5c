"""Tabular reinforcement learning (UDL §19.3): dynamic programming, Monte Carlo control, SARSA and Q-learning.

Two kinds of method live here.

**Dynamic programming** needs the model: a finite :class:`~udl.rl.penguin.MDP`
(transition tensor ``P[s, a, s']``, expected rewards ``r[s, a]``, discount ``gamma``,
terminal states). The exact solvers of :mod:`udl.rl.penguin` are reused (and
re-exported): :func:`policy_evaluation` (a linear solve), :func:`action_values`,
:func:`greedy_policy`. This module adds the iterative forms of UDL §19.3.1:

* :func:`iterative_policy_evaluation` - sweeps of ``v <- r_pi + gamma P_pi v``;
* :func:`policy_improvement` - the greedy policy of ``q[s, a]`` built from ``v``;
* :func:`policy_iteration` - evaluation and improvement alternated, exact or with a
  few sweeps per evaluation (the book's fig. 19.10), with the history of every step;
* :func:`value_iteration_sweeps` - the Bellman optimality sweeps from ``v = 0``, with
  their history;
* :func:`bellman_residual` - ``max_s |v - T v|`` for the optimality operator (or a
  policy's), zero exactly at the fixed point.

**Learners** need only samples: a Gymnasium environment with ``Discrete`` observation
and action spaces (``FrozenLake-v1``, the penguin's ``udl/Penguin-v0``).
:func:`monte_carlo_control` (first visit), :func:`sarsa` and :func:`q_learning` act
ε-greedily (ties broken at random), take a seed, and return the table ``Q[s, a]`` and a
history with snapshots of the table. The step size for the ``n``-th update of a pair
``(s, a)`` is ``alpha * n ** -alpha_power`` (``alpha_power = 0``: a constant step;
``alpha = alpha_power = 1``: the running mean).

**Gymnasium's models.** :func:`from_gymnasium` turns a toy-text environment's
``env.unwrapped.P`` (lists of ``(prob, next_state, reward, terminated)``) into an
:class:`MDP`, so the same solvers run on ``FrozenLake-v1``; :func:`evaluate_policy`
rolls a policy out in the environment itself.

Example::

    mdp = penguin_mdp()
    v, policy, history = policy_iteration(mdp, sweeps=1, generator=0)
    assert bellman_residual(mdp, v) < 1e-8
    q, learned = q_learning(gymnasium.make("FrozenLake-v1"), episodes=20_000, seed=0)
"""

from __future__ import annotations

import numpy as np

from udl.rl.penguin import (MDP, _check_mdp, _value_iteration, action_values, as_policy_matrix, greedy_policy,
                             policy_evaluation)
from udl.validate import check_float, check_int

__all__ = ["iterative_policy_evaluation", "policy_evaluation", "policy_improvement", "policy_iteration",
           "value_iteration_sweeps", "bellman_residual", "greedy_policy", "action_values", "from_gymnasium",
           "evaluate_policy", "monte_carlo_control", "sarsa", "q_learning", "epsilon_greedy"]


# =========================================================================== dynamic programming
def _policy_matrix(mdp: MDP, policy, owner: str) -> np.ndarray:
    """:func:`as_policy_matrix`, its refusal naming ``owner``."""
    try:
        return as_policy_matrix(mdp, policy)
    except ValueError as error:
        raise ValueError(str(error).replace("parameter must", f"parameter of {owner} must", 1)) from None


def _policy_parts(mdp: MDP, policy, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """``P_pi[s, s']`` and ``r_pi[s]`` of a policy (terminal rows of ``P_pi`` zeroed: nothing follows them)."""
    pi = _policy_matrix(mdp, policy, owner)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P) * (~mdp.terminal)[:, None]  # (S, S)
    return P_pi, np.sum(pi * mdp.r, axis=1)


def iterative_policy_evaluation(mdp: MDP, policy, *, v0=None, sweeps: int | None = None,
                                tol: float = 1e-10, max_sweeps: int = 100_000) -> np.ndarray:
    """A policy's state values by repeated Bellman sweeps (UDL §19.3.1, eq. 19.11).

        v[s] <- sum_a pi[a|s] (r[s, a] + gamma (1 - done[s]) sum_s' P[s'|s, a] v[s'])

    With ``sweeps`` the result is exactly ``sweeps`` updates from ``v0``: from ``v0 = 0``
    and ``gamma = 1`` it is the expected reward of the first ``sweeps`` steps (for
    FrozenLake, the chance of reaching the goal within that many moves). Without it,
    sweeps go on until the largest change is below ``tol`` and the result approaches
    :func:`policy_evaluation`'s linear solve.

    Args:
        mdp: the :class:`MDP`.
        policy: ``(S,)`` actions or an ``(S, A)`` matrix of probabilities.
        v0: starting values, shape ``(S,)`` (default zeros).
        sweeps: a fixed number of sweeps (``0`` returns ``v0``), or None to iterate to ``tol``.
        tol: the stopping change when ``sweeps`` is None.
        max_sweeps: give up (``RuntimeError``) after this many sweeps when ``sweeps`` is None.

    Returns:
        ``v``, shape ``(S,)``.
    """
    _check_mdp(mdp, "iterative_policy_evaluation")
    P_pi, r_pi = _policy_parts(mdp, policy, "iterative_policy_evaluation")
    v = _start_values(mdp, v0, "iterative_policy_evaluation")
    tol = check_float(tol, "tol", "iterative_policy_evaluation", low=0.0, low_open=True)
    max_sweeps = check_int(max_sweeps, "max_sweeps", "iterative_policy_evaluation", minimum=1)
    if sweeps is not None:
        sweeps = check_int(sweeps, "sweeps", "iterative_policy_evaluation", minimum=0)
        for _ in range(sweeps):
            v = r_pi + mdp.gamma * (P_pi @ v)
        return v
    for _ in range(max_sweeps):
        v_new = r_pi + mdp.gamma * (P_pi @ v)
        if np.max(np.abs(v_new - v)) < tol:
            return v_new
        v = v_new
    raise RuntimeError(f"iterative_policy_evaluation did not converge within {max_sweeps} sweeps")


def _start_values(mdp: MDP, v0, owner: str) -> np.ndarray:
    if v0 is None:
        return np.zeros(mdp.n_states)
    v = np.asarray(v0, dtype=np.float64)
    if v.shape != (mdp.n_states,) or not np.isfinite(v).all():
        raise ValueError(f"The 'v0' parameter of {owner} must be finite with shape ({mdp.n_states},). "
                         f"Got shape {v.shape} instead.")
    return v.copy()


def policy_improvement(mdp: MDP, v) -> np.ndarray:
    """The greedy policy ``pi[s] = argmax_a (r[s, a] + gamma sum_s' P[s'|s, a] v[s'])`` (UDL eq. 19.12).

    Ties go to the first action. Returns ``(S,)`` actions.
    """
    _check_mdp(mdp, "policy_improvement")
    return greedy_policy(action_values(mdp, v))


def bellman_residual(mdp: MDP, v, policy=None) -> float:
    """``max_s |v[s] - (T v)[s]|``: how far ``v`` is from a fixed point of a Bellman operator.

    ``T`` is the optimality operator ``(T v)[s] = max_a q[s, a]`` when ``policy`` is None,
    else the policy's ``(T_pi v)[s] = sum_a pi[a|s] q[s, a]``. Zero exactly at ``v*``
    (or at ``v_pi``).
    """
    _check_mdp(mdp, "bellman_residual")
    q = action_values(mdp, v)
    backed_up = q.max(axis=1) if policy is None else np.sum(_policy_matrix(mdp, policy, "bellman_residual") * q, axis=1)
    return float(np.max(np.abs(np.asarray(v, dtype=np.float64) - backed_up)))


def policy_iteration(mdp: MDP, *, policy=None, sweeps: int | None = None, generator=None,
                     max_iterations: int = 10_000) -> tuple[np.ndarray, np.ndarray, list]:
    """Policy iteration: evaluate the policy, make it greedy, repeat until neither changes (UDL §19.3.1).

    With ``sweeps=None`` each evaluation is exact (:func:`policy_evaluation`) and the
    loop stops when the policy is stable: at most ``A ** S`` iterations, a handful in
    practice. With ``sweeps=k`` each evaluation is ``k`` Bellman sweeps continuing from
    the previous values (starting at zero), as the book's fig. 19.10 draws it; the loop
    stops once the policy is stable and the values change by less than ``1e-10``.

    Args:
        mdp: the :class:`MDP`.
        policy: the starting ``(S,)`` actions; default a random policy drawn from ``generator``.
        sweeps: Bellman sweeps per evaluation, or None for the exact solve.
        generator: an int seed or ``np.random.Generator`` for the random starting policy.
        max_iterations: give up (``RuntimeError``) after this many evaluation-improvement rounds.

    Returns:
        ``(v, policy, history)``: the values and policy at convergence and a list of
        ``(v, policy)`` pairs, ``history[0]`` the start (zero values, the starting
        policy) and ``history[i]`` after ``i`` rounds.
    """
    _check_mdp(mdp, "policy_iteration")
    max_iterations = check_int(max_iterations, "max_iterations", "policy_iteration", minimum=1)
    if sweeps is not None:
        sweeps = check_int(sweeps, "sweeps", "policy_iteration", minimum=1)
    if policy is None:
        rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(
            None if generator is None else check_int(generator, "generator", "policy_iteration", minimum=0))
        pi = rng.integers(mdp.n_actions, size=mdp.n_states)
    else:
        pi = np.asarray(policy)
        _policy_matrix(mdp, pi, "policy_iteration")  # the check
        if pi.shape != (mdp.n_states,):
            raise ValueError(f"The 'policy' parameter of policy_iteration must hold one action per state, shape "
                             f"({mdp.n_states},). Got {pi.shape} instead.")
    v = np.zeros(mdp.n_states)
    history = [(v.copy(), pi.copy())]
    for _ in range(max_iterations):
        if sweeps is None:
            v_new = policy_evaluation(mdp, pi)
        else:
            v_new = iterative_policy_evaluation(mdp, pi, v0=v, sweeps=sweeps)
        pi_new = _improve_keeping_ties(mdp, v_new, pi)
        stable = np.array_equal(pi_new, pi) and (sweeps is None or np.max(np.abs(v_new - v)) < 1e-10)
        v, pi = v_new, pi_new
        history.append((v.copy(), pi.copy()))
        if stable:
            return v, pi, history
    raise RuntimeError(f"policy_iteration did not converge within {max_iterations} rounds")


def _improve_keeping_ties(mdp: MDP, v: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """The greedy policy, keeping the current action where it ties with the best (so the loop cannot cycle)."""
    q = action_values(mdp, v)
    best = q.max(axis=1)
    current = q[np.arange(mdp.n_states), pi]
    return np.where(current >= best - 1e-12 * np.maximum(1.0, np.abs(best)), pi, q.argmax(axis=1))


def value_iteration_sweeps(mdp: MDP, *, tol: float = 1e-10,
                           max_iterations: int = 100_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value iteration from ``v = 0`` (UDL §19.3.1), keeping every sweep.

    ``v <- max_a q[s, a]`` until the largest change is below ``tol``; the same fixed point
    as :func:`udl.rl.penguin.value_iteration`, with the history a figure needs.

    Returns:
        ``(v_star, policy, history)``: shapes ``(S,)``, ``(S,)`` and ``(n_sweeps + 1, S)``
        (``history[0]`` is zeros).
    """
    _check_mdp(mdp, "value_iteration_sweeps")
    tol = check_float(tol, "tol", "value_iteration_sweeps", low=0.0, low_open=True)
    max_iterations = check_int(max_iterations, "max_iterations", "value_iteration_sweeps", minimum=1)
    v, policy, history = _value_iteration(mdp, tol, max_iterations, "value_iteration_sweeps")
    return v, policy, np.stack(history)


# =========================================================================== Gymnasium
def _discrete_sizes(env, owner: str) -> tuple[int, int]:
    from gymnasium.spaces import Discrete  # noqa: PLC0415 (gymnasium is a dependency; imported where used)

    obs, act = getattr(env, "observation_space", None), getattr(env, "action_space", None)
    if not isinstance(obs, Discrete) or not isinstance(act, Discrete) or obs.start != 0 or act.start != 0:
        raise TypeError(f"The 'env' parameter of {owner} must be a Gymnasium environment with Discrete observation "
                        f"and action spaces starting at 0. Got {type(env).__name__} instead.")
    return int(obs.n), int(act.n)


def from_gymnasium(env, *, gamma: float | None = None) -> MDP:
    """The :class:`MDP` of a Gymnasium toy-text environment, read from ``env.unwrapped.P``.

    ``P[s][a]`` lists ``(probability, next_state, reward, terminated)``. The transition
    tensor sums the probabilities, ``r[s, a]`` is the expected reward of the move, and a
    state is terminal when the moves into it end the episode (FrozenLake's holes and
    goal). Gymnasium rewards the move *into* a state, so a terminal state itself earns
    nothing more and its value is zero. The start state is the one
    ``env.unwrapped.initial_state_distrib`` puts all its mass on (else state 0). The
    penguin's environment (``udl/Penguin-v0``) carries its :class:`MDP`, which is returned
    (with ``gamma`` replaced when given).

    Args:
        env: e.g. ``gymnasium.make("FrozenLake-v1")`` (wrappers are looked through).
        gamma: the discount (default: the penguin MDP's own, else 1, for which FrozenLake's
            start value is its chance of success).

    Raises:
        ValueError: when the moves into a state disagree about ending the episode.
    """
    S, A = _discrete_sizes(env, "from_gymnasium")
    own = getattr(env.unwrapped, "mdp", None)
    if isinstance(own, MDP):
        return own if gamma is None else MDP(P=own.P, r=own.r, gamma=gamma, terminal=own.terminal, start=own.start)
    table = getattr(env.unwrapped, "P", None)
    if not isinstance(table, dict):
        raise TypeError("The 'env' parameter of from_gymnasium must have a transition table env.unwrapped.P "
                        f"(a toy-text environment). Got {type(env.unwrapped).__name__} instead.")
    P, r = np.zeros((S, A, S)), np.zeros((S, A))
    ends_seen = np.zeros((S, 2), dtype=bool)
    for s in range(S):
        for a in range(A):
            for prob, s_next, reward, terminated in table[s][a]:
                P[s, a, s_next] += prob
                r[s, a] += prob * reward
                if s_next != s or terminated:  # a self-loop that does not end says nothing about s_next
                    ends_seen[s_next, int(bool(terminated))] = True
    if (ends_seen.all(axis=1)).any():
        bad = np.flatnonzero(ends_seen.all(axis=1)).tolist()
        raise ValueError(f"from_gymnasium: the moves into states {bad} disagree about ending the episode")
    terminal = ends_seen[:, 1]
    start = 0
    distribution = getattr(env.unwrapped, "initial_state_distrib", None)
    if distribution is not None and np.isclose(np.max(distribution), 1.0):
        start = int(np.argmax(distribution))
    return MDP(P=P, r=r, gamma=1.0 if gamma is None else gamma, terminal=terminal, start=start)


def evaluate_policy(env, policy, *, episodes: int = 1000, seed: int = 0) -> np.ndarray:
    """Roll a deterministic policy out in ``env`` and return each episode's undiscounted return.

    The episodes end as the environment ends them (terminated or truncated: ``FrozenLake-v1``
    made by ``gymnasium.make`` stops after 100 moves). For FrozenLake the mean is the
    success rate.

    Args:
        env: a Gymnasium environment with Discrete spaces.
        policy: ``(S,)`` actions.
        episodes: how many episodes.
        seed: seeds the first ``reset`` (the later ones continue its stream).

    Returns:
        ``(episodes,)`` returns.
    """
    S, A = _discrete_sizes(env, "evaluate_policy")
    episodes = check_int(episodes, "episodes", "evaluate_policy")
    seed = check_int(seed, "seed", "evaluate_policy", minimum=0)
    pi = np.asarray(policy)
    if pi.shape != (S,) or not np.issubdtype(pi.dtype, np.integer) or (pi < 0).any() or (pi >= A).any():
        raise ValueError(f"The 'policy' parameter of evaluate_policy must hold one action in [0, {A - 1}] per state "
                         f"({S} states). Got shape {pi.shape} instead.")
    actions = pi.tolist()
    returns = np.zeros(episodes)
    for episode in range(episodes):
        s, _ = env.reset(seed=seed if episode == 0 else None)
        total, over = 0.0, False
        while not over:
            s, reward, terminated, truncated, _ = env.step(actions[s])
            total += reward
            over = terminated or truncated
        returns[episode] = total
    return returns


# =========================================================================== learners
def epsilon_greedy(q_row, epsilon: float, rng: np.random.Generator) -> int:
    """An ε-greedy action: uniform with probability ``epsilon``, else a best action (ties at random)."""
    q_row = np.asarray(q_row)
    if rng.random() < epsilon:
        return int(rng.integers(len(q_row)))
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[0] if len(best) == 1 else rng.choice(best))


def _learner_args(env, owner, episodes, gamma, epsilon, alpha, alpha_power, max_steps, snapshots):
    sizes = _discrete_sizes(env, owner)
    episodes = check_int(episodes, "episodes", owner)
    gamma = check_float(gamma, "gamma", owner, low=0.0, high=1.0)
    epsilon = check_float(epsilon, "epsilon", owner, low=0.0, high=1.0)
    alpha = check_float(alpha, "alpha", owner, low=0.0, high=1.0, low_open=True)
    alpha_power = check_float(alpha_power, "alpha_power", owner, low=0.0, high=1.0)
    max_steps = check_int(max_steps, "max_steps", owner)
    snapshots = check_int(snapshots, "snapshots", owner)
    return sizes, episodes, gamma, epsilon, alpha, alpha_power, max_steps, snapshots


def _snapshot_episodes(episodes: int, snapshots: int) -> np.ndarray:
    """The episode counts after which the table is copied: ``snapshots`` of them, log-spaced, the last = all."""
    return np.unique(np.round(np.geomspace(1, episodes, snapshots)).astype(int))


def _run_learner(env, update, *, owner, episodes, gamma, epsilon, alpha, alpha_power, max_steps, seed, snapshots):
    (S, A), episodes, gamma, epsilon, alpha, alpha_power, max_steps, snapshots = _learner_args(
        env, owner, episodes, gamma, epsilon, alpha, alpha_power, max_steps, snapshots)
    seed = check_int(seed, "seed", owner, minimum=0)
    rng = np.random.default_rng(seed)
    q, visits = np.zeros((S, A)), np.zeros((S, A))
    marks = _snapshot_episodes(episodes, snapshots)
    kept, returns, lengths = [], np.zeros(episodes), np.zeros(episodes, dtype=int)

    def step_size(s, a):
        visits[s, a] += 1
        return alpha * visits[s, a] ** -alpha_power

    for episode in range(episodes):
        s, _ = env.reset(seed=int(rng.integers(2**31)) if episode == 0 else None)
        returns[episode], lengths[episode] = update(env, q, s, rng, step_size, gamma, epsilon, max_steps)
        if episode + 1 in marks:
            kept.append(q.copy())
    return q, {"episodes": marks, "q": np.stack(kept), "returns": returns, "lengths": lengths}


def _q_learning_episode(env, q, s, rng, step_size, gamma, epsilon, max_steps):
    total = 0.0
    for t in range(max_steps):
        a = epsilon_greedy(q[s], epsilon, rng)
        s_next, reward, terminated, truncated, _ = env.step(a)
        target = reward + (0.0 if terminated else gamma * q[s_next].max())
        q[s, a] += step_size(s, a) * (target - q[s, a])
        total += reward
        s = s_next
        if terminated or truncated:
            return total, t + 1
    return total, max_steps


def _sarsa_episode(env, q, s, rng, step_size, gamma, epsilon, max_steps):
    total = 0.0
    a = epsilon_greedy(q[s], epsilon, rng)
    for t in range(max_steps):
        s_next, reward, terminated, truncated, _ = env.step(a)
        a_next = epsilon_greedy(q[s_next], epsilon, rng)
        target = reward + (0.0 if terminated else gamma * q[s_next, a_next])
        q[s, a] += step_size(s, a) * (target - q[s, a])
        total += reward
        s, a = s_next, a_next
        if terminated or truncated:
            return total, t + 1
    return total, max_steps


def _monte_carlo_episode(env, q, s, rng, step_size, gamma, epsilon, max_steps):
    states, actions, rewards = [], [], []
    for _ in range(max_steps):
        a = epsilon_greedy(q[s], epsilon, rng)
        s_next, reward, terminated, truncated, _ = env.step(a)
        states.append(s), actions.append(a), rewards.append(reward)
        s = s_next
        if terminated or truncated:
            break
    first = {}
    for t, pair in enumerate(zip(states, actions)):
        first.setdefault(pair, t)
    g = 0.0
    for t in range(len(rewards) - 1, -1, -1):  # returns G_t = r_{t+1} + gamma G_{t+1}, backwards
        g = rewards[t] + gamma * g
        pair = (states[t], actions[t])
        if first[pair] == t:  # first visit of (s, a) in this episode
            q[pair] += step_size(*pair) * (g - q[pair])
    return float(sum(rewards)), len(rewards)


_LEARNER_DOC = """

    Args:
        env: a Gymnasium environment with Discrete observation and action spaces.
        episodes: how many episodes to learn from.
        gamma: the discount.
        epsilon: the exploration probability of the ε-greedy behaviour.
        alpha, alpha_power: the ``n``-th update of ``(s, a)`` moves by ``alpha * n ** -alpha_power``.
        max_steps: the longest episode (the environment may end it sooner).
        seed: seeds the behaviour's choices and the environment's first ``reset``.
        snapshots: how many copies of the table the history keeps (log-spaced in episodes).

    Returns:
        ``(q, history)``: ``q`` of shape ``(S, A)``; ``history`` holds ``"episodes"`` (when the
        snapshots were taken), ``"q"`` (``(K, S, A)``), and each episode's undiscounted
        ``"returns"`` and ``"lengths"``.
    """


def q_learning(env, *, episodes: int = 10_000, gamma: float = 0.9, epsilon: float = 0.1, alpha: float = 1.0,
               alpha_power: float = 0.7, max_steps: int = 200, seed: int = 0, snapshots: int = 20):
    return _run_learner(env, _q_learning_episode, owner="q_learning", episodes=episodes, gamma=gamma, epsilon=epsilon,
                        alpha=alpha, alpha_power=alpha_power, max_steps=max_steps, seed=seed, snapshots=snapshots)


def sarsa(env, *, episodes: int = 10_000, gamma: float = 0.9, epsilon: float = 0.1, alpha: float = 1.0,
          alpha_power: float = 0.7, max_steps: int = 200, seed: int = 0, snapshots: int = 20):
    return _run_learner(env, _sarsa_episode, owner="sarsa", episodes=episodes, gamma=gamma, epsilon=epsilon,
                        alpha=alpha, alpha_power=alpha_power, max_steps=max_steps, seed=seed, snapshots=snapshots)


def monte_carlo_control(env, *, episodes: int = 10_000, gamma: float = 0.9, epsilon: float = 0.1, alpha: float = 1.0,
                        alpha_power: float = 1.0, max_steps: int = 200, seed: int = 0, snapshots: int = 20):
    return _run_learner(env, _monte_carlo_episode, owner="monte_carlo_control", episodes=episodes, gamma=gamma,
                        epsilon=epsilon, alpha=alpha, alpha_power=alpha_power, max_steps=max_steps, seed=seed,
                        snapshots=snapshots)


q_learning.__doc__ = ("Q-learning (UDL §19.4.3): off-policy TD control, "
                      "``Q[s, a] += step (r + gamma max_a' Q[s', a'] - Q[s, a])`` after every move." + _LEARNER_DOC)
sarsa.__doc__ = ("SARSA (UDL §19.4.2): on-policy TD control, ``Q[s, a] += step (r + gamma Q[s', a'] - Q[s, a])`` "
                 "with ``a'`` the ε-greedy action actually taken next." + _LEARNER_DOC)
monte_carlo_control.__doc__ = ("First-visit Monte Carlo control (UDL §19.4.1): after each episode, every "
                               "(state, action) pair's first occurrence moves towards the discounted return that "
                               "followed it; the ε-greedy behaviour uses the updated table." + _LEARNER_DOC)
