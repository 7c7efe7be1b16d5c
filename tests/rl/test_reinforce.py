import numpy as np
import pytest
import torch

from udl.rl.penguin import MDP, penguin_mdp, policy_evaluation, uniform_policy, value_iteration
from udl.rl.reinforce import PolicyNetwork, policy_value, reinforce, returns_to_go, sample_episodes, surrogate_loss


def test_policy_network_is_a_deep_mlp_on_one_hot_states():
    net = PolicyNetwork(16, 4, hidden=(32, 32), generator=0)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(32, 16), (32, 32), (4, 32)]
    assert net.depth == 2
    states = torch.tensor([0, 7, 15])
    # a one-hot input selects one column of the first weight matrix
    h1 = torch.relu(linears[0].weight[:, states].T + linears[0].bias)
    h2 = torch.relu(h1 @ linears[1].weight.T + linears[1].bias)
    torch.testing.assert_close(net(states), h2 @ linears[2].weight.T + linears[2].bias)
    pi = net.probabilities()
    assert pi.shape == (16, 4)
    torch.testing.assert_close(pi.sum(1), torch.ones(16))
    torch.testing.assert_close(pi[states], torch.softmax(net(states), 1))


def test_returns_to_go_are_discounted_sums():
    rewards = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    G = returns_to_go(rewards, 0.9)
    for t in range(6):
        expected = sum(0.9 ** (k - t) * rewards[:, k] for k in range(t, 6))
        torch.testing.assert_close(G[:, t], expected)


def test_sample_episodes_on_deterministic_ice():
    mdp = penguin_mdp(p_intended=1.0)
    pi = torch.zeros(16, 4)
    pi[[0, 1, 2], 1] = 1  # right along the top row
    pi[[3, 7, 11, 15], 2] = 1  # then down the right column to the fish
    pi[pi.sum(1) == 0, 0] = 1
    batch = sample_episodes(mdp, pi, 2, 10, torch.Generator().manual_seed(0))
    assert batch["states"][0, :7].tolist() == [0, 1, 2, 3, 7, 11, 15]
    assert batch["actions"][0, :7].tolist() == [1, 1, 1, 2, 2, 2, 2]
    assert batch["alive"][0].tolist() == [1] * 7 + [0] * 3
    assert batch["rewards"][0].tolist() == [0] * 6 + [3] + [0] * 3
    G = returns_to_go(batch["rewards"], mdp.gamma)
    assert G[0, 0].item() == pytest.approx(3 * 0.9 ** 6)
    assert G[0, 0].item() == pytest.approx(policy_evaluation(mdp, pi.numpy())[0])


def test_surrogate_gradient_is_the_policy_gradient_on_a_bandit():
    # one terminal state, three actions: E[G] = sum_a pi[a] r[a], so the expected
    # REINFORCE estimate must equal the exact gradient of that sum
    mdp = MDP(P=np.ones((1, 3, 1)), r=np.array([[1.0, 0.0, -1.0]]), gamma=0.9, terminal=np.array([True]))
    net = PolicyNetwork(1, 3, hidden=(4, 4), generator=0)
    params = list(net.parameters())
    expected_return = (net.probabilities()[0] * torch.tensor([1.0, 0.0, -1.0])).sum()
    exact = torch.autograd.grad(expected_return, params)
    batch = sample_episodes(mdp, net.probabilities().detach(), 40000, 1, torch.Generator().manual_seed(0))
    for baseline in ("none", "mean"):
        estimate = torch.autograd.grad(-surrogate_loss(net, batch, mdp.gamma, baseline=baseline), params)
        flat_exact = torch.cat([g.flatten() for g in exact])
        flat_estimate = torch.cat([g.flatten() for g in estimate])
        assert torch.linalg.vector_norm(flat_estimate - flat_exact) < 0.05 * torch.linalg.vector_norm(flat_exact)


