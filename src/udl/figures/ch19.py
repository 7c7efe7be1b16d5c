"""Chapter 19: the penguin's ice as a Markov reward process (fig. 19.2) and a Markov decision process (fig. 19.3).

Both figures run the Gymnasium environment ``udl/Penguin-v0`` (:class:`udl.rl.penguin.PenguinEnv`): the
trajectories, rewards and moves drawn are simulated by it, and the numbers they show are checked against the
transition tensor and the Bellman equation.
"""

from __future__ import annotations

import gymnasium
import numpy as np
from matplotlib.patches import Ellipse, FancyArrowPatch, Polygon, Rectangle
from scipy.stats import chisquare

import matplotlib.pyplot as plt

from udl import style
from udl.registry import Check, Result, figure
from udl.rl.penguin import (ACTIONS, ENV_ID, FISH, HOLES, MOVES, MRP_FISH, N_COLS, N_ROWS, N_STATES, PenguinEnv,
                            discounted_returns, penguin_mdp, penguin_mrp, policy_evaluation, register_env, rollout,
                            value_iteration)

HORIZON = 200  # steps of each Monte Carlo episode of the reward process: gamma^200 / (1 - gamma) < 1e-8 at 0.9
# (at gamma = 0.99 the bound is 13: the check's tolerance adds it, so the check stays valid but loose)
MAX_SEARCH = 1000  # seeds tried to find a trajectory that passes a fish
SHOWN_STATE = 6  # fig. 19.3c: the state whose transition probabilities are drawn, as in the book
CHI2_LEVEL = 1e-3  # simulated moves vs Pr(s'|s, a): the chi-square p-value must exceed this
MDP_STEPS = 15  # the MDP trajectory of fig. 19.3a: at most this many steps
FISH_COLOUR = style.EXTRA[3]


# --------------------------------------------------------------------------- drawing the ice
def _xy(state: int) -> tuple[float, float]:
    row, col = divmod(int(state), N_COLS)
    return float(col), float(row)


def _fish(ax, x, y, size=0.22):
    ax.add_patch(Ellipse((x - 0.03, y), 2 * size, 1.1 * size, color=FISH_COLOUR, zorder=3))
    ax.add_patch(Polygon([(x + size * 0.8, y), (x + size * 1.5, y - size * 0.5), (x + size * 1.5, y + size * 0.5)],
                         color=FISH_COLOUR, zorder=3))


def _penguin(ax, x, y, size=0.2):
    ax.add_patch(Ellipse((x, y), 1.4 * size, 2 * size, color=style.TRUTH, zorder=5))
    ax.add_patch(Ellipse((x, y + 0.2 * size), 0.8 * size, 1.3 * size, color="white", zorder=6))
    ax.add_patch(Polygon([(x - 0.15 * size, y - 0.85 * size), (x + 0.15 * size, y - 0.85 * size),
                          (x, y - 0.6 * size)], color=style.DATA, zorder=7))


def _ice(ax, *, holes=(), fish=(), numbers=True, shade=None, cmap="Greys", vmax=1.0):
    """The 4x4 grid, row 0 at the top; ``shade`` (16,) colours the cells."""
    for s in range(N_STATES):
        x, y = _xy(s)
        face = "#EAF4F8"
        if shade is not None:
            face = plt.get_cmap(cmap)(0.85 * shade[s] / vmax) if shade[s] > 0 else "white"
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=face, edgecolor="#9E9E9E", lw=0.8, zorder=0))
        if numbers:
            ax.text(x - 0.44, y - 0.44, str(s), fontsize=6, color="#616161", ha="left", va="top", zorder=8)
    for s in holes:
        ax.add_patch(Ellipse(_xy(s), 0.75, 0.55, color=style.REGION, zorder=1))
    for s in fish:
        _fish(ax, *_xy(s))
    ax.set(xlim=(-0.52, N_COLS - 0.48), ylim=(N_ROWS - 0.48, -0.52), aspect="equal", xticks=[], yticks=[])
    for side in ax.spines.values():
        side.set_visible(False)


