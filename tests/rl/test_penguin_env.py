import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from scipy.stats import chisquare

import udl.rl  # noqa: F401  (registers "udl/Penguin-v0")
from udl.rl.penguin import (ENV_ID, PenguinEnv, discounted_returns, penguin_mdp, penguin_mrp, policy_evaluation,
                            register_env, rollout, uniform_policy)

UP, RIGHT, DOWN, LEFT = range(4)


@pytest.mark.parametrize("kwargs", [{}, {"render_mode": "ansi"}, {"mdp": penguin_mrp(), "max_steps": 8}])
def test_check_env_passes_without_warnings(kwargs):
    env = gymnasium.make(ENV_ID, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    assert env.observation_space == gymnasium.spaces.Discrete(16)
    assert env.action_space == gymnasium.spaces.Discrete(1 if "mdp" in kwargs else 4)
    env.close()


def test_registration_is_idempotent_and_make_works():
    register_env()
    register_env()
    assert ENV_ID in gymnasium.registry
    env = gymnasium.make(ENV_ID, max_steps=5)
    assert isinstance(env.unwrapped, PenguinEnv) and env.unwrapped.max_steps == 5
    obs, info = env.reset(seed=0)
    assert obs == 0 and info == {"prob": 1.0} and env.observation_space.contains(obs)
    outcomes = [env.step(UP) for _ in range(5)]  # "up" from the top row cannot reach the fish in 5 steps
    assert [o[3] for o in outcomes] == [False] * 4 + [True] and not any(o[2] for o in outcomes)


def test_made_env_moves_as_the_transition_tensor_says():
    # fig. 19.3: from state 6 each action goes its way with probability 1/2, each other way with 1/6
    env, mdp, n = gymnasium.make(ENV_ID), penguin_mdp(), 2000
    env.reset(seed=6)
    for a, intended in zip(range(4), (2, 7, 10, 5)):
        assert mdp.P[6, a, intended] == 0.5
        counts = np.zeros(16)
        for _ in range(n):
            env.reset(options={"state": 6})
            counts[env.step(a)[0]] += 1
        support = mdp.P[6, a] > 0
        assert support.sum() == 4 and counts[~support].sum() == 0
        assert chisquare(counts[support], n * mdp.P[6, a][support]).pvalue > 1e-3


def test_render_ansi():
    env = PenguinEnv(render_mode="ansi")
    env.reset(seed=0, options={"state": 5})
    assert env.render() == "....\n.P..\n.HH.\n..HF\n"
    assert PenguinEnv().render() is None


def test_rollout_records_a_consistent_episode():
    mdp = penguin_mdp()
    env = gymnasium.make(ENV_ID, max_steps=200)
    policy = np.array([RIGHT, RIGHT, RIGHT, DOWN] + [UP] * 3 + [DOWN] * 4 + [DOWN] + [RIGHT] * 4)
    states, actions, rewards = rollout(env, policy, seed=3, max_steps=200)
    assert len(states) == len(actions) + 1 == len(rewards) + 1 and states[0] == 0
    np.testing.assert_array_equal(actions, policy[states[:-1]])
    np.testing.assert_array_equal(rewards, mdp.r[states[:-1], actions])
    assert (mdp.P[states[:-2], actions[:-1], states[1:-1]] > 0).all()  # every move was possible
    assert states[-1] == 15 and rewards[-1] == 3.0  # the episode ends by acting on the fish
    again = rollout(env, policy, seed=3, max_steps=200)
    for x, y in zip((states, actions, rewards), again):
        np.testing.assert_array_equal(x, y)  # same seed, same episode
    # a stochastic policy and a callable policy; max_steps cuts the episode
    s2, a2, r2 = rollout(PenguinEnv(), uniform_policy(mdp), seed=0, max_steps=7)
    assert len(a2) == 7 and set(a2.tolist()) <= {0, 1, 2, 3}
    s3, a3, _ = rollout(PenguinEnv(), lambda s: DOWN, seed=0, max_steps=4, options={"state": 5})
    assert s3[0] == 5 and a3.tolist() == [DOWN] * 4


def test_rollout_works_on_frozen_lake():
    env = gymnasium.make("FrozenLake-v1", is_slippery=False)  # 4x4: S F F F / F H F H / F F F H / H F F G
    policy = np.array([DOWN, RIGHT, DOWN, LEFT, DOWN, 0, DOWN, 0, RIGHT, DOWN, DOWN, 0, 0, RIGHT, RIGHT, 0])
    policy = np.array([{0: 1, 1: 2, 2: 1, 3: 0}[int(a)] for a in policy])  # ours (up, right, down, left) -> FL's
    states, actions, rewards = rollout(env, policy, seed=0, max_steps=20)
    assert states.tolist() == [0, 4, 8, 9, 13, 14, 15] and rewards.tolist() == [0] * 5 + [1]


def test_discounted_returns():
    rng = np.random.default_rng(0)
    r = rng.normal(size=12)
    for gamma in (0.0, 0.5, 0.9, 1.0):
        G = discounted_returns(r, gamma)
        direct = [sum(gamma ** k * r[t + k] for k in range(len(r) - t)) for t in range(len(r))]
        np.testing.assert_allclose(G, direct, atol=1e-12)
        np.testing.assert_allclose(G[:-1], r[:-1] + gamma * G[1:], atol=1e-12)  # G_t = r_{t+1} + gamma G_{t+1}
    assert discounted_returns([0.0, 0.0, 1.0], 0.9).tolist() == pytest.approx([0.81, 0.9, 1.0])
    assert discounted_returns([], 0.9).shape == (0,)


def test_mean_return_of_the_reward_process_is_its_value():
    # fig. 19.2's process: the mean discounted return from the start is v[0], the Bellman solution
    mrp = penguin_mrp()
    v = policy_evaluation(mrp, np.zeros(16, dtype=np.int64))
    env = PenguinEnv(mrp, max_steps=150)  # 0.9^150 < 1e-6: truncation changes nothing visible
    G0 = np.array([discounted_returns(rollout(env, np.zeros(16, dtype=np.int64), seed=i, max_steps=150)[2], 0.9)[0]
                   for i in range(600)])
    assert abs(G0.mean() - v[0]) < 4 * G0.std() / np.sqrt(len(G0))
    np.testing.assert_allclose(mrp.P.sum(axis=2), 1.0)
    assert mrp.P[5, 0, [1, 4, 6, 9]].tolist() == [0.25] * 4 and mrp.P[0, 0, 0] == 0.5


def test_validation():
    env = PenguinEnv()
    with pytest.raises(ValueError, match=r"^The 'render_mode' parameter of PenguinEnv"):
        PenguinEnv(render_mode="human")
    with pytest.raises(ValueError, match=r"^The 'options' parameter of PenguinEnv.reset"):
        env.reset(options={"start": 3})
    with pytest.raises(ValueError, match=r"^The 'seed' parameter of PenguinEnv.reset"):
        env.reset(seed=-1)
    with pytest.raises(TypeError, match=r"^The 'env' parameter of rollout"):
        rollout("penguin", np.zeros(16, dtype=np.int64), seed=0)
    with pytest.raises(ValueError, match=r"^The 'policy' parameter of rollout"):
        rollout(env, np.full(16, 4), seed=0)
    with pytest.raises(ValueError, match=r"^The 'policy' parameter of rollout"):
        rollout(env, np.full((16, 4), 0.3), seed=0)
    with pytest.raises(ValueError, match=r"^The 'max_steps' parameter of rollout"):
        rollout(env, np.zeros(16, dtype=np.int64), seed=0, max_steps=0)
    with pytest.raises(ValueError, match=r"^The 'rewards' parameter of discounted_returns"):
        discounted_returns([[1.0]], 0.9)
    with pytest.raises(ValueError, match=r"^The 'gamma' parameter of discounted_returns"):
        discounted_returns([1.0], 1.5)
    with pytest.raises(ValueError, match=r"^The 'gamma' parameter of penguin_mrp"):
        penguin_mrp(1.0)


def test_env_episodes_have_the_vectorised_sampler_layout():
    from udl.rl.reinforce import sample_env_episodes, sample_episodes
    import torch
    mdp = penguin_mdp(p_intended=1.0)  # deterministic ice: both samplers give the same episode
    pi = torch.zeros(16, 4)
    pi[[0, 1, 2], 1] = 1  # right along the top row
    pi[[3, 7, 11, 15], 2] = 1  # then down the right column to the fish
    pi[pi.sum(1) == 0, 0] = 1
    ours = sample_env_episodes(PenguinEnv(mdp), pi, 2, 10, seed=0)
    theirs = sample_episodes(mdp, pi, 2, 10, torch.Generator().manual_seed(0))
    for key in ("actions", "rewards", "alive"):
        torch.testing.assert_close(ours[key], theirs[key])
    torch.testing.assert_close(ours["states"] * ours["alive"].long(), theirs["states"] * theirs["alive"].long())


def test_env_and_vectorised_samplers_agree_with_the_exact_value():
    from udl.rl.reinforce import returns_to_go, sample_env_episodes, sample_episodes
    import torch
    mdp = penguin_mdp()
    pi = torch.full((16, 4), 0.25)
    v0 = policy_evaluation(mdp, uniform_policy(mdp))[0]  # -1.354
    env_batch = sample_env_episodes(gymnasium.make(ENV_ID), pi, 1500, 120, seed=0)
    vec_batch = sample_episodes(mdp, pi, 1500, 120, torch.Generator().manual_seed(0))
    for batch in (env_batch, vec_batch):
        G0 = returns_to_go(batch["rewards"].double(), mdp.gamma)[:, 0].numpy()
        assert abs(G0.mean() - v0) < 4 * G0.std() / np.sqrt(len(G0)) + 0.9 ** 120 * 3 / 0.1


def test_reinforce_learns_on_the_gymnasium_env():
    from udl.rl.reinforce import PolicyNetwork, policy_value, reinforce
    mdp = penguin_mdp()
    net = PolicyNetwork(16, 4, hidden=(32, 32), generator=0)
    history = reinforce(net, mdp, iterations=60, episodes=32, generator=0, env=gymnasium.make(ENV_ID))
    assert history["value"][-1] == pytest.approx(policy_value(net, mdp)[0], abs=0.05)
    assert policy_value(net, mdp)[0] > history["value"][0] + 0.4  # measured: -1.33 -> -0.44 (optimum 0.07)
    with pytest.raises(ValueError, match=r"^The 'env' parameter of reinforce"):
        reinforce(net, mdp, iterations=1, env=gymnasium.make("FrozenLake-v1", map_name="8x8"))
    with pytest.raises(ValueError, match=r"^The 'exploring_starts' parameter of reinforce"):
        reinforce(net, mdp, iterations=1, env=gymnasium.make(ENV_ID), exploring_starts=True)
