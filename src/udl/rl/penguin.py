"""The penguin on the ice: the book's slippery 4x4 gridworld, and exact dynamic programming (UDL ch. 19).

The grid::

     0  1  2  3
     4  5  6  7
     8  9 10 11        holes: 9, 10, 14 (reward -2 each time the penguin leaves one)
    12 13 14 15        fish: 15 (reward +3, then the episode ends)

States are numbered row by row from the top left; the actions are up, right, down
and left (0, 1, 2, 3). The ice is slippery (UDL fig. 19.3): the intended move
happens with probability 0.5 and each of the three other directions with
probability 0.5 / 3. **Walls:** a move that would leave the grid keeps the penguin
where it is (as gymnasium's FrozenLake does), so a corner state keeps the
probability of its two blocked directions.

**Rewards** follow the book's convention (UDL fig. 19.3): the reward ``r_{t+1}``
depends only on the state ``s_t`` being *left*, ``r(s, a) = R[s]``. The fish state
15 is terminal: acting there collects its +3 and ends the episode, so its value
is exactly 3. (Rewarding arrival instead would shift every value by the same
state-wise amount, ``v_leave(s) = R[s] + gamma * v_arrive(s)``, and leave the optimal
policy unchanged.)

The solvers work on any finite :class:`MDP` (``P[s, a, s']``, ``r[s, a]``, a
discount ``gamma`` and the terminal states, after which nothing more is earned):

* :func:`policy_evaluation` solves the Bellman equation of a policy exactly, a
  linear system (the Bellman equation of UDL §19.2, solved directly instead of iterated as in §19.3.1):

      v[s] = sum_a pi[a|s] (r[s, a] + gamma (1 - done[s]) sum_s' P[s'|s, a] v[s'])

* :func:`value_iteration` iterates the Bellman optimality equation to its fixed
  point (UDL §19.3.1):

      v[s] <- max_a (r[s, a] + gamma (1 - done[s]) sum_s' P[s'|s, a] v[s'])

Example::

    mdp = penguin_mdp()
    v_star, policy = value_iteration(mdp)
    v_random = policy_evaluation(mdp, uniform_policy(mdp))
    env = gymnasium.make("udl/Penguin-v0")        # after ``import udl.rl``
    states, actions, rewards = rollout(env, policy, seed=0)
    G = discounted_returns(rewards, mdp.gamma)     # G[0] averages to v_star[0] over many seeds
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from udl.validate import check_float, check_int

N_ROWS = N_COLS = 4
N_STATES = N_ROWS * N_COLS
ACTIONS = ("up", "right", "down", "left")
UP, RIGHT, DOWN, LEFT = range(4)
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # (row, column) step of each action
HOLES = (9, 10, 14)
FISH = 15
HOLE_REWARD = -2.0
FISH_REWARD = 3.0
MRP_FISH = (3, 8, 10)  # the Markov reward process of fig. 19.2: +1 on each of these
START = 0
P_INTENDED = 0.5
GAMMA = 0.9


# --------------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class MDP:
    """A finite Markov decision process with terminal states.

    Attributes:
        P: transition probabilities ``P[s, a, s'] = Pr(s_{t+1}=s' | s_t=s, a_t=a)``, shape
            ``(S, A, S)``; each ``P[s, a]`` sums to one.
        r: expected reward ``r[s, a] = E[r_{t+1} | s_t=s, a_t=a]``, shape ``(S, A)``.
        gamma: the discount factor in [0, 1].
        terminal: ``(S,)`` bool; acting in a terminal state earns ``r[s, a]`` and ends
            the episode (the rows of ``P`` there are a self-loop that is never used).
        start: the state every episode starts from.
    """

    P: np.ndarray
    r: np.ndarray
    gamma: float
    terminal: np.ndarray
    start: int = 0

    def __post_init__(self):
        P = np.asarray(self.P, dtype=np.float64)
        r = np.asarray(self.r, dtype=np.float64)
        terminal = np.asarray(self.terminal, dtype=bool)
        if P.ndim != 3 or P.shape[0] != P.shape[2] or P.shape[0] == 0 or P.shape[1] == 0:
            raise ValueError(f"The 'P' parameter of MDP must have shape (S, A, S). Got {P.shape} instead.")
        if (P < 0).any() or not np.allclose(P.sum(axis=2), 1.0, atol=1e-9):
            raise ValueError("The 'P' parameter of MDP must hold probabilities: non-negative, each P[s, a] "
                             "summing to one.")
        if r.shape != P.shape[:2] or not np.isfinite(r).all():
            raise ValueError(f"The 'r' parameter of MDP must be finite with shape {P.shape[:2]}. "
                             f"Got shape {r.shape} instead.")
        if terminal.shape != (P.shape[0],):
            raise ValueError(f"The 'terminal' parameter of MDP must have shape ({P.shape[0]},). "
                             f"Got {terminal.shape} instead.")
        gamma = check_float(self.gamma, "gamma", "MDP", low=0.0, high=1.0)
        if gamma == 1 and not terminal.any():
            raise ValueError("The 'gamma' parameter of MDP must be below 1 when no state is terminal. Got 1 instead.")
        start = check_int(self.start, "start", "MDP", minimum=0, maximum=P.shape[0] - 1)
        for name, value in (("P", P), ("r", r), ("terminal", terminal), ("gamma", gamma), ("start", start)):
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]


def coordinates(state: int) -> tuple[int, int]:
    """``(row, column)`` of a penguin-grid state (row 0 at the top)."""
    state = check_int(state, "state", "coordinates", minimum=0, maximum=N_STATES - 1)
    return divmod(state, N_COLS)


def penguin_transitions(p_intended: float = P_INTENDED) -> np.ndarray:
    """The slippery transition tensor ``P[s, a, s']`` of the 4x4 penguin grid.

    The intended direction has probability ``p_intended``; each other direction has
    ``(1 - p_intended) / 3``. A direction that leaves the grid keeps the penguin in place.

    Args:
        p_intended: probability of the intended move (default 0.5, the book's value;
            1 gives deterministic moves).

    Shape:
        output: ``(16, 4, 16)``.
    """
    p_intended = check_float(p_intended, "p_intended", "penguin_transitions", low=0.0, high=1.0)
    p_other = (1 - p_intended) / (len(MOVES) - 1)
    P = np.zeros((N_STATES, len(ACTIONS), N_STATES))
    for s in range(N_STATES):
        row, col = divmod(s, N_COLS)
        for a in range(len(ACTIONS)):
            for direction, (d_row, d_col) in enumerate(MOVES):
                r2, c2 = row + d_row, col + d_col
                s_next = r2 * N_COLS + c2 if 0 <= r2 < N_ROWS and 0 <= c2 < N_COLS else s
                P[s, a, s_next] += p_intended if direction == a else p_other
    return P


def penguin_rewards(kind: str = "mdp") -> np.ndarray:
    """The state rewards ``R[s]`` earned when the penguin leaves state ``s``.

    Args:
        kind: ``"mdp"`` (figs. 19.3, 19.10: holes 9, 10, 14 give -2, the fish on 15
            gives +3) or ``"mrp"`` (fig. 19.2: fish on 3, 8 and 10 give +1).

    Shape:
        output: ``(16,)``.
    """
    if kind not in ("mdp", "mrp"):
        raise ValueError(f"The 'kind' parameter of penguin_rewards must be one of mdp, mrp. Got {kind!r} instead.")
    R = np.zeros(N_STATES)
    if kind == "mdp":
        R[list(HOLES)] = HOLE_REWARD
        R[FISH] = FISH_REWARD
    else:
        R[list(MRP_FISH)] = 1.0
    return R


def penguin_mdp(gamma: float = GAMMA, p_intended: float = P_INTENDED) -> MDP:
    """The penguin MDP of UDL figs. 19.3 and 19.10: slippery grid, holes, a terminal fish.

    Args:
        gamma: the discount factor (default 0.9).
        p_intended: probability of the intended move (default 0.5).

    Example::

        >>> mdp = penguin_mdp()
        >>> mdp.P.shape, float(mdp.r[15, 0]), bool(mdp.terminal[15])
        ((16, 4, 16), 3.0, True)
    """
    P = penguin_transitions(p_intended)
    R = penguin_rewards("mdp")
    r = np.repeat(R[:, None], len(ACTIONS), axis=1)  # the action does not change the reward
    terminal = np.zeros(N_STATES, dtype=bool)
    terminal[FISH] = True
    return MDP(P=P, r=r, gamma=gamma, terminal=terminal, start=START)


def penguin_mrp(gamma: float = GAMMA) -> MDP:
    """The Markov reward process of UDL fig. 19.2, as an :class:`MDP` with a single action.

    The penguin wanders: each of the four directions with probability 1/4 (a move off
    the grid keeps it in place; the slippery MDP under the uniformly random policy moves
    the same way). Leaving a fish state (3, 8, 10) pays +1; nothing is terminal.

    Args:
        gamma: the discount factor, below 1 (default 0.9).

    Example::

        >>> mrp = penguin_mrp()
        >>> mrp.P.shape, float(mrp.r[8, 0])
        ((16, 1, 16), 1.0)
    """
    gamma = check_float(gamma, "gamma", "penguin_mrp", low=0.0, high=1.0, high_open=True)
    P = penguin_transitions(0.25)[:, :1]  # every direction 1/4: (16, 4, 16) -> (16, 1, 16)
    r = penguin_rewards("mrp")[:, None]  # (16, 1)
    return MDP(P=P, r=r, gamma=gamma, terminal=np.zeros(N_STATES, dtype=bool), start=START)


# --------------------------------------------------------------------------- policies and values
def uniform_policy(mdp: MDP) -> np.ndarray:
    """The uniformly random policy ``pi[a|s] = 1 / A``, shape ``(S, A)``."""
    _check_mdp(mdp, "uniform_policy")
    return np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)


def _check_mdp(mdp, owner: str) -> None:
    if not isinstance(mdp, MDP):
        raise TypeError(f"The 'mdp' parameter of {owner} must be an MDP. Got {type(mdp).__name__} instead.")


def as_policy_matrix(mdp: MDP, policy) -> np.ndarray:
    """A policy as an ``(S, A)`` matrix of probabilities ``pi[a|s]``.

    Accepts an ``(S,)`` array of actions (a deterministic policy, turned one-hot) or an
    ``(S, A)`` array whose rows are distributions.
    """
    _check_mdp(mdp, "as_policy_matrix")
    pi = np.asarray(policy)
    S, A = mdp.n_states, mdp.n_actions
    if pi.shape == (S,):
        if not np.issubdtype(pi.dtype, np.integer) or (pi < 0).any() or (pi >= A).any():
            raise ValueError(f"The 'policy' parameter must hold one action in [0, {A - 1}] per state. "
                             f"Got {pi.tolist()} instead.")
        return np.eye(A)[pi]  # (S,) -> (S, A) one-hot
    if pi.shape != (S, A):
        raise ValueError(f"The 'policy' parameter must have shape ({S},) or ({S}, {A}). Got {pi.shape} instead.")
    pi = pi.astype(np.float64)
    if not np.isfinite(pi).all() or (pi < 0).any() or not np.allclose(pi.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("The 'policy' parameter must have rows that are probability distributions.")
    return pi


def action_values(mdp: MDP, v) -> np.ndarray:
    """``q[s, a] = r[s, a] + gamma (1 - done[s]) sum_s' P[s'|s, a] v[s']`` (UDL §19.2), shape ``(S, A)``."""
    _check_mdp(mdp, "action_values")
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (mdp.n_states,):
        raise ValueError(f"The 'v' parameter of action_values must have shape ({mdp.n_states},). "
                         f"Got {v.shape} instead.")
    keep = mdp.gamma * (~mdp.terminal)  # (S,): nothing follows a terminal state
    return mdp.r + keep[:, None] * (mdp.P @ v)  # (S, A, S) @ (S,) -> (S, A)


def policy_evaluation(mdp: MDP, policy) -> np.ndarray:
    """The exact state values ``v[s | pi]`` of a policy: the Bellman equation solved as a linear system.

    With ``P_pi[s, s'] = sum_a pi[a|s] P[s, a, s']`` and ``r_pi[s] = sum_a pi[a|s] r[s, a]``,

        (I - gamma D P_pi) v = r_pi,     D = diag(1 - done),

    the fixed point that iterative policy evaluation (UDL §19.3.1) converges to.

    Args:
        mdp: the :class:`MDP`.
        policy: ``(S,)`` actions or an ``(S, A)`` matrix of probabilities.

    Returns:
        ``v``, shape ``(S,)``.
    """
    _check_mdp(mdp, "policy_evaluation")
    pi = as_policy_matrix(mdp, policy)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)  # (S, A), (S, A, S) -> (S, S)
    r_pi = np.sum(pi * mdp.r, axis=1)  # (S,)
    keep = mdp.gamma * (~mdp.terminal)  # (S,)
    return np.linalg.solve(np.eye(mdp.n_states) - keep[:, None] * P_pi, r_pi)