def _path(ax, states, colour=style.DATA, jitter=0.0, rng=None):
    """A trajectory through cell centres; a stay in place is drawn as a small loop."""
    pts = np.array([_xy(s) for s in states], dtype=float)
    if jitter and rng is not None:
        pts = pts + rng.uniform(-jitter, jitter, size=pts.shape)
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
        if abs(x0 - x1) + abs(y0 - y1) < 0.3:  # stayed: a little loop
            ax.add_patch(Ellipse((x0 + 0.12, y0 - 0.12), 0.22, 0.22, fill=False, ec=colour, lw=1.6, zorder=4))
        else:
            ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=9, color=colour,
                                         lw=1.8, zorder=4, shrinkA=0, shrinkB=4))
    return pts


# =========================================================================== 19.2
@figure("19.2", title="Markov reward process: rewards along a trajectory and the discounted return",
        caption="a) The penguin wanders on the ice: from each cell it moves up, right, down or left with "
                "probability 1/4 (a move off the grid leaves it where it is). Leaving a cell with a fish "
                "(blue) earns +1, every other step earns nothing. Orange: an eight-step trajectory simulated by "
                "udl's Gymnasium environment, its rewards marked where they are earned. b) Along that "
                "trajectory, the reward r_{t+1} of each step (orange bars) and the return G_t, the sum of the "
                "rewards still to come, each discounted by a further factor γ per step (cyan, γ = 0.9); it grows "
                "as a reward comes nearer and drops once it has been collected. Black dots: the same returns "
                "summed directly. c) The value of each cell, the return expected from it, by solving the Bellman "
                "equation; the number in the start cell is the mean return of many simulated episodes.",
        params={"tiny": dict(gamma=0.9, n_steps=8, n_episodes=200),
                "full": dict(gamma=0.9, n_steps=8, n_episodes=5000)},
        limits={"gamma": (0.0, 0.99), "n_steps": (1, 50), "n_episodes": (10, 100_000)})
def reward_process(p, run):
    register_env()
    mrp = penguin_mrp(p.gamma)
    env = gymnasium.make(ENV_ID, mdp=mrp, max_steps=max(p.n_steps, HORIZON))
    stay = np.zeros(N_STATES, dtype=np.int64)  # the reward process has one action
    # the first seed from the run's own whose trajectory passes a fish, as the book's does
    for tries in range(MAX_SEARCH):
        states, _, rewards = rollout(env, stay, seed=run.seed + tries, max_steps=p.n_steps)
        if rewards.sum() > 0:
            break
    G = discounted_returns(rewards, p.gamma)  # the recursion G_t = r_{t+1} + gamma G_{t+1}
    direct = np.array([sum(p.gamma ** k * rewards[t + k] for k in range(len(rewards) - t))
                       for t in range(len(rewards))])  # sum_k gamma^k r_{t+k+1}, term by term
    v = policy_evaluation(mrp, stay)  # (16,)
    mc_env = env.unwrapped  # the same simulator without gymnasium's per-step order and passive checks: 3x faster
    G0 = np.array([discounted_returns(rollout(mc_env, stay, seed=run.seed + MAX_SEARCH + i, max_steps=HORIZON)[2],
                                      p.gamma)[0] for i in range(p.n_episodes)])
    metrics = {"gamma": p.gamma, "trajectory_seed": run.seed + tries, "seeds_tried": tries + 1,
               "total_reward": float(rewards.sum()), "G_0": float(G[0]),
               "max_return_gap": float(np.abs(G - direct).max()),
               "v_start": float(v[mrp.start]), "mc_mean_return": float(G0.mean()),
               "mc_standard_error": float(G0.std(ddof=1) / np.sqrt(len(G0))), "n_episodes": p.n_episodes,
               "truncation_bound": float(p.gamma ** HORIZON / (1 - p.gamma))}
    return Result(metrics=metrics,
                  arrays={"states": states, "rewards": rewards, "returns": G, "direct": direct, "values": v},
                  notes=f"Trajectory: seed {run.seed + tries} of udl/Penguin-v0 with the reward process of "
                        "udl.rl.penguin.penguin_mrp (the first seed from the run's whose trajectory earns a reward). "
                        "As in udl's penguin MDP, the reward r_{t+1} belongs to the state s_t being left "
                        "(the book's Pr(r_{t+1} | s_t)). Values: the Bellman equation solved as a linear system; "
                        f"Monte Carlo: {p.n_episodes:,} episodes of {HORIZON} steps from the start cell.")


