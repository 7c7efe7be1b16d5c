"""Reinforcement learning (UDL ch. 19): the penguin gridworld, exact dynamic programming and policy gradients.

* :mod:`udl.rl.penguin` - the slippery 4x4 penguin MDP, a seeded gymnasium-like
  environment, exact policy evaluation and value iteration.
* :mod:`udl.rl.reinforce` - a deep policy network trained by REINFORCE.
"""
