"""Chapter 19: tabular reinforcement learning on the penguin's ice (figure 19.10).

Dynamic programming (:mod:`udl.rl.tabular`) from zero values and a random policy to the optimal one, the three
sample-based learners (Monte Carlo control, SARSA, Q-learning) run in the Gymnasium environment
``udl/Penguin-v0`` and measured against it, and the same solver on Gymnasium's ``FrozenLake-v1``, checked by
rolling its policy out in Gymnasium.
"""

from __future__ import annotations

import gymnasium
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse, Polygon, Rectangle

import udl.rl  # noqa: F401 (registers udl/Penguin-v0)
from udl import style
from udl.registry import Check, Result, figure
from udl.rl.penguin import ENV_ID, FISH, HOLES, N_COLS, N_STATES, penguin_mdp, policy_evaluation
from udl.rl.tabular import (action_values, bellman_residual, evaluate_policy, from_gymnasium,
                            iterative_policy_evaluation, monte_carlo_control, policy_iteration, q_learning, sarsa,
                            value_iteration_sweeps)

SHOWN_ROUNDS = 2  # panel b: the values and policy after this many rounds, as the book
VALUE_AGREEMENT = 1e-6  # value iteration stops at changes < 1e-10: its error is below 1e-10 γ / (1 - γ) <= 1e-8
CLEAR_MARGIN = 0.05  # an action "matters" where it beats the second best by this much (value units)
VALUE_TOL = 0.05  # the issue's target: the learners' value error against dynamic programming
FROZEN_TOL = 0.01  # the target: FrozenLake's start value against its roll-out success rate
FROZEN_EPISODES = 10_000  # ... measured with this many roll-outs
FROZEN_STEPS = 100  # gymnasium.make("FrozenLake-v1") ends an episode after this many moves
# the learners' claims were measured at the book's ice and discount with these episodes (tests/rl/test_tabular.py)
MEASURED = {"gamma": 0.9, "p_intended": 0.5, "td_episodes": 3000, "mc_episodes": 20_000, "epsilon": 0.1}
LEARNERS = {"monte_carlo": monte_carlo_control, "sarsa": sarsa, "q_learning": q_learning}
NAMES = {"monte_carlo": "Monte Carlo", "sarsa": "SARSA", "q_learning": "Q-learning"}
ARROW = {0: (0, -1), 1: (1, 0), 2: (0, 1), 3: (-1, 0)}  # action -> (dx, dy) on a grid drawn with row 0 on top


def _colors() -> dict[str, str]:
    return {"monte_carlo": style.EXTRA[0], "sarsa": style.DATA, "q_learning": style.MODEL}


def _clear_states(mdp, v) -> np.ndarray:
    """Non-terminal states whose best action beats the second best by ``CLEAR_MARGIN``."""
    q = np.sort(action_values(mdp, v), axis=1)
    return (q[:, -1] - q[:, -2] > CLEAR_MARGIN) & ~mdp.terminal


def _hole_visits(mdp, policy) -> float:
    """Expected number of steps spent in a hole from the start (the penguin's states 9, 10, 14)."""
    pi = np.eye(mdp.n_actions)[policy]
    P_pi = np.einsum("sa,sat->st", pi, mdp.P) * (~mdp.terminal)[:, None]  # (S, A), (S, A, S) -> (S, S)
    discount = mdp.gamma  # discounted occupancy: finite for any policy when gamma < 1
    occupancy = np.linalg.solve(np.eye(mdp.n_states) - discount * P_pi.T, np.eye(mdp.n_states)[mdp.start])
    return float(occupancy[list(HOLES)].sum())