@reward_process.plot
def _(r):
    m, a = r.metrics, r.arrays
    states, rewards, G = a["states"], a["rewards"], a["returns"]
    fig, axes = style.subplots(1, 3, width=3.6, height=3.4)
    ax = axes[0]
    _ice(ax, fish=MRP_FISH)
    _path(ax, states, rng=np.random.default_rng(0), jitter=0.08)
    _penguin(ax, *_xy(states[0]))
    for t, (s, reward) in enumerate(zip(states[:-1], rewards)):
        if reward:
            x, y = _xy(s)
            ax.text(x + 0.28, y + 0.3, f"+{reward:g}", color=style.DATA, fontsize=8, fontweight="bold", zorder=9)
    ax.set_title(f"{len(rewards)} steps, total reward {m['total_reward']:g}", loc="right", fontsize=8)

    ax = axes[1]
    t = np.arange(len(rewards))
    ax.bar(t, rewards, color=style.DATA, width=0.5, label="reward r_{t+1}")
    ax.plot(t, G, color=style.MODEL, marker="o", lw=1.8, label="return G_t")
    ax.plot(t, a["direct"], ls="none", marker=".", color=style.TRUTH, ms=4, label="Σ γ^k r_{t+k+1}")
    ax.set_xticks(t, [f"{t_}\ns={s}" for t_, s in zip(t, states[:-1])], fontsize=6.5)
    ax.set(xlabel="step t, state s_t", ylabel="reward, return")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"γ = {m['gamma']:g}", loc="right", fontsize=8)

    ax = axes[2]
    v = a["values"]
    _ice(ax, fish=MRP_FISH, shade=v, cmap="Blues", vmax=max(v.max(), 1e-9), numbers=False)
    for s in range(N_STATES):
        x, y = _xy(s)
        ax.text(x, y + 0.33, f"{v[s]:.2f}", ha="center", va="center", fontsize=7, zorder=9)
    x, y = _xy(0)
    ax.text(x, y - 0.3, f"MC {m['mc_mean_return']:.2f}", ha="center", fontsize=6.5, color=style.DATA, zorder=9)
    ax.set_title("values v[s] (Bellman)", loc="right", fontsize=8)
    style.panel_labels(axes)
    return fig


@reward_process.checks
def _(r):
    m, p = r.metrics, r.params
    bound = 4 * m["mc_standard_error"] + m["truncation_bound"]
    return [
        Check.less("the returns G_t along the trajectory, computed backwards by G_t = r_{t+1} + γ G_{t+1}, equal "
                   "the discounted sums Σ_k γ^k r_{t+k+1} computed term by term", m["max_return_gap"], 1e-12),
        Check.greater("the trajectory shown earns at least one reward", m["total_reward"], 0.0),
        Check.close(f"the mean return of {p['n_episodes']:,} simulated episodes from the start cell equals the "
                    "value from the Bellman equation (within 4 standard errors)", m["mc_mean_return"],
                    m["v_start"], max(bound, 1e-12)),
    ]


