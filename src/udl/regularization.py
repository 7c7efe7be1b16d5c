"""The registry of regularization methods udl implements, tagged by how they help (UDL fig. 9.14).

The book sorts the regularization methods of chapter 9 by the mechanism through
which each improves generalization (§9.4, fig. 9.14):

- **smoother function**: favour functions that vary slowly between the data
  (L2 penalty §9.1.2, early stopping §9.3.1, dropout's removal of kinks §9.3.3);
- **more data**: enlarge the effective training set (augmentation, transfer,
  multi-task and self-supervised learning §9.3.6-9.3.8);
- **model combination**: average several models to reduce the uncertainty of
  the fit (ensembles §9.3.2, dropout as an implicit ensemble §9.3.3);
- **wide minima**: steer training to wide minima, where small errors in the
  parameters matter little (the implicit regularization of SGD §9.2).

Figure 9.14 draws this list, so it grows as methods land: add one line per method
that exists in udl, naming the code (``"module:attr"``) and the test file that tests
it. :func:`survey` imports every target, so a line that points at missing code shows
up as a failed check, never as a box. The module reads nothing outside the package
(it works the same from an installed wheel): that each named test file has a test
using its target is checked by the test suite (``tests/test_regularization.py``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = ["MECHANISMS", "Regularizer", "REGULARIZERS", "by_mechanism", "load_target", "survey"]

MECHANISMS = ("smoother function", "more data", "model combination", "wide minima")


@dataclass(frozen=True)
class Regularizer:
    """One regularization method of udl and where it lives.

    Args:
        name: what a reader calls it.
        mechanisms: one or more of :data:`MECHANISMS` (fig. 9.14's groups).
        target: ``"package.module:attr"`` of the code (``attr`` may be dotted,
            ``"Class.method"``).
        test: the test file that tests it, relative to the project root
            (``"tests/nn/test_dropout.py"``).
        section: where the book describes it (``"§9.3.3"``).
    """

    name: str
    mechanisms: tuple[str, ...]
    target: str
    test: str
    section: str = ""

    def __post_init__(self):
        owner = "Regularizer"
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"The 'name' parameter of {owner} must be a non-empty str. Got {self.name!r} instead.")
        if not isinstance(self.mechanisms, tuple) or not self.mechanisms or \
                any(m not in MECHANISMS for m in self.mechanisms):
            raise ValueError(f"The 'mechanisms' parameter of {owner} must be a non-empty tuple of "
                             f"{', '.join(map(repr, MECHANISMS))}. Got {self.mechanisms!r} instead.")
        if not isinstance(self.target, str) or self.target.count(":") != 1 or \
                not all(part and all(p.isidentifier() for p in part.split("."))
                        for part in self.target.split(":")):
            raise ValueError(f"The 'target' parameter of {owner} must be a 'package.module:attr' string. "
                             f"Got {self.target!r} instead.")
        if not isinstance(self.test, str) or not self.test.startswith("tests/") or not self.test.endswith(".py"):
            raise ValueError(f"The 'test' parameter of {owner} must be a path 'tests/....py' relative to the "
                             f"project root. Got {self.test!r} instead.")

    @property
    def module(self) -> str:
        return self.target.split(":")[0]

    @property
    def attr(self) -> str:
        return self.target.split(":")[1]


REGULARIZERS: tuple[Regularizer, ...] = (
    Regularizer("L2 penalty", ("smoother function",), "udl.nn.regularizers:l2_penalty",
                "tests/nn/test_regularizers.py", "§9.1.2"),
    Regularizer("ridge fit (closed-form L2)", ("smoother function",),
                "udl.nn.fixed_joints:FixedJointNetwork.fit_least_squares", "tests/nn/test_fixed_joints.py",
                "§9.1.2"),
    Regularizer("early stopping", ("smoother function",), "udl.train.early_stopping:EarlyStopping",
                "tests/train/test_early_stopping.py", "§9.3.1"),
    Regularizer("dropout", ("smoother function", "model combination"), "udl.nn.dropout:Dropout",
                "tests/nn/test_dropout.py", "§9.3.3"),
    Regularizer("bagging ensemble", ("model combination",), "udl.models.ensemble:BaggingEnsemble",
                "tests/models/test_ensemble.py", "§9.3.2"),
    Regularizer("transfer learning (pre-train, replace the head, fine-tune)", ("more data",),
                "udl.models.transfer:replace_head", "tests/models/test_transfer.py", "§9.3.6"),
    Regularizer("minibatch SGD (random batches)", ("wide minima",), "udl.train.batches:batch_stream",
                "tests/train/test_train_loop.py", "§9.2"),
)


def by_mechanism(regularizers: tuple[Regularizer, ...] = REGULARIZERS) -> dict[str, list[Regularizer]]:
    """The methods of each mechanism, in :data:`MECHANISMS` order (a method may sit in several)."""
    return {m: [r for r in regularizers if m in r.mechanisms] for m in MECHANISMS}


def load_target(target: str) -> Any:
    """Import ``"package.module:attr"`` (``attr`` may be dotted) and return the object."""
    if not isinstance(target, str) or target.count(":") != 1:
        raise ValueError(f"The 'target' parameter of load_target must be a 'package.module:attr' string. "
                         f"Got {target!r} instead.")
    module, attr = target.split(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def survey(regularizers: tuple[Regularizer, ...] = REGULARIZERS) -> list[dict[str, Any]]:
    """Check that every entry's target imports.

    Returns one row per method: name, mechanisms, target, test, section, ``imports``
    (bool) and ``error`` (why the import failed, or ``""``).
    """
    rows = []
    for r in regularizers:
        row = {"name": r.name, "mechanisms": list(r.mechanisms), "target": r.target, "test": r.test,
               "section": r.section, "imports": False, "error": ""}
        try:
            load_target(r.target)
            row["imports"] = True
        except Exception as error:  # noqa: BLE001 - a broken entry is reported by the caller's checks
            row["error"] = f"{type(error).__name__}: {error}"
        rows.append(row)
    return rows
