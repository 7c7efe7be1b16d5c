import itertools

import numpy as np
import pytest
from scipy.stats import chisquare

from udl.rl.penguin import (MDP, PenguinEnv, action_values, as_policy_matrix, coordinates, greedy_policy,
                            penguin_mdp, penguin_rewards, penguin_transitions, policy_evaluation,
                            uniform_policy, value_iteration)

UP, RIGHT, DOWN, LEFT = range(4)


def test_transition_rows_are_distributions():
    P = penguin_transitions()
    assert P.shape == (16, 4, 16)
    assert (P >= 0).all()
    np.testing.assert_allclose(P.sum(axis=2), 1.0, atol=1e-12)


def test_slippery_moves_and_walls():
    P = penguin_transitions()
    # interior state 5, action right: 1/2 to 6, 1/6 to each other neighbour
    expected = np.zeros(16)
    expected[[6, 1, 9, 4]] = [1 / 2, 1 / 6, 1 / 6, 1 / 6]
    np.testing.assert_allclose(P[5, RIGHT], expected)
    # top-left corner, action up: up and left hit walls and keep the penguin in place
    expected = np.zeros(16)
    expected[[0, 1, 4]] = [1 / 2 + 1 / 6, 1 / 6, 1 / 6]
    np.testing.assert_allclose(P[0, UP], expected)
    # deterministic ice
    P1 = penguin_transitions(1.0)
    assert P1[5, DOWN, 9] == 1.0 and P1[3, RIGHT, 3] == 1.0
    assert coordinates(6) == (1, 2)


def test_rewards_and_terminal_state():
    mdp = penguin_mdp()
    R = penguin_rewards("mdp")
    assert R[[9, 10, 14]].tolist() == [-2, -2, -2] and R[15] == 3 and np.count_nonzero(R) == 4
    np.testing.assert_array_equal(mdp.r, np.repeat(R[:, None], 4, axis=1))
    assert mdp.terminal.tolist() == [False] * 15 + [True] and mdp.gamma == 0.9 and mdp.start == 0
    mrp = penguin_rewards("mrp")
    assert np.flatnonzero(mrp).tolist() == [3, 8, 10] and mrp.sum() == 3


def test_sampled_transitions_match_P():
    mdp = penguin_mdp()
    env = PenguinEnv(mdp)
    n = 3000
    p_values = []
    for s, a in itertools.product([0, 5, 6, 12], range(4)):
        counts = np.zeros(16)
        env.reset(seed=s * 4 + a, options={"state": s})
        for _ in range(n):
            env.reset(options={"state": s})  # keep the generator's stream, restart in s
            s_next, reward, terminated, truncated, info = env.step(a)
            assert reward == mdp.r[s, a] and not terminated and not truncated and info["prob"] == mdp.P[s, a, s_next]
            counts[s_next] += 1
        support = mdp.P[s, a] > 0
        assert counts[~support].sum() == 0
        p_values.append(chisquare(counts[support], n * mdp.P[s, a][support]).pvalue)
        np.testing.assert_allclose(counts / n, mdp.P[s, a], atol=0.035)
    assert min(p_values) > 1e-4


def test_environment_episode_rules():
    env = PenguinEnv(max_steps=7)
    assert env.reset(seed=0) == (0, {"prob": 1.0})
    first = [env.step(RIGHT) for _ in range(5)]
    env.reset(seed=0)
    assert [env.step(RIGHT) for _ in range(5)] == first  # same seed, same trajectory
    env.reset(options={"state": 15})
    assert env.step(UP) == (15, 3.0, True, False, {"prob": 1.0})  # leaving the fish pays +3 and ends the episode
    with pytest.raises(RuntimeError):
        env.step(UP)
    env.reset(seed=1, options={"state": 0})
    outcomes = [env.step(UP) for _ in range(7)]  # "up" from the top row cannot reach the fish in 7 steps
    assert [o[3] for o in outcomes] == [False] * 6 + [True]
    with pytest.raises(RuntimeError):
        env.step(UP)