# =========================================================================== 19.3
@figure("19.3", title="Markov decision process: actions, and where the slippery ice takes the penguin",
        caption="a) Now the penguin chooses an action in each cell (gray arrows: here the best action found by "
                "value iteration); the ice decides where it goes (orange: the moves simulated by udl's "
                "Gymnasium environment), so the two need not agree. Leaving a hole (gray) costs -2, leaving the "
                "fish earns +3 and ends the episode; the reward does not depend on the action. b) The four "
                "actions: up, right, down and left. c) From cell 6, for each action, the probability of each "
                "next cell: 1/2 in the intended direction and 1/6 for each of the other three (numbers), with the "
                "share of simulated moves that went there (orange).",
        params={"tiny": dict(n_draws=2000), "full": dict(n_draws=20_000)},
        limits={"n_draws": (100, 200_000)})
def decision_process(p, run):
    register_env()
    mdp = penguin_mdp()
    env = gymnasium.make(ENV_ID)
    _, policy = value_iteration(mdp)
    for tries in range(MAX_SEARCH):  # the first seed from the run's whose trajectory reaches the fish
        states, actions, rewards = rollout(env, policy, seed=run.seed + tries, max_steps=MDP_STEPS)
        if len(states) > 1 and states[-2] == FISH:  # acted on the fish: the episode is over
            break
    intended = np.array([_neighbour(s, a) for s, a in zip(states[:-1], actions)])
    env.reset(seed=run.seed + MAX_SEARCH)
    counts = np.zeros((len(ACTIONS), N_STATES), dtype=np.int64)
    for a in range(len(ACTIONS)):
        for _ in range(p.n_draws):
            env.reset(options={"state": SHOWN_STATE})
            counts[a, env.step(a)[0]] += 1
    probabilities = mdp.P[SHOWN_STATE]  # (A, S)
    p_values, outside = [], 0
    for a in range(len(ACTIONS)):
        support = probabilities[a] > 0
        outside += int(counts[a, ~support].sum())
        p_values.append(float(chisquare(counts[a, support], p.n_draws * probabilities[a, support]).pvalue))
    env_checker_ok, env_checker_error = True, ""
    try:
        from gymnasium.utils.env_checker import check_env
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(gymnasium.make(ENV_ID).unwrapped)
    except Exception as error:  # the check records the failure
        env_checker_ok, env_checker_error = False, f"{type(error).__name__}: {error}"
    metrics = {"state": SHOWN_STATE, "n_draws": p.n_draws, "chi2_p_values": p_values,
               "draws_outside_support": outside, "max_row_sum_error": float(np.abs(mdp.P.sum(axis=2) - 1).max()),
               "max_frequency_gap": float(np.abs(counts / p.n_draws - probabilities).max()),
               "intended_share": float(np.mean(intended == states[1:])), "trajectory_reward": float(rewards.sum()),
               "trajectory_seed": run.seed + tries,
               "check_env_passes": env_checker_ok, "check_env_error": env_checker_error}
    return Result(metrics=metrics,
                  arrays={"states": states, "actions": actions, "rewards": rewards, "policy": policy,
                          "probabilities": probabilities, "frequencies": counts / p.n_draws},
                  notes=f"udl/Penguin-v0 (udl.rl.penguin.PenguinEnv, a gymnasium.Env); {p.n_draws:,} simulated moves "
                        f"per action from cell {SHOWN_STATE}. A move off the grid keeps the penguin in place, as in "
                        "Gymnasium's FrozenLake. The trajectory follows the optimal policy of value iteration "
                        f"(γ = {mdp.gamma:g}): seed {run.seed + tries}, the first from the run's that reaches the "
                        f"fish within {MDP_STEPS} steps.")


def _neighbour(state: int, action: int) -> int:
    row, col = divmod(int(state), N_COLS)
    r2, c2 = row + MOVES[action][0], col + MOVES[action][1]
    return r2 * N_COLS + c2 if 0 <= r2 < N_ROWS and 0 <= c2 < N_COLS else int(state)


def _arrow(ax, x, y, action, length=0.32, colour=style.REGION, lw=2.5, scale=12):
    dy, dx = MOVES[action]
    ax.add_patch(FancyArrowPatch((x - dx * length / 2, y - dy * length / 2), (x + dx * length / 2, y + dy * length / 2),
                                 arrowstyle="-|>", mutation_scale=scale, color=colour, lw=lw, zorder=3))