# =========================================================================== 19.10
@figure("19.10", title="Dynamic programming and the tabular learners on the penguin's ice",
        caption="a) Policy iteration starts from zero values (numbers, shading) and a random policy (arrows); "
                "the holes are dark, the fish sits in the bottom-right corner. b) After two rounds, each one "
                "Bellman sweep of the values followed by making the policy greedy, the values near the fish and "
                "the holes have started to move and the arrows follow them. c) Run to convergence, the values "
                "satisfy the Bellman optimality equation and the penguin heads for the fish while steering its "
                "slippery steps away from the holes. d) Monte Carlo control, SARSA and Q-learning learn from "
                "simulated episodes in the Gymnasium environment instead of the model: the gap between the "
                "optimal start value and the true value of each learner's greedy policy shrinks as episodes "
                "accumulate (dotted: Q-learning's own estimate of the start value). e) The same solver on "
                "Gymnasium's FrozenLake (4x4, slippery): the start value of its policy, read as a probability "
                "of reaching the goal, is compared with the success rate of playing that policy in Gymnasium.",
        params={"tiny": dict(gamma=0.9, p_intended=0.5, td_episodes=200, mc_episodes=400, epsilon=0.1,
                             frozen_episodes=500, snapshots=8),
                "full": dict(gamma=0.9, p_intended=0.5, td_episodes=3000, mc_episodes=20_000, epsilon=0.1,
                             frozen_episodes=10_000, snapshots=20)},
        # a 16-state table and pure-Python episodes (~20 moves each): the episode counts bound the time
        limits={"gamma": (0.5, 0.99), "p_intended": (0.25, 1.0), "td_episodes": (10, 100_000),
                "mc_episodes": (10, 100_000), "epsilon": (0.01, 1.0), "frozen_episodes": (100, 100_000),
                "snapshots": (2, 50)})