def greedy_policy(q) -> np.ndarray:
    """``pi[s] = argmax_a q[s, a]`` (policy improvement, UDL §19.3.1); ties go to the first action."""
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] == 0:
        raise ValueError(f"The 'q' parameter of greedy_policy must have shape (S, A). Got {q.shape} instead.")
    return np.argmax(q, axis=1)


def value_iteration(mdp: MDP, *, tol: float = 1e-10, max_iterations: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Optimal values and a greedy optimal policy by iterating the Bellman optimality equation.

    ``v <- max_a q[s, a]`` from ``v = 0`` until the largest change is below ``tol``
    (a contraction with factor ``gamma`` when ``gamma < 1``).

    Args:
        mdp: the :class:`MDP`.
        tol: stop when ``max |v_new - v| < tol`` (default 1e-10).
        max_iterations: give up (``RuntimeError``) after this many sweeps.

    Returns:
        ``(v_star, policy)``: shapes ``(S,)`` and ``(S,)`` (one action per state).
    """
    _check_mdp(mdp, "value_iteration")
    tol = check_float(tol, "tol", "value_iteration", low=0.0, low_open=True)
    max_iterations = check_int(max_iterations, "max_iterations", "value_iteration", minimum=1)
    v, policy, _ = _value_iteration(mdp, tol, max_iterations, "value_iteration")
    return v, policy


def _value_iteration(mdp: MDP, tol: float, max_iterations: int, owner: str):
    """The sweeps of value iteration from ``v = 0``: ``(v_star, policy, [v_0, v_1, ...])`` (arguments checked)."""
    history = [np.zeros(mdp.n_states)]
    for _ in range(max_iterations):
        history.append(action_values(mdp, history[-1]).max(axis=1))
        if np.max(np.abs(history[-1] - history[-2])) < tol:
            v = history[-1]
            return v, greedy_policy(action_values(mdp, v)), history
    raise RuntimeError(f"{owner} did not converge within {max_iterations} sweeps")


# --------------------------------------------------------------------------- the environment
ENV_ID = "udl/Penguin-v0"


class PenguinEnv(gym.Env):
    """The penguin's ice as a :class:`gymnasium.Env`, simulating any :class:`MDP` (the penguin's by default).

    Observations and actions are ``Discrete`` (``int`` states and actions). The reward of a
    step is ``r[s_t, a_t]`` (for the penguin: the reward of the state being left, UDL
    fig. 19.3); ``terminated`` is true once the action in a terminal state has been
    taken (the observation then stays that state), ``truncated`` when ``max_steps``
    steps have passed. Stepping a finished episode is an error: call ``reset``.

    ``reset(seed=..., options={"state": s})`` starts in ``s`` (default ``mdp.start``);
    ``seed`` reseeds the generator ``np_random`` (gymnasium's), without it the stream
    continues. ``info`` holds ``{"prob": Pr(s_{t+1} | s_t, a_t)}`` after a step (1 for
    a terminal step) and ``{"prob": 1.0}`` after a reset, as FrozenLake's does.

    Registered as ``"udl/Penguin-v0"`` on ``import udl.rl``:
    ``gymnasium.make("udl/Penguin-v0")`` gives the penguin; ``mdp=``, ``max_steps=`` and
    ``render_mode=`` pass through ``make``.

    Args:
        mdp: the process to simulate (default :func:`penguin_mdp`).
        max_steps: episode length limit (default 100).
        render_mode: None or ``"ansi"`` (a text picture of the grid: ``P`` penguin,
            ``H`` a state with negative reward, ``F`` a terminal state or a rewarded one,
            ``.`` ice; a 4x4 grid for a 16-state MDP, one row otherwise).

    Example::

        >>> env = PenguinEnv()
        >>> env.reset(seed=0)
        (0, {'prob': 1.0})
        >>> env.step(RIGHT)[1:]
        (0.0, False, False, {'prob': 0.5})
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, mdp: MDP | None = None, *, max_steps: int = 100, render_mode: str | None = None):
        if mdp is None:
            mdp = penguin_mdp()
        _check_mdp(mdp, "PenguinEnv")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"The 'render_mode' parameter of PenguinEnv must be one of None, ansi. "
                             f"Got {render_mode!r} instead.")
        self.mdp = mdp
        self.max_steps = check_int(max_steps, "max_steps", "PenguinEnv", minimum=1)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(mdp.n_states)
        self.action_space = gym.spaces.Discrete(mdp.n_actions)
        # inverse-CDF sampling on plain lists (a step is pure Python: ~3x faster than NumPy on 16 entries)
        self._cdf = np.cumsum(mdp.P, axis=2).tolist()  # (S, A, S)
        self._P, self._r, self._terminal = mdp.P.tolist(), mdp.r.tolist(), mdp.terminal.tolist()
        self.state: int | None = None
        self.t = 0
        self._over = True

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[int, dict]:
        """Start an episode; return ``(state, info)``."""
        if seed is not None:
            seed = check_int(seed, "seed", "PenguinEnv.reset", minimum=0)
        super().reset(seed=seed)
        state = None
        if options is not None:
            if not isinstance(options, dict) or set(options) - {"state"}:
                raise ValueError("The 'options' parameter of PenguinEnv.reset must be None or a dict with the "
                                 f"key 'state'. Got {options!r} instead.")
            state = options.get("state")
        self.state = self.mdp.start if state is None else check_int(state, "state", "PenguinEnv.reset", minimum=0,
                                                                     maximum=self.mdp.n_states - 1)
        self.t = 0
        self._over = False
        return self.state, {"prob": 1.0}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        """Take ``action``; return ``(next_state, reward, terminated, truncated, info)``."""
        if self._over:
            raise RuntimeError("PenguinEnv.step was called before reset or after the episode ended")
        if type(action) is not int or not 0 <= action < self.action_space.n:  # the fast path is a valid int
            if isinstance(action, np.integer):
                action = int(action)
            action = check_int(action, "action", "PenguinEnv.step", minimum=0, maximum=self.mdp.n_actions - 1)
        s = self.state
        reward = self._r[s][action]
        terminated = self._terminal[s]
        prob = 1.0
        if not terminated:
            u = self.np_random.random()
            s_next = min(bisect.bisect_right(self._cdf[s][action], u), self.mdp.n_states - 1)
            prob = self._P[s][action][s_next]
            self.state = s_next
        self.t += 1
        truncated = not terminated and self.t >= self.max_steps
        self._over = terminated or truncated
        return self.state, reward, terminated, truncated, {"prob": prob}

    def render(self) -> str | None:
        """The grid as text (``render_mode="ansi"``); None without a render mode."""
        if self.render_mode is None:
            return None
        R = self.mdp.r.mean(axis=1)  # (S,)
        marks = np.where(self.mdp.terminal | (R > 0), "F", np.where(R < 0, "H", "."))
        if self.state is not None:
            marks[self.state] = "P"
        n_cols = N_COLS if self.mdp.n_states == N_STATES else self.mdp.n_states
        rows = ["".join(marks[i:i + n_cols]) for i in range(0, self.mdp.n_states, n_cols)]
        return "\n".join(rows) + "\n"