@decision_process.plot
def _(r):
    m, a = r.metrics, r.arrays
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(12, 4.4), layout="constrained")
        grid = fig.add_gridspec(2, 4, width_ratios=[1.5, 0.8, 1, 1])
        ax_a = fig.add_subplot(grid[:, 0])
        ax_b = fig.add_subplot(grid[:, 1])
        ax_c = [fig.add_subplot(grid[i, j]) for i in range(2) for j in (2, 3)]
    states, actions = a["states"], a["actions"]
    _ice(ax_a, holes=HOLES, fish=(FISH,))
    for s, act in zip(states[:-1], actions):
        _arrow(ax_a, *_xy(s), act, length=0.45)
    _path(ax_a, states, rng=np.random.default_rng(1), jitter=0.1)
    _penguin(ax_a, *_xy(states[0]))
    ax_a.set_title(f"{len(actions)} steps, total reward {m['trajectory_reward']:g}; {m['intended_share']:.0%} of the "
                   "moves went the intended way", loc="right",
                   fontsize=8)

    ax_b.set(xlim=(-1, 1), ylim=(1.4, -1.1), aspect="equal", xticks=[], yticks=[])
    for side in ax_b.spines.values():
        side.set_visible(False)
    _penguin(ax_b, 0, 0, size=0.25)
    for act, name in enumerate(ACTIONS):
        dy, dx = MOVES[act]
        _arrow(ax_b, 0.55 * dx, 0.55 * dy, act, length=0.4, colour="#757575", lw=2, scale=14)
        ax_b.text(0.9 * dx, 0.9 * dy + (0.1 if dy == 0 else 0), f"{act}: {name}", ha="center", va="center",
                  fontsize=7)

    P, F = a["probabilities"], a["frequencies"]
    for act, ax in enumerate(ax_c):
        _ice(ax, numbers=False, shade=P[act], cmap="Blues", vmax=1.0)
        x, y = _xy(m["state"])
        _arrow(ax, x, y, act, length=0.5, colour=style.TRUTH, lw=1.5, scale=10)
        for s in np.flatnonzero(P[act] > 0):
            xs, ys = _xy(s)
            ax.text(xs, ys - 0.22 if s != m["state"] else ys + 0.3, f"{P[act, s]:.3g}", ha="center", va="center",
                    fontsize=7, zorder=9)
            ax.text(xs, ys + 0.3 if s != m["state"] else ys - 0.3, f"{F[act, s]:.3f}", ha="center", va="center",
                    fontsize=6.5, color=style.DATA, zorder=9)
        ax.set_title(f"a = {ACTIONS[act]}: χ² p = {m['chi2_p_values'][act]:.2f}", fontsize=7.5)
    ax_b.text(0, 1.0, f"c) black: Pr(s' | s={m['state']}, a)\norange: share of {m['n_draws']:,}\nsimulated moves",
              ha="center", va="top", fontsize=7)
    style.panel_labels(np.array([ax_a, ax_b, ax_c[0]]))
    return fig


@decision_process.checks
def _(r):
    m = r.metrics
    return [
        Check.less("each row Pr(s' | s, a) of the transition tensor sums to one", m["max_row_sum_error"], 1e-12),
        Check.equal(f"simulated moves from cell {m['state']} only reach the cell itself or its neighbours that "
                    "Pr(s' | s, a) allows", m["draws_outside_support"], 0),
        Check.greater(f"the moves simulated by the environment ({m['n_draws']:,} per action) match Pr(s' | s={m['state']}"
                      ", a): 1/2 intended, 1/6 to each other neighbour (smallest chi-square p-value of the four "
                      "actions)", min(m["chi2_p_values"]), CHI2_LEVEL),
        Check.holds("the environment passes gymnasium.utils.env_checker.check_env (warnings as errors)",
                    m["check_env_passes"], m["check_env_error"] or "passed"),
    ]