def tabular_methods(p, run):
    mdp = penguin_mdp(gamma=p.gamma, p_intended=p.p_intended)
    v_star, pi_star, sweeps = value_iteration_sweeps(mdp)
    v_exact, pi_exact, exact_rounds = policy_iteration(mdp, generator=run.seed)
    v_dp, pi_dp, rounds = policy_iteration(mdp, sweeps=1, generator=run.seed)  # the book's picture
    clear = _clear_states(mdp, v_star)
    metrics = {
        "bellman_residual": bellman_residual(mdp, v_star),
        "value_iteration_sweeps": len(sweeps) - 1,
        "policy_iteration_rounds_exact": len(exact_rounds) - 1,
        "policy_iteration_rounds_one_sweep": len(rounds) - 1,
        "pi_vs_vi_value_difference": float(np.abs(v_exact - v_star).max()),
        "one_sweep_vs_vi_value_difference": float(np.abs(v_dp - v_star).max()),
        "pi_vs_vi_action_disagreements": int(np.sum(pi_exact[clear] != pi_star[clear])),
        "clear_states": int(clear.sum()),
        "start_value": float(v_star[mdp.start]),
        "random_start_value": float(policy_evaluation(mdp, np.full((16, 4), 0.25))[mdp.start]),
        "hole_visits_optimal": _hole_visits(mdp, pi_star),
        "hole_visits_random_start": _hole_visits(mdp, rounds[0][1]),
    }
    shown = [0, min(SHOWN_ROUNDS, len(rounds) - 1), len(rounds) - 1]
    arrays = {"values": np.stack([rounds[i][0] for i in shown]), "policies": np.stack([rounds[i][1] for i in shown]),
              "shown_rounds": np.array(shown)}

    # ---- d) the learners, in the Gymnasium environment
    for k, (name, learner) in enumerate(LEARNERS.items()):
        episodes = p.mc_episodes if name == "monte_carlo" else p.td_episodes
        env = gymnasium.make(ENV_ID, mdp=mdp)
        q, history = learner(env, episodes=episodes, gamma=p.gamma, epsilon=p.epsilon, seed=run.seed + k,
                             snapshots=p.snapshots)
        gaps = [v_star[mdp.start] - policy_evaluation(mdp, table.argmax(axis=1))[mdp.start] for table in history["q"]]
        greedy = q.argmax(axis=1)
        arrays[f"{name}_episodes"] = history["episodes"]
        arrays[f"{name}_gap"] = np.array(gaps)
        arrays[f"{name}_estimate_error"] = np.abs(history["q"][:, mdp.start].max(axis=1) - v_star[mdp.start])
        metrics[f"{name}_value_error"] = float(gaps[-1])
        metrics[f"{name}_max_state_value_error"] = float(
            np.max(np.abs(policy_evaluation(mdp, greedy) - v_star)[~mdp.terminal]))
        metrics[f"{name}_action_disagreements"] = int(np.sum(greedy[clear] != pi_star[clear]))
        metrics[f"{name}_episodes"] = episodes
    metrics["q_learning_start_estimate_error"] = float(arrays["q_learning_estimate_error"][-1])

    # ---- e) FrozenLake-v1, 4x4, slippery: solve the model, then play the policy in Gymnasium
    env = gymnasium.make("FrozenLake-v1", map_name="4x4", is_slippery=True)
    frozen = from_gymnasium(env)  # gamma = 1: a value is a probability of reaching the goal
    v_frozen, pi_frozen, _ = value_iteration_sweeps(frozen)
    within = iterative_policy_evaluation(frozen, pi_frozen, sweeps=FROZEN_STEPS)
    success = evaluate_policy(env, pi_frozen, episodes=p.frozen_episodes, seed=run.seed)
    rate = float(success.mean())
    metrics.update({"frozen_start_value": float(v_frozen[frozen.start]),
                    "frozen_start_value_100_moves": float(within[frozen.start]), "frozen_success_rate": rate,
                    "frozen_difference": abs(rate - float(within[frozen.start])),
                    "frozen_standard_error": float(np.sqrt(within[frozen.start] * (1 - within[frozen.start])
                                                           / p.frozen_episodes)),
                    "frozen_bellman_residual": bellman_residual(frozen, v_frozen),
                    "frozen_episodes": p.frozen_episodes})
    arrays.update({"frozen_values": v_frozen, "frozen_policy": pi_frozen,
                   "frozen_desc": np.array(env.unwrapped.desc.astype(str))})
    return Result(metrics=metrics, arrays=arrays,
                  notes=f"Ice: the intended move with probability {p.p_intended:g}, each other direction "
                        f"{(1 - p.p_intended) / 3:.3g}; γ = {p.gamma:g}. a-c) Policy iteration with one Bellman "
                        f"sweep per evaluation (the random start policy drawn from the seed); it converged in "
                        f"{metrics['policy_iteration_rounds_one_sweep']} rounds, exact policy iteration in "
                        f"{metrics['policy_iteration_rounds_exact']}, value iteration in "
                        f"{metrics['value_iteration_sweeps']} sweeps. d) ε = {p.epsilon:g}; the step for the n-th "
                        f"update of a pair is n^-0.7 (TD) or 1/n (Monte Carlo, the running mean); "
                        f"{p.td_episodes:,} episodes for SARSA and Q-learning, {p.mc_episodes:,} for Monte Carlo "
                        f"(its returns are noisier). The value error is v*(start) minus the exact value of the "
                        f"greedy policy of the learned table. e) FrozenLake with γ = 1 and no step limit has "
                        f"start value {metrics['frozen_start_value']:.4f} (14/17); gymnasium.make stops an episode "
                        f"after {FROZEN_STEPS} moves, so the roll-outs are compared with the chance of success "
                        f"within {FROZEN_STEPS} moves, {FROZEN_STEPS} policy-evaluation sweeps from zero.")