def register_env() -> None:
    """Register :class:`PenguinEnv` with gymnasium as ``"udl/Penguin-v0"`` (idempotent; ``import udl.rl`` calls it)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="udl.rl.penguin:PenguinEnv")


# --------------------------------------------------------------------------- trajectories
def rollout(env: gym.Env, policy, *, seed: int, max_steps: int = 1000,
            options: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One episode of ``policy`` in a Gymnasium environment with discrete spaces.

    Args:
        env: the environment (e.g. :class:`PenguinEnv` or ``gymnasium.make("udl/Penguin-v0")``).
        policy: an ``(S,)`` array of actions, an ``(S, A)`` matrix of probabilities
            ``pi[a|s]`` (actions drawn from ``numpy.random.default_rng([seed, 1])``, a stream
            independent of the environment's ``reset(seed=seed)`` one), or a
            callable ``state -> action``.
        seed: seeds the environment (``env.reset(seed=seed)``) and the action draws.
        max_steps: stop after this many steps even if the episode goes on.
        options: passed to ``env.reset`` (``{"state": s}`` for the penguin).

    Returns:
        ``(states, actions, rewards)``: ``states`` has ``T + 1`` entries ``s_0 .. s_T``
        (the last one is where the episode ended), ``actions`` and ``rewards`` have
        ``T``; ``rewards[t]`` is ``r_{t+1}``, received for acting ``actions[t]`` in
        ``states[t]``.
    """
    if not isinstance(env, gym.Env):
        raise TypeError(f"The 'env' parameter of rollout must be a gymnasium.Env. Got {type(env).__name__} instead.")
    seed = check_int(seed, "seed", "rollout", minimum=0)
    max_steps = check_int(max_steps, "max_steps", "rollout", minimum=1)
    n_actions = getattr(env.action_space, "n", None)
    if callable(policy):
        act = policy
    else:
        pi = np.asarray(policy)
        n_states = getattr(env.observation_space, "n", None)
        if pi.ndim == 1 and pi.shape == (n_states,) and np.issubdtype(pi.dtype, np.integer) \
                and (pi >= 0).all() and (pi < n_actions).all():
            def act(s, pi=pi):
                return int(pi[s])
        elif pi.shape == (n_states, n_actions) and np.isfinite(pi).all() and (pi >= 0).all() \
                and np.allclose(pi.sum(axis=1), 1.0, atol=1e-6):
            rng = np.random.default_rng([seed, 1])  # not default_rng(seed): that is the environment's own stream
            cdf = np.cumsum(pi, axis=1)

            def act(s, cdf=cdf):
                return int(min(np.searchsorted(cdf[s], rng.random() * cdf[s, -1], side="right"), n_actions - 1))
        else:
            raise ValueError(f"The 'policy' parameter of rollout must be a callable, ({n_states},) actions in "
                             f"[0, {n_actions}) or a ({n_states}, {n_actions}) matrix of probabilities. "
                             f"Got shape {pi.shape} instead.")
    s, _ = env.reset(seed=seed, options=options)
    states, actions, rewards = [int(s)], [], []
    for _ in range(max_steps):
        a = int(act(int(s)))
        s, reward, terminated, truncated, _ = env.step(a)
        states.append(int(s))
        actions.append(a)
        rewards.append(float(reward))
        if terminated or truncated:
            break
    return np.array(states, dtype=np.int64), np.array(actions, dtype=np.int64), np.array(rewards)


