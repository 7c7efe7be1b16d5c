"""The training loop: ``fit``, exact-resume checkpoints, DDP under ``torchrun``.

- ``loop``: ``fit(model, data, loss_fn, optimizer, steps=...)``, the one loop udl trains with.
- ``batches``: the data order, a function of (seed, epoch), which makes resuming exact.
- ``checkpoint``: atomic ``torch.save`` + rename, safe ``weights_only`` loads, RNG states.
- ``distributed``: rank / world size from torchrun's environment, process group, sharding.
- ``classifiers``: the MNIST-1D networks' recipe (plain SGD on the cross-entropy, §10.2.7) with
  train/test error curves: ``train_classifier``, ``classification_error``.
- ``recipes``: the transformers' optimiser (AdamW, weight decay on matrices only) and warm-up schedules.
- ``transformers``: training GPT, BERT and the encoder-decoder (``import udl.train.transformers``);
  the models that figures share are trained once per machine (:func:`udl.cache.trained`).
- ``graphs``: the tasks of fig. 13.6 (graph, node and edge prediction; transductive and
  inductive), their losses, negative sampling, and the baselines they are judged against.
- ``vae``: the negative ELBO through ``fit_adamw``, and the digits VAE the figures share.
- ``diffusion``: the denoisers' least-squares loss with label dropout, and their recipes.
- ``gan``: ``train_adversarial``, the one loop of two networks trained against each other
  (n_critic discriminator updates, then one generator update; exact resume), ``train_gan``
  (plain, conditional, WGAN-GP) and ``discriminator_accuracy``. The GANs of chapter 15 train
  on it: ``conditional_gan`` (cGAN, ACGAN, InfoGAN), ``progressive_gan`` (growing with
  fade-in), ``pix2pix`` (a U-Net colouriser against a patch discriminator), ``srgan``
  (content then adversarial super-resolution), ``cyclegan`` (plain <-> bold digits) and
  ``stylegan`` (style-mixing regularisation); each keeps the trained model its figure shares.
"""

from udl.train import distributed
from udl.train.batches import epoch_order
from udl.train.checkpoint import load_checkpoint, save_checkpoint
from udl.train.early_stopping import EarlyStopping
from udl.devices import resolve_device
from udl.train.loop import CheckpointWriteError, LossNotFiniteError, autocast_dtype, fit

__all__ = ["CheckpointWriteError", "EarlyStopping", "LossNotFiniteError", "autocast_dtype", "distributed",
           "epoch_order", "fit", "load_checkpoint", "resolve_device", "save_checkpoint"]