def test_policy_evaluation_solves_the_bellman_equation():
    mdp = penguin_mdp()
    pi = uniform_policy(mdp)
    v = policy_evaluation(mdp, pi)
    # v equals the expectation over actions of the action values it induces (UDL §19.2)
    np.testing.assert_allclose(v, np.sum(pi * action_values(mdp, v), axis=1), atol=1e-10)
    assert v[15] == pytest.approx(3.0)
    # ...and the fixed point that iterative policy evaluation (UDL §19.3.1) approaches
    v_iter = np.zeros(16)
    for _ in range(400):
        v_iter = np.sum(pi * action_values(mdp, v_iter), axis=1)
    np.testing.assert_allclose(v_iter, v, atol=1e-9)


def test_policy_evaluation_matches_monte_carlo_returns():
    mdp = penguin_mdp()
    policy = np.array([RIGHT, RIGHT, RIGHT, DOWN] + [UP] * 3 + [DOWN] * 4 + [DOWN] + [RIGHT] * 4)
    v = policy_evaluation(mdp, policy)
    env = PenguinEnv(mdp, max_steps=200)
    returns = []
    env.reset(seed=0)
    for _ in range(3000):
        (s, _), G, discount, over = env.reset(), 0.0, 1.0, False
        while not over:
            s, reward, terminated, truncated, _ = env.step(int(policy[s]))
            G += discount * reward
            discount *= mdp.gamma
            over = terminated or truncated
        returns.append(G)
    returns = np.array(returns)
    assert abs(returns.mean() - v[0]) < 4 * returns.std() / np.sqrt(len(returns))


def test_value_iteration_is_optimal():
    mdp = penguin_mdp()
    v_star, policy = value_iteration(mdp)
    q = action_values(mdp, v_star)
    np.testing.assert_allclose(v_star, q.max(axis=1), atol=1e-9)  # Bellman optimality residual
    np.testing.assert_allclose(policy_evaluation(mdp, policy), v_star, atol=1e-8)
    v_random = policy_evaluation(mdp, uniform_policy(mdp))
    assert v_star[0] > v_random[0] + 1.0  # measured: 0.072 vs -1.354
    assert v_star[15] == pytest.approx(3.0)
    # no deterministic policy does better anywhere
    rng = np.random.default_rng(0)
    for _ in range(200):
        other = rng.integers(0, 4, size=16)
        assert (policy_evaluation(mdp, other) <= v_star + 1e-8).all()
    # the optimal penguin heads away from the holes: from 8 it goes up, from 11 down to the fish
    assert policy[8] == UP and policy[11] == DOWN and policy[14] == RIGHT


def test_policy_helpers():
    mdp = penguin_mdp()
    one_hot = as_policy_matrix(mdp, np.array([1] * 16))
    assert one_hot.shape == (16, 4) and (one_hot[:, 1] == 1).all()
    assert greedy_policy(np.array([[0.0, 2.0, 2.0], [3.0, 1.0, 0.0]])).tolist() == [1, 0]


def test_validation():
    mdp = penguin_mdp()
    for bad, error in ((-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError), (True, TypeError)):
        with pytest.raises(error, match=rf"^The 'p_intended' parameter of penguin_transitions must be a float"):
            penguin_transitions(bad)
    with pytest.raises(ValueError):
        penguin_rewards("fish")
    with pytest.raises(ValueError):
        penguin_mdp(gamma=1.2)
    with pytest.raises(ValueError):
        MDP(P=np.ones((2, 1, 2)), r=np.zeros((2, 1)), gamma=0.9, terminal=np.zeros(2, bool))
    with pytest.raises(ValueError):
        MDP(P=np.ones((2, 1, 1)), r=np.zeros((2, 1)), gamma=0.9, terminal=np.zeros(2, bool))
    with pytest.raises(TypeError):
        policy_evaluation("mdp", np.zeros(16, int))
    with pytest.raises(ValueError):
        policy_evaluation(mdp, np.full(16, 4))
    with pytest.raises(ValueError):
        policy_evaluation(mdp, np.full((16, 4), 0.3))
    with pytest.raises(ValueError):
        value_iteration(mdp, tol=0)
    with pytest.raises(ValueError):
        PenguinEnv(max_steps=0)
    env = PenguinEnv()
    with pytest.raises(RuntimeError):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(4)
    with pytest.raises(ValueError):
        env.reset(options={"state": 16})
    with pytest.raises(ValueError):
        coordinates(-1)