def discounted_returns(rewards, gamma: float) -> np.ndarray:
    """The returns ``G_t = r_{t+1} + gamma G_{t+1}`` from every step t of one episode (UDL eq. 19.1).

    ``G_t = sum_k gamma^k r_{t+k+1}``; after the last reward the return is zero.

    Args:
        rewards: ``(T,)`` rewards, ``rewards[t] = r_{t+1}`` (as :func:`rollout` returns them).
        gamma: the discount factor in [0, 1].

    Returns:
        ``(T,)`` returns.

    Example::

        >>> discounted_returns([0.0, 0.0, 1.0], 0.9).round(2).tolist()
        [0.81, 0.9, 1.0]
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1 or not np.isfinite(r).all():
        raise ValueError(f"The 'rewards' parameter of discounted_returns must be a finite 1-D array. "
                         f"Got shape {r.shape} instead.")
    gamma = check_float(gamma, "gamma", "discounted_returns", low=0.0, high=1.0)
    G = np.zeros_like(r)
    running = 0.0
    for t in range(len(r) - 1, -1, -1):
        running = r[t] + gamma * running
        G[t] = running
    return G


__all__ = ["MDP", "PenguinEnv", "ENV_ID", "register_env", "rollout", "discounted_returns", "penguin_mdp",
           "penguin_mrp", "penguin_transitions", "penguin_rewards", "coordinates", "uniform_policy",
           "as_policy_matrix", "action_values", "policy_evaluation", "greedy_policy", "value_iteration"]