@tabular_methods.plot
def _(r):
    m, a = r.metrics, r.arrays
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(13, 7.6), layout="constrained")
        grid = fig.add_gridspec(2, 6, height_ratios=[1, 0.95])
        grids = [fig.add_subplot(grid[0, 2 * j:2 * j + 2]) for j in range(3)]
        ax_learn = fig.add_subplot(grid[1, :4])
        ax_frozen = fig.add_subplot(grid[1, 4:])
    vmax = max(float(np.abs(a["values"]).max()), 1e-9)
    titles = ["a) start: zero values, random policy", f"b) after {int(a['shown_rounds'][1])} rounds",
              f"c) after {int(a['shown_rounds'][2])} rounds (converged)"]
    for ax, v, pi, title in zip(grids, a["values"], a["policies"], titles):
        _penguin_grid(ax, v, pi, vmax)
        ax.set_title(title, fontsize=10)

    colors = _colors()
    for name in LEARNERS:
        ax_learn.plot(a[f"{name}_episodes"], a[f"{name}_gap"], "-o", ms=3, color=colors[name],
                      label=f"{NAMES[name]} (final {max(m[f'{name}_value_error'], 0.0):.3f})")
    ax_learn.plot(a["q_learning_episodes"], a["q_learning_estimate_error"], ":", color=colors["q_learning"],
                  label="Q-learning: |max Q(start) − v*(start)|")
    ax_learn.axhline(VALUE_TOL, color=style.REGION, ls="--", lw=1, label=f"target {VALUE_TOL:g}")
    ax_learn.set_xscale("log")
    ax_learn.set_xlabel("episodes")
    ax_learn.set_ylabel("v*(start) − v(start) of the greedy policy")
    ax_learn.set_title("d) learning from episodes in udl/Penguin-v0", fontsize=10)
    ax_learn.legend(fontsize=8, frameon=False)

    _frozen_grid(ax_frozen, a["frozen_values"], a["frozen_policy"], a["frozen_desc"])
    ax_frozen.set_title(f"e) FrozenLake-v1: P(goal within 100 moves) = {m['frozen_start_value_100_moves']:.4f}\n"
                        f"success in {m['frozen_episodes']:,} Gymnasium roll-outs = {m['frozen_success_rate']:.4f}",
                        fontsize=9)
    return fig


def _cell_grid(ax):
    ax.set_xlim(-0.5, N_COLS - 0.5)
    ax.set_ylim(N_COLS - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def _arrow(ax, x, y, action, color):
    dx, dy = ARROW[int(action)]
    ax.annotate("", xy=(x + 0.14 * dx, y + 0.14 * dy), xytext=(x - 0.14 * dx, y - 0.14 * dy),  # centred on the cell
                arrowprops=dict(arrowstyle="-|>", color=color, lw=1.6, mutation_scale=11), zorder=6)


def _penguin_grid(ax, v, pi, vmax):
    _cell_grid(ax)
    cmap = plt.get_cmap("RdBu")
    for s in range(N_STATES):
        y, x = divmod(s, N_COLS)
        hole = s in HOLES
        face = "#37474F" if hole else cmap(0.5 + 0.45 * v[s] / vmax)
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=face, edgecolor="#9E9E9E", lw=0.8, zorder=0))
        text_color = "white" if hole else style.TRUTH
        ax.text(x, y - 0.3, f"{v[s]:.2f}", ha="center", va="center", fontsize=7, color=text_color, zorder=7)
        if s == FISH:
            ax.add_patch(Ellipse((x - 0.05, y + 0.12), 0.44, 0.24, color=style.DATA, zorder=3))
            ax.add_patch(Polygon([(x + 0.15, y + 0.12), (x + 0.33, y + 0.01), (x + 0.33, y + 0.23)],
                                 color=style.DATA, zorder=3))
        else:
            _arrow(ax, x, y + 0.1, pi[s], "white" if hole else style.TRUTH)


def _frozen_grid(ax, v, pi, desc):
    _cell_grid(ax)
    for s in range(N_STATES):
        y, x = divmod(s, N_COLS)
        letter = desc[y][x]
        face = {"H": "#37474F", "G": style.DATA, "S": "#E0F7FA"}.get(letter, "#EAF4F8")
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=face, edgecolor="#9E9E9E", lw=0.8, zorder=0))
        if letter in "SF":
            ax.text(x, y - 0.3, f"{v[s]:.2f}", ha="center", va="center", fontsize=7, zorder=7)
            _arrow(ax, x, y + 0.1, pi[s], style.MODEL)
        else:
            ax.text(x, y, {"H": "hole", "G": "goal"}[letter], ha="center", va="center", fontsize=8,
                    color="white" if letter == "H" else style.TRUTH)