def test_reinforce_learns_a_near_optimal_penguin_policy():
    # measured (seed 0): v_pi(0) = 0.032 (greedy 0.065), optimum 0.072, uniformly random -1.354
    mdp = penguin_mdp()
    v_star, _ = value_iteration(mdp)
    v_random = policy_evaluation(mdp, uniform_policy(mdp))
    net = PolicyNetwork(16, 4, hidden=(32, 32), generator=0)
    history = reinforce(net, mdp, iterations=200, episodes=32, generator=0)
    v = policy_value(net, mdp)
    assert history["value"][0] == pytest.approx(policy_evaluation(mdp, uniform_policy(mdp))[0], abs=0.3)
    assert v[0] <= v_star[0] + 1e-9
    assert v[0] > v_random[0] + 1.0
    assert (v[0] - v_random[0]) / (v_star[0] - v_random[0]) > 0.85
    greedy = net.probabilities().argmax(1).numpy()
    assert policy_evaluation(mdp, greedy)[0] > v_star[0] - 0.15


def test_reinforce_is_deterministic_for_a_seed():
    mdp = penguin_mdp()
    runs = []
    for _ in range(2):
        net = PolicyNetwork(16, 4, generator=3)
        runs.append(reinforce(net, mdp, iterations=5, episodes=8, generator=1))
    assert runs[0] == runs[1]


def test_validation():
    mdp = penguin_mdp()
    for bad in (dict(n_states=0, n_actions=4), dict(n_states=16, n_actions=-1),
                dict(n_states=16, n_actions=4, hidden=(0,)), dict(n_states=16, n_actions=4, generator=-1)):
        with pytest.raises(ValueError):
            PolicyNetwork(**bad)
    with pytest.raises(TypeError):
        PolicyNetwork(16, 4, hidden=32)
    net = PolicyNetwork(16, 4)
    with pytest.raises(TypeError):
        net(torch.zeros(3))
    with pytest.raises(ValueError):
        net(torch.tensor([16]))
    with pytest.raises(ValueError):
        reinforce(PolicyNetwork(15, 4), mdp)
    for bad in (dict(iterations=0), dict(episodes=0), dict(lr=-1.0), dict(baseline="critic"), dict(entropy=-0.1),
                dict(generator=-1), dict(max_steps=0)):
        with pytest.raises(ValueError):
            reinforce(net, mdp, **bad)
    with pytest.raises(TypeError):
        reinforce("net", mdp)
    with pytest.raises(ValueError):
        returns_to_go(torch.zeros(3), 0.9)
    with pytest.raises(ValueError):
        sample_episodes(mdp, torch.ones(16, 3) / 3, 1, 1, torch.Generator())
    with pytest.raises(ValueError):
        sample_episodes(mdp, torch.ones(16, 4), 1, 1, torch.Generator())
    with pytest.raises(TypeError, match=r"^The 'generator' parameter of sample_episodes must be a torch\.Generator "
                                        r"or an int seed\. Got 'a' instead\.$"):
        sample_episodes(mdp, torch.ones(16, 4) / 4, 1, 1, "a")


def test_generator_gives_the_old_seeded_weights_and_leaves_the_global_generator_alone():
    state = torch.get_rng_state()
    net = PolicyNetwork(16, 4, hidden=(8, 8), generator=7)
    history = reinforce(net, penguin_mdp(), iterations=2, episodes=4, generator=torch.Generator().manual_seed(1))
    batch = sample_episodes(penguin_mdp(), torch.full((16, 4), 0.25), 3, 5, generator=2)
    assert torch.equal(torch.get_rng_state(), state)
    # the numbers torch.manual_seed(7) gave before generator= existed: nn.Linear's default draw, layer by layer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        reference = [torch.nn.Linear(16, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 4)]
    fresh = PolicyNetwork(16, 4, hidden=(8, 8), generator=7)
    linears = [m for m in fresh.modules() if isinstance(m, torch.nn.Linear)]
    for mine, theirs in zip(linears, reference):
        assert torch.equal(mine.weight, theirs.weight) and torch.equal(mine.bias, theirs.bias)
    # an int seed is sugar for a fresh generator with that seed
    assert reinforce(PolicyNetwork(16, 4, hidden=(8, 8), generator=7), penguin_mdp(), iterations=2, episodes=4,
                     generator=1) == history
    assert torch.equal(sample_episodes(penguin_mdp(), torch.full((16, 4), 0.25), 3, 5,
                                       generator=torch.Generator().manual_seed(2))["actions"], batch["actions"])
