"""Weights in and out of other libraries' formats.

udl's models are written from the book, but their weights can come from, and go to,
the checkpoints that the rest of the field uses:

- :mod:`udl.interop.checkpoint`: a Hugging Face checkpoint folder on disk
  (``config.json`` and ``model.safetensors``, or a sharded ``model.safetensors.index.json``),
  read and written with ``safetensors`` (never pickle). Nothing is downloaded: point it
  at a folder you already have.
- :mod:`udl.interop.gpt2`: GPT-2 checkpoints <-> :class:`udl.models.gpt.GPT`.
- :mod:`udl.interop.bert`: BERT checkpoints <-> :class:`udl.models.bert.BERT` and
  :class:`~udl.models.bert.MaskedLanguageModel`.
- :mod:`udl.interop.resnet`: udl's post-activation ResNet <-> ``transformers``' ResNet (parameter
  names and checkpoint folders).

``transformers`` itself is not needed to read or write these folders; the tests build
small random models with it and check that both libraries compute the same numbers.
"""
