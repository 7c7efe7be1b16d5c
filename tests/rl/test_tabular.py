import gymnasium as gym
import numpy as np
import pytest

import udl.rl  # noqa: F401 (registers udl/Penguin-v0)
from udl.rl.penguin import MDP, PenguinEnv, penguin_mdp, policy_evaluation, uniform_policy, value_iteration
from udl.rl.tabular import (bellman_residual, evaluate_policy, from_gymnasium, iterative_policy_evaluation,
                            monte_carlo_control, policy_improvement, policy_iteration, q_learning, sarsa,
                            value_iteration_sweeps)


def _clear_actions(mdp, v, margin=1e-6):
    """States whose best action beats the second best by ``margin`` (ties may go either way)."""
    from udl.rl.penguin import action_values
    q = np.sort(action_values(mdp, v), axis=1)
    return (q[:, -1] - q[:, -2] > margin) & ~mdp.terminal


def test_value_iteration_reaches_the_bellman_optimality_fixed_point():
    mdp = penguin_mdp()
    v, policy, history = value_iteration_sweeps(mdp)
    assert bellman_residual(mdp, v) < 1e-8
    np.testing.assert_array_equal(history[0], 0.0)
    np.testing.assert_allclose(history[-1], v)
    v_old, policy_old = value_iteration(mdp)  # penguin's solver: the same fixed point
    np.testing.assert_allclose(v, v_old, atol=1e-9)
    # the values are the policy's own: its Bellman equation holds too, and the exact solve agrees
    np.testing.assert_allclose(policy_evaluation(mdp, policy), v, atol=1e-8)
    assert bellman_residual(mdp, v, policy) < 1e-8
    assert bellman_residual(mdp, np.zeros(16)) == pytest.approx(3.0)  # only the fish's +3 is off at v = 0


def test_policy_iteration_equals_value_iteration():
    mdp = penguin_mdp()
    v_star, pi_star, _ = value_iteration_sweeps(mdp)
    clear = _clear_actions(mdp, v_star)
    assert clear.sum() >= 12
    for sweeps in (None, 1, 3):
        v, pi, history = policy_iteration(mdp, sweeps=sweeps, generator=0)
        np.testing.assert_allclose(v, v_star, atol=1e-8)
        np.testing.assert_array_equal(pi[clear], pi_star[clear])
        assert bellman_residual(mdp, v) < 1e-8
        np.testing.assert_array_equal(history[0][0], 0.0)
    _, _, exact = policy_iteration(mdp, generator=0)
    assert len(exact) <= 8  # exact evaluation: a handful of improvements
    # the optimal policy keeps out of the holes' way: no state next to hole 9 or 10 heads into it on purpose
    assert pi_star[5] != 2 and pi_star[8] != 1 and pi_star[6] != 2 and pi_star[11] != 3


def test_iterative_policy_evaluation_matches_the_linear_solve():
    mdp = penguin_mdp()
    pi = uniform_policy(mdp)
    np.testing.assert_allclose(iterative_policy_evaluation(mdp, pi), policy_evaluation(mdp, pi), atol=1e-8)
    # two sweeps from zero by hand: v1 = r_pi, v2 = r_pi + gamma P_pi v1 (nothing after the fish)
    r = mdp.r.mean(axis=1)
    P = mdp.P.mean(axis=1) * (~mdp.terminal)[:, None]
    np.testing.assert_allclose(iterative_policy_evaluation(mdp, pi, sweeps=2), r + 0.9 * P @ r)
    np.testing.assert_array_equal(iterative_policy_evaluation(mdp, pi, sweeps=0), 0.0)
    v = policy_evaluation(mdp, pi)
    improved = policy_improvement(mdp, v)
    assert (policy_evaluation(mdp, improved) >= v - 1e-12).all()  # the improvement theorem


