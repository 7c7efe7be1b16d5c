"""Optimizers of UDL chapter 6, as ``torch.optim.Optimizer`` subclasses.

- :class:`LineSearchGD`, :func:`bracket_minimize`: gradient descent with a bracketing
  line search (§6.1.2, fig. 6.10).
- :class:`SignGD`: normalised (sign) gradient descent (eqs. 6.13-6.14).
- :class:`BookMomentum`: momentum and Nesterov momentum in the book's form (eqs. 6.11-6.12).
- :class:`BookAdam`: Adam in the book's form (eqs. 6.15-6.17).
- :func:`to_torch_sgd`, :func:`to_torch_adam`: the ``torch.optim.SGD`` / ``torch.optim.Adam``
  hyper-parameters that give the same trajectories as the book's rules.
- :func:`descent_path`: the points an optimizer visits on a small loss function.

Plain SGD is ``torch.optim.SGD`` (or ``BookMomentum`` with ``beta=0``). The rules that update
each parameter from its own gradient alone (sign, momentum, Adam) share their ``step`` in
``udl.optim.elementwise.ElementwiseOptimizer`` and write only the update.
"""

from udl.optim.book import BookAdam, BookMomentum, to_torch_adam, to_torch_sgd
from udl.optim.line_search import Bracket, LineSearchGD, bracket_minimize
from udl.optim.path import descent_path
from udl.optim.sign import SignGD

__all__ = ["bracket_minimize", "Bracket", "LineSearchGD", "SignGD", "BookMomentum", "BookAdam",
           "to_torch_sgd", "to_torch_adam", "descent_path"]