@tabular_methods.checks
def _(r):
    m, p = r.metrics, r.params
    checks = [
        Check.less("value iteration reaches the Bellman optimality equation (max |v − max_a q|)",
                   m["bellman_residual"], 1e-8),
        Check.less("policy iteration (exact evaluation) and value iteration give the same values",
                   m["pi_vs_vi_value_difference"], VALUE_AGREEMENT),
        Check.equal("... and the same action wherever one action is clearly best "
                    f"(by {CLEAR_MARGIN:g}; {m['clear_states']} states)", m["pi_vs_vi_action_disagreements"], 0),
        Check.less("the figure's policy iteration (one sweep per round) converges to the same values (panel c)",
                   m["one_sweep_vs_vi_value_difference"], VALUE_AGREEMENT),
        Check.less("FrozenLake-v1: the solver's values satisfy the Bellman optimality equation",
                   m["frozen_bellman_residual"], 1e-8),
        Check.close("FrozenLake-v1 (4x4, slippery) without a step limit: the optimal start value is 14/17",
                    m["frozen_start_value"], 14 / 17, 1e-8),
        Check.less("FrozenLake-v1: the success rate of the Gymnasium roll-outs equals the chance of reaching the "
                   "goal within 100 moves (|difference| below 4 standard errors)",
                   m["frozen_difference"], 4 * m["frozen_standard_error"]),
    ]
    claim = f"FrozenLake-v1: start value and roll-out success rate agree within {FROZEN_TOL:g}"
    if m["frozen_episodes"] < FROZEN_EPISODES:
        checks.append(Check.untested(claim, f"claimed for at least {FROZEN_EPISODES:,} roll-outs; here "
                                            f"{m['frozen_episodes']:,} (standard error "
                                            f"{m['frozen_standard_error']:.4f})"))
    else:  # at 10,000 roll-outs 0.01 is about 2.3 standard errors: the strict claim is the 4-s.e. one above
        checks.append(Check.less(claim, m["frozen_difference"], FROZEN_TOL))
    claim = "the optimal penguin spends less (discounted) time in the holes than the random starting policy"
    if p["p_intended"] <= 0.25:
        checks.append(Check.untested(claim, "with p_intended = 1/4 every action moves the same way"))
    else:
        checks.append(Check.less(claim, m["hole_visits_optimal"], m["hole_visits_random_start"]))
    measured_here = all(p[k] == v for k, v in MEASURED.items() if k not in ("td_episodes", "mc_episodes")) and \
        p["td_episodes"] >= MEASURED["td_episodes"] and p["mc_episodes"] >= MEASURED["mc_episodes"]
    why = (f"measured at γ = 0.9, p_intended = 0.5, ε = 0.1 with at least {MEASURED['td_episodes']:,} TD and "
           f"{MEASURED['mc_episodes']:,} Monte Carlo episodes")
    for name in LEARNERS:
        claim = (f"{NAMES[name]}: the greedy policy's start value is within {VALUE_TOL:g} of dynamic "
                 "programming's")
        checks.append(Check.less(claim, m[f"{name}_value_error"], VALUE_TOL) if measured_here
                      else Check.untested(claim, why))
    claim = f"Q-learning's table estimates the optimal start value within {VALUE_TOL:g}"
    checks.append(Check.less(claim, m["q_learning_start_estimate_error"], VALUE_TOL) if measured_here
                  else Check.untested(claim, why))
    claim = "Q-learning's greedy policy is dynamic programming's wherever one action is clearly best"
    checks.append(Check.equal(claim, m["q_learning_action_disagreements"], 0) if measured_here
                  else Check.untested(claim, why))
    return checks