def test_frozenlake_value_is_the_rollout_success_rate():
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True)
    mdp = from_gymnasium(env)
    assert mdp.P.shape == (16, 4, 16) and mdp.start == 0 and mdp.gamma == 1.0
    np.testing.assert_array_equal(np.flatnonzero(mdp.terminal), [5, 7, 11, 12, 15])
    np.testing.assert_allclose(mdp.P[14, 1, 15], 1 / 3)
    np.testing.assert_allclose(mdp.r[14, 1], 1 / 3)
    v, policy, _ = value_iteration_sweeps(mdp)
    assert bellman_residual(mdp, v) < 1e-8
    assert v[0] == pytest.approx(14 / 17, abs=1e-8)  # the known optimum without a step limit
    within_100 = iterative_policy_evaluation(mdp, policy, sweeps=100)[0]  # make() stops after 100 moves
    assert within_100 == pytest.approx(0.7402, abs=1e-4)
    success = evaluate_policy(env, policy, episodes=2000, seed=0)
    assert abs(success.mean() - within_100) < 4 * np.sqrt(within_100 * (1 - within_100) / 2000)


def test_from_gymnasium_reads_the_penguin_env():
    mdp = from_gymnasium(gym.make("udl/Penguin-v0"))
    assert mdp.gamma == 0.9 and mdp.start == 0
    np.testing.assert_array_equal(mdp.P, penguin_mdp().P)
    assert from_gymnasium(gym.make("udl/Penguin-v0"), gamma=0.5).gamma == 0.5


def test_from_gymnasium_refuses_what_it_cannot_read():
    with pytest.raises(TypeError, match="Discrete"):
        from_gymnasium(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="gamma"):
        from_gymnasium(gym.make("FrozenLake-v1"), gamma=1.5)


def _penguin_env():
    return gym.make("udl/Penguin-v0")


# Monte Carlo returns are noisy on the slippery ice (holes cost -2 again and again): it needs more episodes
@pytest.mark.parametrize("learner, episodes, tol", [(q_learning, 3000, 0.05), (sarsa, 3000, 0.05),
                                                    (monte_carlo_control, 20_000, 0.05)])
def test_learners_reach_the_dynamic_programming_solution(learner, episodes, tol):
    mdp = penguin_mdp()
    v_star, pi_star, _ = value_iteration_sweeps(mdp)
    q, history = learner(_penguin_env(), episodes=episodes, seed=0, snapshots=5)
    greedy = q.argmax(axis=1)
    v_learned = policy_evaluation(mdp, greedy)  # the learned greedy policy's exact value
    assert v_star[mdp.start] - v_learned[mdp.start] < tol
    assert (v_learned <= v_star + 1e-9).all()
    assert history["q"].shape == (len(history["episodes"]), 16, 4) and history["episodes"][-1] == episodes
    np.testing.assert_array_equal(history["q"][-1], q)
    assert history["returns"].shape == (episodes,) and (history["lengths"] >= 1).all()
    if learner is q_learning:  # off-policy: the table itself approaches Q*, and its policy is DP's
        assert abs(q[mdp.start].max() - v_star[mdp.start]) < tol
        clear = _clear_actions(mdp, v_star, margin=0.05)
        np.testing.assert_array_equal(greedy[clear], pi_star[clear])


def test_learners_are_seeded():
    a, _ = sarsa(_penguin_env(), episodes=50, seed=3)
    b, _ = sarsa(_penguin_env(), episodes=50, seed=3)
    c, _ = sarsa(_penguin_env(), episodes=50, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_running_mean_step_on_a_one_step_bandit():
    # one decision then the end: with alpha = alpha_power = 1 each Q[0, a] is the mean reward seen for a
    P = np.zeros((2, 2, 2))
    P[:, :, 1] = 1.0
    r = np.array([[1.0, 2.0], [0.0, 0.0]])
    mdp = MDP(P=P, r=r, gamma=1.0, terminal=np.array([False, True]))
    for learner in (q_learning, sarsa, monte_carlo_control):
        q, history = learner(PenguinEnv(mdp, max_steps=5), episodes=200, epsilon=1.0, alpha=1.0, alpha_power=1.0,
                             gamma=1.0, seed=0)
        np.testing.assert_allclose(q[0], [1.0, 2.0])  # deterministic rewards: the mean is exact
        assert set(history["returns"]) == {1.0, 2.0}
