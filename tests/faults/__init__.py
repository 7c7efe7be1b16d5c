"""Faults found by trying to break udl (issue 12), each replayed as a test that failed before its fix.

Where each case lives (the issue's item numbers):

- ``test_numerics``: 1 BertClassifier with any padding layout; 3 normalisation in bfloat16/float16
  against a float64 reference; 15 bracket_minimize's first inner points.
- ``test_forward``: 2 fully masked rows and low precision on the written-out attention path;
  11 forward passes that got torch's internal errors; 13 Seq2SeqConfig's clashing ids.
- ``test_figure_limits`` and ``test_figure_params_*``: 8 figure parameters outside their ranges or
  not fitting together, refused before computing; 4 checks that assumed a sweep's order or passed
  by construction, and claims recorded as not tested.
- ``test_cli``: 5 ``--out`` that cannot be written; 6 broken pipes; 7 an unusable cache; 9 ``--jobs``
  and chapter lists; 8 ``--seed`` and ``--set`` values through the command line.
- ``test_fit``: 10 checkpoints that cannot be written or read, resumes with other settings, NaN in
  the data, targets that would broadcast.
- ``test_bpe``: 12 BPE's near-linear time on one long word and files that cannot be loaded.
- 14 (documentation) is ``tests/test_readme.py`` (README's examples run and give their numbers) and
  ``tests/test_registry.py`` (a Result's one-line repr).

Command-line cases run ``python -m udl`` in a subprocess and assert the exit status, the one-line
message and that no traceback is printed.
"""
