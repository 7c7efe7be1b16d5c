"""Reinforcement learning (UDL ch. 19): the penguin gridworld, exact dynamic programming and policy gradients.

* :mod:`udl.rl.penguin` - the slippery 4x4 penguin MDP as a Gymnasium environment
  (registered here as ``"udl/Penguin-v0"``), roll-outs and discounted returns, exact
  policy evaluation and value iteration.
* :mod:`udl.rl.tabular` - policy evaluation (iterative) and improvement, policy and value
  iteration with their history, the Bellman residual; Monte Carlo control, SARSA and
  Q-learning on any Gymnasium environment with discrete spaces; ``from_gymnasium`` reads
  a toy-text model such as FrozenLake's into an MDP.
* :mod:`udl.rl.reinforce` - a deep policy network trained by REINFORCE.
"""

from udl.rl.penguin import register_env

register_env()
