"""Every public constructor (and the main entry points) rejects bad arguments clearly.

In the style of scikit-learn's common tests: a table gives, for each entry point,
arguments that work and, per parameter, values that must be refused with a
``ValueError`` or ``TypeError`` whose message names the parameter. A completeness test
fails when a new public class is added to the library without a row here.
"""

import importlib
import inspect
import pkgutil
import re

import numpy as np
import pytest
import torch

import udl
from udl import gallery, runner
from udl.analysis import probability, regions
from udl.data import images, mnist1d, toy
from udl.models import autoencoder, classifier
from udl.nn import deep, shallow
from udl.nn import fixed_joints, regularizers
from udl.analysis import bias_variance
from udl.train import early_stopping
from udl.data import testfunctions
from udl.optim import book, line_search, sign
from udl.optim import path as optim_path
from udl.rl import penguin, reinforce
from udl.train import loop
from udl.models import ensemble
from udl.nn import dropout
from udl.analysis import smoothness
from udl import regularization
from udl.data import gabor as gabor_data
from udl.models import gabor as gabor_model
from udl.nn import conv
from udl.analysis import receptive_field
from udl.nn import sampling
from udl.models import mnist1d_nets
from udl.data import scenes
from udl.models import yolo
from udl.analysis import detection
from udl.analysis import cross_validation, double_descent
from udl.models import transfer
from udl.nn import attention, transformer
from udl.nn import sparse_attention as sparse_attn
from udl.nn import residual
from udl.analysis import ngram
from udl.nn import normalization
from udl.nn import init as nn_init
from udl.models import densenet, resnet
from udl.text import bpe
from udl.data import text as text_data
from udl.models import decoding, gpt
from udl.models import unet
from udl.models import swin
from udl.models import vit
from udl.data import cells
from udl.models import hourglass
from udl.data import poses
from udl.models import seq2seq
from udl.data import numbers as numbers_data
from udl.analysis import loss_landscape
from udl.analysis import compare
from udl.models import bert
from udl.data import text_tasks
from udl import cache
from udl.train import classifiers, recipes, transformers
from udl.text import BPETokenizer
from udl.nn import recurrent
from udl.models import recurrent as recurrent_model
from udl.data import sequences
from udl.nn import graph as graph_nn
from udl.analysis import graph_receptive_field as graph_rf
from udl.data import graphs as graph_data
from udl.models import gnn
from udl.train import graphs as graph_train
import networkx as nx
from udl.models import mixture
from udl.analysis import generative
from udl.models import denoisers, diffusion
from udl.models import vae as vae_model
from udl.train import vae as vae_train
from udl.train import diffusion as diffusion_train
from udl.nn import adversarial
from udl.analysis import adversarial as attacks
from udl.models import gan as gan_model
from udl.train import gan as gan_train
from udl.analysis import image_quality
from udl.models import srgan as srgan_model
from udl.train import srgan as srgan_train
from udl.data import digit_styles
from udl.models import cyclegan as cyclegan_model
from udl.train import cyclegan as cyclegan_train
from udl.analysis import modes as analysis_modes
from udl.models import stylegan as stylegan_model
from udl.train import stylegan as stylegan_train
from udl.analysis import stylegan as stylegan_analysis
from udl.models import conditional_gan as cgan_model
from udl.train import conditional_gan as cgan_train

from udl.data import photos
from udl.analysis import colour as colour_analysis
from udl.models import pix2pix as pix2pix_model
from udl.train import pix2pix as pix2pix_train
from udl.analysis import taxonomy
from udl.models import progressive_gan as progressive_model
from udl.train import progressive_gan as progressive_train
from udl.models.denoisers import MLPDenoiser
from udl.systems import SYSTEMS
from udl.analysis import pruning

X1 = torch.linspace(0, 1, 20)[:, None]
Y1 = torch.sin(6 * X1)
BAD_INT = [0, -1, 2.5, "3", True]
BOOK_MHA = {f"{kind}_{name}": torch.zeros(4, 4) if kind == "omega" else torch.zeros(4)  # D = 4, the book's names
            for name in "vqkc" for kind in ("omega", "beta")}

BERT_SPECIAL = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3, "<mask>": 4, "<cls>": 5, "<sep>": 6}
BERT_MLM = bert.MaskedLanguageModel(bert.BERT(bert.BertConfig.tiny()))
BERT_CLF = bert.BertClassifier(bert.BERT(bert.BertConfig.tiny()), 2)
BERT_TOKENIZER = BPETokenizer.train("ab ab", n_merges=1)

_PROCESS = diffusion.Diffusion.linear(10)  # the bound methods of a 10-step process
_VAE = vae_model.VAE("tiny", generator=0)  # the bound methods of a tiny VAE

_GAN_PAIR = gan_model.GAN(gan_model.MLPGenerator(2, 2, (4,), generator=0),
                          gan_model.MLPDiscriminator(2, (4,), generator=1), 2)  # the bound methods of a small GAN


_STYLE = stylegan_model.StyleGenerator("tiny", generator=0)  # the bound methods of a tiny StyleGAN
_NOISY_STYLE = stylegan_model.StyleGenerator("tiny", generator=0)
for _layer in _NOISY_STYLE.layers:  # noise scales off zero: new noise changes the image (else the share is nan)
    _layer.noise.psi.data.fill_(0.5)


_CGAN = cgan_model.ConditionalGAN.tiny(kind="acgan", generator=0)  # the bound methods of a small ACGAN


_CYCLE = cyclegan_model.CycleGAN("tiny", generator=0)  # the bound methods of a tiny CycleGAN


def _adversarial_arguments() -> dict:
    """Arguments of one step of train_adversarial on two linear maps."""
    G, D = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    return dict(modules={"generator": G, "discriminator": D}, data=(torch.zeros(4, 2),),
                d_loss=lambda b, s: D(b[0]).mean(), g_loss=lambda b, s: D(G(b[0])).mean(), steps=1, batch_size=2,
                device="cpu")


# (callable, arguments that work, {parameter: [values that must be refused]})
CASES = [
    (shallow.ShallowNetwork, dict(d_in=1, d_hidden=3, d_out=1),
     {"d_in": BAD_INT, "d_hidden": BAD_INT, "d_out": BAD_INT, "generator": [1.5]}),
    (shallow.fit_shallow, dict(x=X1, y=Y1, d_hidden=3, steps=5), {"d_hidden": BAD_INT, "steps": [-2, 1.5]}),
    (deep.DeepNetwork, dict(widths=[3, 4, 2]), {"widths": [[3], [3, 0, 2], 5, [3, 2.5, 1]]}),
    (autoencoder.Autoencoder, dict(d_in=8, hidden=(4,), d_code=2),
     {"d_in": BAD_INT, "d_code": BAD_INT, "hidden": [(0,), 4], "generator": [-1, 1.5]}),
    (classifier.BernoulliClassifier, dict(d_in=1, hidden=(4,)),
     {"d_in": BAD_INT, "hidden": [(0,), (-1, 2), 3], "generator": [-1, "a"]}),
    (reinforce.PolicyNetwork, dict(n_states=16, n_actions=4, hidden=(8,)),
     {"n_states": BAD_INT, "n_actions": BAD_INT, "hidden": [(0,), 3], "generator": [-1, 1.5]}),
    (reinforce.reinforce, dict(policy=reinforce.PolicyNetwork(16, 4, hidden=(4,), generator=0), mdp=penguin.penguin_mdp(),
                               iterations=1, episodes=2, max_steps=3),
     {"iterations": BAD_INT, "lr": [0.0, "a"], "baseline": ["critic"], "entropy": [-0.1], "exploring_starts": [1],
      "generator": [-1, 1.5, None]}),
    (reinforce.sample_episodes, dict(mdp=penguin.penguin_mdp(), pi=torch.full((16, 4), 0.25), n_episodes=2,
                                     max_steps=3, generator=0),
     {"n_episodes": BAD_INT, "max_steps": BAD_INT, "generator": [None, "a"], "exploring_starts": [1]}),
    (penguin.PenguinEnv, dict(max_steps=10), {"max_steps": [0, -1, 1.5]}),
    (penguin.penguin_mdp, dict(gamma=0.9, p_intended=0.5), {"gamma": [-0.1, 1.5, "a"], "p_intended": [-0.1, 1.1]}),
    (toy.make_regression_1d, dict(n=15, noise_sd=0.3, seed=0), {"n": BAD_INT, "noise_sd": [-0.1, "a"], "seed": ["x"]}),
    (toy.regression_sampler, dict(n=15, noise_sd=0.3), {"n": BAD_INT, "noise_sd": [-0.1, "a"]}),
    (toy.make_classification_1d, dict(n=20, seed=0), {"n": BAD_INT, "seed": ["x"]}),
    (toy.make_multiclass_1d, dict(n=20, k=3, seed=0), {"n": BAD_INT, "k": [0, 1, 2.5]}),
    (mnist1d.load_mnist1d, dict(num_samples=100), {"num_samples": [0, -5, 2.5], "train_split": [0.0, 1.0, 1.5],
                                                   "seed": [-1, "a"]}),
    (images.load_digits, dict(split="train"), {"split": ["validation", 3], "test_fraction": [0.0, 1.0, -0.5]}),
    (probability.GaussianMixture2D, dict(weights=(1.0,), means=((0.0, 0.0),), covs=(((1.0, 0.0), (0.0, 1.0)),)),
     {"weights": [(-1.0,), (0.5,)], "covs": [(((1.0, 2.0), (2.0, 1.0)),)]}),
    (regions.max_regions, dict(d_in=2, d_hidden=3), {"d_in": BAD_INT, "d_hidden": [-1, 2.5, "3"]}),
    (loop.fit, dict(model=torch.nn.Linear(1, 1), data=(X1, Y1), loss_fn=torch.nn.functional.mse_loss,
                    optimizer=lambda p: torch.optim.SGD(p, lr=0.1), steps=2, batch_size=5),
     {"steps": [0, -1, 1.5], "batch_size": [0, -3], "clip_grad_norm": [-1.0, 0.0], "device": ["tpu"],
      "checkpoint_every": [0]}),
    (runner.run_figure, dict(fig_id="3.1", preset="tiny", cache=False),
     {"fig_id": ["3.1000"], "preset": ["huge"], "seed": [-1, 1.5], "device": ["tpu"]}),
    (gallery.build_gallery, dict(preset="tiny", chapters=[3], out="__never_written__"), {"jobs": [0, -1, 1.5]}),
    (line_search.bracket_minimize, dict(f=abs, a=0.0, d=1.0),
     {"f": [3], "d": [-1.0, 0.0], "tol": [0.0, -1e-3], "max_iter": BAD_INT, "shrink_to_start": [1],
      "first_inner": [(0.5,), (0.66, 0.33), (0.0, 0.5), (0.3, 1.0), ("a", 0.5), 0.33]}),
    (line_search.LineSearchGD, dict(params=[torch.zeros(2, requires_grad=True)], max_step=1.0),
     {"max_step": [0.0, -1.0, "a"], "tol": [0.0, -1e-3], "max_iter": BAD_INT, "shrink_to_start": ["yes"],
      "first_inner": [(0.7, 0.3), (0.33, 0.66, 1.0)]}),
    (sign.SignGD, dict(params=[torch.zeros(2, requires_grad=True)], lr=0.1), {"lr": [0.0, -0.1, "a"], "eps": [-1e-8]}),
    (book.BookMomentum, dict(params=[torch.zeros(2, requires_grad=True)], lr=0.1, beta=0.9),
     {"lr": [0.0, -0.1, "a"], "beta": [-0.1, 1.0, 1.5], "nesterov": [1, "yes"]}),
    (book.BookAdam, dict(params=[torch.zeros(2, requires_grad=True)], lr=0.1),
     {"lr": [0.0, -0.1], "beta": [-0.1, 1.0], "gamma": [-0.1, 1.0], "eps": [-1e-8, "a"]}),
    (book.to_torch_sgd, dict(lr=0.1, beta=0.9), {"lr": [0.0, -0.1], "beta": [-0.1, 1.0], "nesterov": [1]}),
    (book.to_torch_adam, dict(lr=0.1), {"lr": [0.0, -0.1], "beta": [1.0], "gamma": [-0.5, 1.0], "eps": [-1.0]}),
    (testfunctions.adam_loss, dict(phi=torch.zeros(2)), {"phi": [torch.zeros(3), "a"]}),
    (testfunctions.line_search_loss, dict(phi=0.5), {"phi": ["a", None]}),
    (optim_path.descent_path, dict(loss_fn=lambda phi: (phi ** 2).sum(), start=[1.0], steps=2,
                             optimizer=lambda p: torch.optim.SGD(p, lr=0.1)),
     {"steps": [-1, 1.5], "start": [1.0], "loss_fn": [3], "optimizer": [None]}),
    (fixed_joints.FixedJointNetwork, dict(n_hidden=3, lo=0.0, hi=1.0),
     {"n_hidden": BAD_INT, "lo": ["a", float("nan")], "hi": [0.0, -1.0, "a"], "generator": [1.5]}),
    (regularizers.l2_penalty, dict(params=torch.nn.Linear(2, 1), lam=0.1), {"lam": [-0.1, "a"], "params": [3, [1.0]]}),
    (early_stopping.EarlyStopping, dict(val_fn=lambda m: 0.0, every=1),
     {"val_fn": [3], "every": BAD_INT, "patience": BAD_INT, "min_delta": [-0.1, "a"]}),
    (bias_variance.decompose, dict(fit_fn=lambda x, y: (lambda t: 0 * t), sample_fn=lambda rng: (X1[:, 0], X1[:, 0]),
                                   truth=lambda t: 0 * t, x_test=[0.0, 0.5], noise_var=0.1, n_datasets=3),
     {"fit_fn": [3], "x_test": [[], "ab"], "noise_var": [-1.0], "n_datasets": [1, 2.5], "seed": [-1]}),
    (fixed_joints.sgd_batches, dict(n=15, batch_size=5, steps=4), {"n": BAD_INT, "batch_size": [0, 16, 2.5],
                                                                   "steps": BAD_INT, "seed": [-1, "a"]}),
    (fixed_joints.least_squares_fitter, dict(n_hidden=3), {"n_hidden": BAD_INT, "l2": [-1.0, "a"]}),
    (gabor_model.GaborModel, dict(phi0=0.0, phi1=10.0),
     {"phi0": ["a", float("nan")], "phi1": [float("inf"), None], "dtype": [torch.int32, "float"]}),
    (gabor_data.load_gabor_data, dict(), {"dtype": [torch.int64, "float64"]}),
    (gabor_data.make_gabor_data, dict(n=10, seed=0),
     {"n": BAD_INT, "noise_sd": [-0.1], "x_range": [(1.0, 0.0), (0.0,)], "seed": [-1]}),
    (gabor_model.loss_surface, dict(phi0=torch.zeros(3), phi1=torch.ones(4), x=torch.zeros(5), y=torch.zeros(5)),
     {"phi0": [[0.0, 1.0], torch.zeros(3, 1)], "y": [torch.zeros(2)]}),
    (gabor_model.optimize_path, dict(make_optimizer=lambda p: torch.optim.SGD(p, lr=0.1), start=(0.0, 10.0),
                                     x=torch.zeros(5, dtype=torch.float64), y=torch.zeros(5, dtype=torch.float64),
                                     steps=2),
     {"steps": [-1, 1.5], "batch_size": [0, 6, 2.5], "start": [(0.0,), "ab"], "make_optimizer": [3], "seed": [-1]}),
    (dropout.Dropout, dict(p=0.5), {"p": [1.0, -0.1, "a", True], "generator": [1.5]}),
    (dropout.dropout_mask, dict(shape=(2, 3), p=0.5), {"shape": [(2, -1), "ab"], "p": [1.0, -0.5]}),
    (dropout.apply_dropout_mask, dict(h=torch.ones(3), mask=torch.ones(3, dtype=torch.bool), p=0.5),
     {"h": [[1.0]], "mask": [torch.ones(4), [1]], "p": [1.0, -0.1]}),
    (dropout.drop_one_of, dict(n_units=5, candidates=[1, 2, 3]),
     {"n_units": BAD_INT, "candidates": [[5, 1], [1], [1, 1], "ab"], "inverted": [1]}),
    (ensemble.bootstrap_indices, dict(n=5, n_models=2),
     {"n": BAD_INT, "n_models": BAD_INT, "generator": [-1, "a", None]}),
    (ensemble.bootstrap_counts, dict(indices=np.zeros((2, 3), dtype=np.int64), n=3),
     {"indices": [np.full((2, 3), 3), np.zeros(3, dtype=np.int64)], "n": BAD_INT}),
    (ensemble.BaggingEnsemble, dict(fit_fn=lambda x, y: (lambda t: t), n_models=2),
     {"fit_fn": [3, None], "n_models": BAD_INT, "generator": [-1, "a", None], "kind": ["ranking", 3]}),
    (smoothness.slope_changes, dict(x=[0.0, 0.5, 1.0], f=[0.0, 1.0, 0.0]),
     {"x": [[0.0, 1.0], [0.0, 2.0, 1.0], "abc"], "f": [[0.0, 1.0], [0.0, float("nan"), 1.0]]}),
    (regularization.Regularizer, dict(name="dropout", mechanisms=("model combination",),
                                      target="udl.nn.dropout:Dropout", test="tests/nn/test_dropout.py"),
     {"mechanisms": [("sharper",), "model combination", ()], "target": ["udl.nn.dropout.Dropout", 3],
      "test": ["tests/test_dropout.txt", "nn/test_dropout.py"], "name": ["", 3]}),
    (conv.Conv1d, dict(in_channels=2, out_channels=3, kernel_size=3),
     {"in_channels": BAD_INT, "out_channels": BAD_INT, "kernel_size": BAD_INT, "stride": BAD_INT,
      "dilation": BAD_INT, "padding": [-1, "full", 1.5], "bias": [1], "generator": [1.5]}),
    (conv.Conv2d, dict(in_channels=3, out_channels=2, kernel_size=3),
     {"in_channels": BAD_INT, "kernel_size": [0, (3,), (3, 0)], "stride": [0, (1, 2, 3)], "padding": [-1, "full"],
      "dilation": [(1, 0)]}),
    (conv.conv1d, dict(x=torch.zeros(1, 2, 8), weight=torch.zeros(3, 2, 3)),
     {"x": [torch.zeros(2, 8), [1.0]], "weight": [torch.zeros(3, 1, 3), torch.zeros(3, 2, 9)],
      "bias": [torch.zeros(2)], "stride": BAD_INT, "padding": [-1, "full"], "dilation": [0, 4]}),
    (conv.conv2d, dict(x=torch.zeros(1, 3, 6, 6), weight=torch.zeros(2, 3, 3, 3)),
     {"x": [torch.zeros(3, 6, 6)], "weight": [torch.zeros(2, 3, 3)], "stride": [0, (1, 0)],
      "padding": [(-1, 0), "full"], "dilation": [0]}),
    (conv.conv_output_length, dict(n=6, kernel=3), {"n": BAD_INT, "kernel": [0, 7, 2.5], "stride": BAD_INT,
                                                    "padding": [-1, "full"], "dilation": [0, 3]}),
    (conv.dilate_kernel, dict(weight=torch.zeros(1, 1, 3), dilation=2), {"weight": [torch.zeros(3), 3],
                                                                        "dilation": [0, (2, 2)]}),
    (conv.sliding_windows1d, dict(x=torch.zeros(1, 1, 8), kernel_size=3), {"x": [torch.zeros(8)],
                                                                          "kernel_size": [0, 9], "stride": [0]}),
    (conv.sliding_windows2d, dict(x=torch.zeros(1, 1, 8, 8), kernel_size=3),
     {"x": [torch.zeros(1, 8, 8)], "kernel_size": [0, (9, 3)], "dilation": [(0, 1)]}),
    (receptive_field.LayerGeometry, dict(kernel_size=3), {"kernel_size": BAD_INT, "stride": BAD_INT,
                                                          "padding": [-1, 1.5], "dilation": BAD_INT}),
    (receptive_field.layer_geometry, dict(model=torch.nn.Conv1d(1, 1, 3)),
     {"model": ["net", torch.nn.Linear(2, 2)], "axis": [-1, 1, 0.5]}),
    (receptive_field.receptive_field_sizes, dict(layers=[receptive_field.LayerGeometry(3)]), {"layers": [[3], 3]}),
    (receptive_field.receptive_field_interval, dict(layers=[receptive_field.LayerGeometry(3)], index=0),
     {"layers": [[3]], "index": [-1, 1.5]}),
    (receptive_field.gradient_support, dict(model=torch.nn.Conv1d(1, 1, 3), input_shape=(1, 8), unit=(0, 1)),
     {"model": ["net"], "input_shape": [(8,), (1, 0)], "unit": [(0, 6), (0,), "ab"], "n_probes": [0, 1.5],
      "generator": [-1, 1.5, None]}),
    (receptive_field.input_sensitivity, dict(model=torch.nn.Conv1d(1, 1, 3), input_shape=(1, 8), unit=(0, 1)),
     {"unit": [(1, 1)], "n_probes": [0]}),
    (receptive_field.support_interval, dict(mask=torch.ones(3, dtype=torch.bool)),
     {"mask": [torch.zeros(3, dtype=torch.bool), torch.ones(3), [True]]}),
    (sampling.subsample, dict(x=torch.zeros(1, 1, 4, 4)), {"x": [torch.zeros(4, 4), "x"], "factor": BAD_INT}),
    (sampling.max_pool2d, dict(x=torch.zeros(1, 1, 4, 4)),
     {"x": [torch.zeros(1, 4, 4)], "kernel_size": [0, 5, (2, 2, 2)], "stride": [0, -1], "return_indices": [1]}),
    (sampling.mean_pool2d, dict(x=torch.zeros(1, 1, 4, 4)), {"kernel_size": [0, 5], "stride": [0, 1.5]}),
    (sampling.upsample_nearest, dict(x=torch.zeros(1, 1, 2, 2)), {"x": [torch.zeros(2, 2)], "factor": BAD_INT}),
    (sampling.max_unpool2d, dict(x=torch.ones(1, 1, 2, 2), indices=torch.zeros(1, 1, 2, 2, dtype=torch.int64),
                                 output_size=(4, 4)),
     {"indices": [torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 16)], "output_size": [4, (4, 0), (4, 4, 4)]}),
    (sampling.upsample_bilinear, dict(x=torch.zeros(1, 1, 2, 2)),
     {"x": [torch.zeros(1, 1, 2, 2, dtype=torch.int64)], "factor": BAD_INT, "align_corners": ["yes"]}),
    (images.load_photo, dict(name="china", downscale=8), {"name": ["china.jpg", 3, "eagle", "horse"],
                                                          "downscale": BAD_INT + [428]}),
    (mnist1d_nets.ConvNet1DConfig, dict(), {"length": [8, 0, 2.5], "channels": BAD_INT, "kernel_size": BAD_INT,
                                            "stride": BAD_INT, "n_layers": BAD_INT, "n_classes": BAD_INT}),
    (mnist1d_nets.ConvNet1D, dict(), {"config": [3, mnist1d_nets.FullyConnected1DConfig()],
                                      "generator": [-1, "a", 1.5]}),
    (mnist1d_nets.FullyConnected1DConfig, dict(), {"widths": [(40,), (40, 0, 10), 40, (40, 2.5, 10)]}),
    (mnist1d_nets.FullyConnected1D, dict(), {"config": ["big", mnist1d_nets.ConvNet1DConfig()],
                                             "generator": [-1, True]}),
    (classifiers.classification_error, dict(model=torch.nn.Identity(), x=torch.zeros(3, 2), y=torch.zeros(3).long()),
     {"model": ["net"], "x": [[0.0]], "y": [torch.zeros(2).long(), torch.zeros(3, 1).long()], "batch_size": BAD_INT}),
    (classifiers.train_classifier, dict(model=mnist1d_nets.FullyConnected1D(generator=0), x_train=torch.zeros(20, 40),
                                        y_train=torch.zeros(20).long(), x_test=torch.zeros(5, 40),
                                        y_test=torch.zeros(5).long(), steps=2, batch_size=10, device="cpu"),
     {"steps": BAD_INT, "lr": [0.0, -0.1, "a"], "batch_size": [0, 21, 2.5], "eval_every": BAD_INT, "seed": [-1, "a"],
      "x_test": [[0.0]], "y_test": [torch.zeros(4).long()], "on_eval": [3], "device": ["tpu"]}),
    (scenes.Box, dict(x0=1, y0=2, x1=5, y1=6, image_size=56),
     {"x0": [-1.0, float("nan"), "a"], "x1": [0.5, 57.0], "y1": [2.0, float("inf")], "image_size": [0, -5.0, "56"]}),
    (scenes.make_scenes, dict(n=2, size=32, min_size=6, max_size=14),
     {"n": BAD_INT, "size": [8, 2.5], "max_objects": [0, 1.5], "min_size": [2, "a"], "max_size": [5, 40],
      "n_classes": [1, 6], "noise": [-0.1, "a"], "max_overlap": [1.0, -0.1], "masks": [1], "seed": [-1, "a"]}),
    (scenes.shape_mask, dict(kind=1, width=5, height=5), {"kind": [5, -1, 1.5], "width": [2, "a"], "orientation": [-1]}),
    (scenes.tight_box, dict(mask=np.ones((3, 3), dtype=bool)), {"mask": [np.zeros((3, 3), dtype=bool)]}),
    (scenes.check_boxes, dict(boxes=torch.ones(1, 4).cumsum(1), name="boxes", owner="f"),
     {"boxes": [torch.zeros(2, 3), [[0, 0, 1, 1]], torch.tensor([[1.0, 0.0, 0.0, 1.0]])]}),
    (yolo.YOLOConfig, dict(), {"image_size": BAD_INT, "grid": [0, 3, 2.5], "n_boxes": BAD_INT, "n_classes": BAD_INT,
                               "widths": [(), (8, 0), 16, (8,)], "batch_norm": [1], "lambda_coord": [-1.0, "a"],
                               "lambda_noobj": [-0.5]}),
    (yolo.YOLO, dict(config="tiny", generator=0), {"config": ["huge", 3], "generator": [-1, "a"]}),
    (yolo.YOLOLoss, dict(config=yolo.YOLOConfig.preset("tiny")), {"config": ["tiny", None]}),
    (detection.paired_iou, dict(a=torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]]), b=torch.ones(4).cumsum(0)),
     {"a": [torch.zeros(2, 3), [0, 0, 1, 1]], "b": [torch.zeros(()), "box"]}),
    (detection.box_iou, dict(boxes_a=torch.tensor([[0.0, 0.0, 1.0, 1.0]]), boxes_b=torch.tensor([[0.0, 0.0, 2.0, 2.0]])),
     {"boxes_a": [torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0, 1.0]])], "boxes_b": [[[0, 0, 1, 1]]]}),
    (detection.non_max_suppression, dict(boxes=torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]]),
                                    scores=torch.tensor([0.9, 0.8])),
     {"scores": [torch.zeros(3), torch.tensor([0.1, float("nan")])], "iou_threshold": [-0.1, 1.5, "a"],
      "labels": [torch.tensor([0.0, 1.0]), torch.tensor([0, -1])]}),
    (detection.average_precision, dict(precision=[1.0, 0.5], recall=[0.5, 0.5]),
     {"precision": [[1.5, 0.5], [1.0]], "recall": [[0.5, 0.4], [0.5, float("nan")]]}),
    (detection.mean_average_precision, dict(predictions=[(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([0.9]),
                                                     torch.tensor([0]))],
                                       ground_truth=[(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([0]))]),
     {"predictions": [[], "abc", [(1, 2)]], "ground_truth": [[(torch.zeros(1, 4), torch.tensor([0]))]],
      "iou_threshold": [0.0, 1.5]}),
    (detection.precision_recall, dict(predictions=[(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([0.9]),
                                                    torch.tensor([0]))],
                                      ground_truth=[(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([0]))], label=0),
     {"label": [-1, 1.5], "iou_threshold": [0.0]}),
    (detection.matches_per_object, dict(predictions=[], ground_truth=[]), {"predictions": [None, [()]], "iou_threshold": [2.0]}),
    (yolo.encode_targets, dict(boxes=[torch.tensor([[0.0, 0.0, 4.0, 4.0]])], labels=[torch.tensor([0])],
                               config=yolo.YOLOConfig.preset("tiny")),
     {"boxes": [[torch.tensor([[0.0, 0.0, 40.0, 4.0]])], "abc"], "labels": [[torch.tensor([5])], []], "config": [None]}),
    (yolo.decode, dict(output=torch.zeros(1, 4, 4, 13), config=yolo.YOLOConfig.preset("tiny")),
     {"output": [torch.zeros(1, 4, 4, 12), "x"], "config": ["tiny"], "conf_threshold": [-0.1, 1.5]}),
    (yolo.split_output, dict(output=torch.zeros(1, 4, 4, 13), config=yolo.YOLOConfig.preset("tiny")),
     {"output": [torch.zeros(4, 4, 13)]}),
    (cross_validation.kfold_indices, dict(n=10, k=5), {"n": [0, 3, 2.5], "k": [1, 0, 2.5], "shuffle": [1],
                                                      "seed": [0, -1]}),
    (cross_validation.cross_validate, dict(fit_score_fn=lambda *a: 0.0, x=np.arange(10.0), y=np.arange(10.0),
                                           params_grid=[1, 2], k=2),
     {"fit_score_fn": [3], "params_grid": [[], "ab"], "k": [1, 2.5, 11], "y": [np.arange(3.0)]}),
    (double_descent.double_descent, dict(widths=[2], data=(X1.repeat(1, 3), (Y1[:, 0] > 0).long(), X1.repeat(1, 3),
                                                            (Y1[:, 0] > 0).long()), steps=1),
     {"widths": [[0], 5], "label_noise": [1.0, -0.1], "steps": [0, 1.5], "lr": [0.0], "repeats": [0],
      "device": ["tpu"], "progress": ["yes"], "data": [(1, 2)]}),
    (double_descent.randomize_labels, dict(y=np.array([0, 1, 2]), fraction=0.5, n_classes=3),
     {"fraction": [1.5, -0.1], "n_classes": [1, 2.5], "y": [[0, 1], np.array([0, 7])], "seed": [-1]}),
    (double_descent.mlp_parameter_count, dict(d_in=40, width=10, d_out=10), {"width": BAD_INT, "layers": [0]}),
    (double_descent.interpolation_width, dict(n_train=100, d_in=40, d_out=10), {"n_train": [5, 0, 2.5]}),
    (transfer.replace_head, dict(net=deep.DeepNetwork([3, 4, 2]), d_out=2), {"d_out": BAD_INT, "net": [3]}),
    (attention.MultiHeadAttention, dict(d_model=8, n_heads=2),
     {"d_model": BAD_INT, "n_heads": [0, 3, 2.5], "dropout": [1.0, -0.1], "generator": ["x", -1, 1.5]}),
    (attention.book_multi_head_attention, dict(X=torch.zeros(4, 3), **BOOK_MHA, n_heads=2), {"n_heads": [3, 0, 2.5]}),
    (attention.full_mask, dict(n=4), {"n": BAD_INT, "queries": [torch.tensor([4]), torch.zeros(2), [0]]}),
    (attention.convolutional_mask, dict(n=6, kernel_size=3),
     {"n": BAD_INT, "kernel_size": [0, 4, 2.5], "dilation": BAD_INT, "causal": [1, "yes"],
      "queries": [torch.tensor([-1])]}),
    (attention.selected_tokens_mask, dict(n=5, selected=[1, 3]),
     {"n": BAD_INT, "selected": [[5], [-1], [1.5], "ab", 3], "causal": [1]}),
    (attention.global_tokens_mask, dict(n=5, n_global=2), {"n": BAD_INT, "n_global": [-1, 6, 2.5]}),
    (sparse_attn.SparsePattern, dict(mask=torch.ones(3, 4, dtype=torch.bool), chunk=2),
     {"mask": [torch.ones(3, 4), torch.ones(3, dtype=torch.bool), "ab"], "chunk": BAD_INT}),
    (sparse_attn.sparse_attention, dict(q=torch.zeros(4, 2), k=torch.zeros(4, 2), v=torch.zeros(4, 3),
                                        pattern=sparse_attn.SparsePattern(torch.eye(4, dtype=torch.bool))),
     {"pattern": [None, sparse_attn.SparsePattern(torch.eye(3, dtype=torch.bool))],
      "k": [torch.zeros(4, 3), torch.zeros(4, 2, dtype=torch.float64)]}),
    (transformer.TransformerLayer, dict(d_model=8, n_heads=2),
     {"d_model": BAD_INT, "n_heads": [3, 0], "d_mlp": BAD_INT, "dropout": [1.5], "activation": ["tanh"],
      "norm_first": [1], "cross_attention": ["yes"], "generator": ["x"]}),
    (transformer.TokenEmbedding, dict(vocab_size=5, d_model=3),
     {"vocab_size": BAD_INT, "d_model": BAD_INT, "std": [0.0], "generator": ["x"]}),
    (transformer.LearnedPositions, dict(context=5, d_model=3),
     {"context": BAD_INT, "d_model": BAD_INT, "generator": [2.5]}),
    (transformer.sinusoidal_positions, dict(n=5, d_model=4), {"n": BAD_INT, "d_model": BAD_INT}),
    (compare.max_difference, dict(a=np.zeros(3), b=np.zeros(3)), {"b": [np.zeros(2), np.zeros((1, 3))]}),
    (residual.Residual, dict(f=torch.nn.ReLU()), {"f": [3], "scale": [0.0, -1.0], "skip": [1]}),
    (residual.ResidualBlock, dict(channels=4), {"channels": BAD_INT, "kernel": [2, 0], "dims": [4, 0], "norm": [1]}),
    (residual.BottleneckBlock, dict(in_channels=8, bottleneck_channels=2),
     {"in_channels": BAD_INT, "bottleneck_channels": BAD_INT, "out_channels": BAD_INT, "stride": BAD_INT,
      "dims": [5], "norm": ["no"], "skip": [0]}),
    (normalization.BatchNorm, dict(channels=3), {"channels": BAD_INT, "eps": [0.0, -1e-5, "a"],
                                                 "momentum": [-0.1, 1.5, "a"], "affine": [1, "yes"]}),
    (normalization.GhostBatchNorm, dict(channels=3, ghost_batch_size=2),
     {"channels": BAD_INT, "ghost_batch_size": BAD_INT, "eps": [0.0], "momentum": [2.0]}),
    (normalization.LayerNorm, dict(channels=3), {"channels": BAD_INT, "eps": [0.0, float("nan")], "affine": [0]}),
    (normalization.GroupNorm, dict(groups=2, channels=4), {"groups": BAD_INT + [5], "channels": BAD_INT + [5],
                                                           "eps": [-1.0], "affine": [None]}),
    (normalization.InstanceNorm, dict(channels=3), {"channels": BAD_INT, "eps": [0.0], "affine": ["no"]}),
    (normalization.shared_statistics, dict(module=normalization.BatchNorm(3), shape=(2, 3, 4), index=(0, 1, 2)),
     {"module": ["bn", None], "shape": [(2,), (2, 0, 4), "abc", (2, 3.0, 4)], "index": [(0, 1), (0, 3, 0), (0, -1, 0), 3],
      "n_probes": BAD_INT, "generator": [-1, 1.5, None]}),
    (ngram.UnigramModel, dict(vocab_size=3), {"vocab_size": BAD_INT, "k": [0.0, -1.0]}),
    (ngram.BigramModel, dict(vocab_size=3), {"vocab_size": BAD_INT, "k": [0.0, "a"]}),
    (residual.ResidualBlock, dict(channels=4, out_channels=8, stride=2),
     {"out_channels": BAD_INT, "stride": BAD_INT, "scale": [0.0, -1.0, "a"], "skip": ["yes"], "generator": [1.5]}),
    (residual.BottleneckBlock, dict(in_channels=8, bottleneck_channels=2, generator=torch.Generator()),
     {"generator": [1.5, "seed"]}),
    (residual.variance_network, dict(kind="batchnorm", width=4, depth=2),
     {"kind": ["deep", 3], "width": BAD_INT, "depth": BAD_INT, "generator": [1.5]}),
    (residual.mean_squares, dict(blocks=torch.nn.Sequential(torch.nn.Identity()), x=torch.zeros(2, 3)),
     {"blocks": [torch.nn.Identity(), 3], "x": [torch.zeros(3), torch.zeros(2, 3, dtype=torch.int64), [1.0]]}),
    (conv.conv_layer, dict(dims=2, c_in=1, c_out=2, kernel=3), {"dims": [0, 4, "2"]}),
    (normalization.batch_norm_layer, dict(dims=1, channels=3), {"dims": [0, 4, "2"]}),
    (nn_init.he_init, dict(module=torch.nn.Linear(2, 2)), {"generator": [1.5, "seed"]}),
    (nn_init.init_parameters, dict(module=torch.nn.Linear(2, 2)),
     {"module": [torch.nn.PReLU()], "generator": [1.5, "seed"]}),
    (resnet.ResNetConfig, dict(), {"block": ["wide", 3], "stages": [(), (3, 0), 3, (3, 2.5)], "widths": [(64,), (64, 0, 1, 2)],
                                   "expansion": BAD_INT, "stem_channels": BAD_INT, "in_channels": BAD_INT,
                                   "n_classes": BAD_INT}),
    (resnet.ResNet, dict(config="tiny", generator=0),
     {"config": ["resnet1", 3, None], "generator": [-1, "a", 1.5]}),
    (densenet.DenseLayer, dict(in_channels=3, growth_rate=4),
     {"in_channels": BAD_INT, "growth_rate": BAD_INT, "dims": [0, 4], "generator": [1.5]}),
    (densenet.DenseBlock, dict(in_channels=3, n_layers=2, growth_rate=4),
     {"in_channels": BAD_INT, "n_layers": BAD_INT, "growth_rate": BAD_INT, "dims": [5], "generator": ["g"]}),
    (densenet.Transition, dict(in_channels=8, out_channels=4), {"in_channels": BAD_INT, "out_channels": BAD_INT,
                                                                "dims": [0]}),
    (densenet.DenseNetConfig, dict(), {"in_channels": BAD_INT, "n_classes": BAD_INT, "growth_rate": BAD_INT,
                                       "block_layers": [(), (2, 0), 3], "stem_channels": BAD_INT,
                                       "compression": [0.0, 1.5, "a"]}),
    (densenet.DenseNet, dict(config="tiny", generator=0), {"config": ["huge", 3], "generator": [-1, "a"]}),
    (bpe.BPETokenizer, dict(alphabet=["a", "b"], merges=[("a", "b")]),
     {"alphabet": [["ab"], ["a", "a"], ["\u2581"]], "merges": [[("a", "c")], [("a",)]], "end_of_word": [" ", "ab", 3],
      "special_tokens": ["<pad>", ("<pad>", "<pad>"), ("x",)], "merge_counts": [[1, 2]]}),
    (bpe.BPETokenizer.train, dict(text="a b a b", n_merges=2),
     {"text": [b"ab", 3], "n_merges": [-1, 2.5, "3", True], "vocab_size": [400, 0], "min_count": [0, 1.5],
      "end_of_word": [" ", ""], "special_tokens": [("<pad>", "<pad>")], "progress": ["yes"]}),
    (bpe.compare_merges, dict(text="ab ab", tokenizer=bpe.BPETokenizer.train("ab ab", 1), other=[("a", "b")]),
     {"text": [3], "tokenizer": [3, bpe.BPETokenizer(["a", "b"], [("a", "b")])]}),
    (text_data.python_docs_tokenizer, dict(vocab_size=400), {"vocab_size": BAD_INT}),
    (text_data.token_ids, dict(split="validation", tokenizer=bpe.BPETokenizer(["a"], [])),
     {"split": ["dev", 3], "tokenizer": ["x", None]}),
    (text_data.sentences, dict(split="test"), {"split": ["dev", None]}),
    (gpt.GPTConfig, dict(vocab_size=11, context=8, n_layers=1, d_model=8, n_heads=2),
     {"vocab_size": BAD_INT, "context": BAD_INT, "n_layers": BAD_INT, "d_model": BAD_INT, "n_heads": [0, 3, 2.5],
      "d_mlp": [0, 2.5], "dropout": [1.0, -0.1], "activation": ["tanh"], "norm_first": [1], "bias": ["yes"],
      "tie_embeddings": [0]}),
    (gpt.GPT, dict(config=gpt.GPTConfig.tiny()), {"config": [None, dict(vocab_size=11)], "generator": [1.5]}),
    (gpt.parameter_count, dict(config=gpt.GPTConfig.tiny()), {"config": ["gpt3"]}),
    (gpt.meta_model, dict(config=gpt.GPTConfig.gpt3()), {"config": [None, "gpt3"]}),
    (gpt.sequence_log_prob, dict(model=gpt.GPT(gpt.GPTConfig.tiny()), tokens=torch.tensor([1, 2, 3])),
     {"model": [torch.nn.Linear(2, 2)], "tokens": [[1, 2], torch.tensor([1]), torch.zeros(18, dtype=torch.long)]}),
    (gpt.language_model_windows, dict(tokens=torch.arange(10), context=4),
     {"context": BAD_INT, "stride": BAD_INT, "tokens": [torch.arange(4), [1, 2, 3]]}),
    (transformers.train_gpt, dict(model=gpt.GPT(gpt.GPTConfig.tiny()), tokens=torch.arange(40) % 11, steps=1,
                                  batch_size=2, device="cpu", progress=False),
     {"model": ["gpt"], "steps": BAD_INT, "lr": [0.0, -1.0], "weight_decay": [-0.1], "warmup": [-1, 1.5]}),
    (decoding.generate, dict(model=gpt.GPT(gpt.GPTConfig.tiny()), prompt=torch.tensor([1, 2]), max_new_tokens=2),
     {"model": [None], "prompt": [[1, 2], torch.tensor([]).long()], "max_new_tokens": [-1, 1.5],
      "strategy": ["random"], "k": BAD_INT, "p": [0.0, 1.5], "temperature": [0.0, -1.0], "beam_width": BAD_INT,
      "generator": [0.5], "eos_id": [-1, 1.5]}),
    (decoding.beam_search, dict(model=gpt.GPT(gpt.GPTConfig.tiny()), prompt=torch.tensor([1, 2]), max_new_tokens=2),
     {"prompt": [torch.tensor([[1, 2]])], "beam_width": BAD_INT, "eos_id": [-1]}),
    (decoding.top_k_filter, dict(logits=torch.zeros(4), k=2), {"k": BAD_INT}),
    (decoding.nucleus_filter, dict(logits=torch.zeros(4), p=0.5), {"p": [0.0, 1.5, "a"]}),
    (unet.UNet, dict(in_channels=1, n_classes=2, levels=2, width=2, generator=0),
     {"in_channels": BAD_INT, "n_classes": BAD_INT, "dims": [1, 4, "2"], "levels": BAD_INT, "width": BAD_INT,
      "padding": ["full", 1], "batch_norm": [1, "yes"], "generator": [-1, "a"]}),
    (unet.unet_geometry, dict(input_size=572), {"input_size": [570, 0, 2.5, 8], "levels": BAD_INT, "padding": ["full"]}),
    (unet.unet_input_size, dict(output_size=388), {"output_size": [390, 0, "388"], "levels": [0], "padding": ["none"]}),
    (unet.unet_tile_sizes, dict(size=380), {"size": BAD_INT, "levels": [0, 1.5], "padding": [3]}),
    (unet.unet_parameter_count, dict(), {"in_channels": BAD_INT, "n_classes": [0], "dims": [1], "levels": [0],
                                         "width": [0], "batch_norm": [1]}),
    (unet.center_crop, dict(x=torch.zeros(1, 1, 4, 4), size=(2, 2)),
     {"x": [torch.zeros(4), "x"], "size": [(5, 2), (2,), 2, (0, 2)]}),
    (unet.reflect_pad, dict(x=torch.zeros(1, 1, 4), pad=[(1, 1)]),
     {"x": [torch.zeros(4)], "pad": [[(1,)], [(-1, 0)], (1, 1), [(1, 1), (1, 1)]]}),
    (unet.split_tiles, dict(x=torch.zeros(1, 1, 4, 4), tile=2), {"x": [torch.zeros(4, 4)], "tile": [0, 3, 2.5]}),
    (unet.trace_unet, dict(model=unet.UNet(levels=2, width=2), x=torch.zeros(1, 1, 20, 20)),
     {"model": [torch.nn.Conv2d(1, 1, 3), "net"], "x": [torch.zeros(1, 1, 19, 20), torch.zeros(1, 2, 20, 20)]}),
    (cells.make_cells, dict(n=2, size=32, min_radius=4.0, max_radius=7.0),
     {"n": BAD_INT, "size": [8, 2.5], "min_cells": [-1], "max_cells": [0], "min_radius": [1.0, "a"],
      "max_radius": [3.0, 20.0], "touching": [1.5, -0.1], "border": [0.5, 5.0], "noise": [-0.1],
      "illumination": [1.5], "seed": [-1, "a"]}),
    (cells.make_tubes, dict(n=1, size=12, max_radius=2.0, blob_radius=(1.0, 2.0)),
     {"n": BAD_INT, "size": [4, 2.5], "min_tubes": [0], "max_tubes": [0], "min_radius": [0.1],
      "max_radius": [1.0, 4.0], "n_blobs": [-1, 1.5], "blob_radius": [(2.0, 1.0), 3, (0.1, 1.0), (1.0, 4.0)],
      "noise": [-0.1], "blur": [-1.0], "seed": [-1]}),
    (hourglass.Hourglass, dict(channels=8, depth=2),
     {"channels": [0, 1, 2.5, "8"], "depth": BAD_INT, "bottleneck_channels": [0, 1.5], "n_blocks": BAD_INT,
      "generator": [1.5]}),
    (hourglass.StackedHourglass, dict(n_joints=3, n_stacks=1, channels=8, depth=1, generator=0),
     {"n_joints": BAD_INT, "n_stacks": BAD_INT, "channels": [4, 10, 2.5], "depth": BAD_INT, "stride": [3, 8, "4"],
      "in_channels": BAD_INT, "generator": [-1, "a"]}),
    (hourglass.gaussian_heatmaps, dict(joints=torch.zeros(1, 2, 2), size=4),
     {"joints": [torch.zeros(1, 2, 3), [[0.0, 0.0]], torch.zeros(2), torch.zeros(1, 2, 2, dtype=torch.long)],
      "size": [0, (4,), 2.5], "sigma": [0.0, -1.0, "a"], "stride": [0, 1.5]}),
    (hourglass.heatmap_peaks, dict(heatmaps=torch.zeros(1, 2, 4, 4)),
     {"heatmaps": [torch.zeros(4), np.zeros((2, 2))], "stride": [0, 2.5], "refine": ["cubic", 1]}),
    (hourglass.pck, dict(pred=torch.zeros(1, 2, 2), truth=torch.zeros(1, 2, 2), threshold=0.1, reference_length=1.0),
     {"pred": [torch.zeros(1, 3, 2), "x"], "threshold": [0.0, -0.1], "reference_length": [0.0, torch.zeros(1), torch.ones(2)],
      "visible": [torch.ones(1, 2), torch.ones(1, 3, dtype=torch.bool)]}),
    (hourglass.joint_box_size, dict(joints=torch.zeros(1, 2, 2)), {"joints": [torch.zeros(2, 2), [[0.0]]]}),
    (hourglass.stacked_heatmap_loss, dict(heatmaps=[torch.zeros(1, 1, 2, 2)], target=torch.zeros(1, 1, 2, 2)),
     {"heatmaps": [[], [torch.zeros(1, 1, 3, 3)]]}),
    (hourglass.trace_blocks, dict(hourglass=hourglass.Hourglass(8, depth=1), x=torch.zeros(1, 8, 4, 4)),
     {"hourglass": [torch.nn.Identity()]}),
    (poses.make_poses, dict(n=2, size=32),
     {"n": BAD_INT, "size": [16, 2.5], "min_scale": [0.0, 0.6, "a"], "max_scale": [0.1, 0.9], "max_rotation": [-1.0, 200.0],
      "margin": [-1.0, 20.0], "distractors": [-1, 1.5], "occluders": [-1], "noise": [-0.1], "masks": [1],
      "seed": [-1, "a"]}),
    (seq2seq.Seq2SeqConfig, dict(src_vocab_size=13, tgt_vocab_size=11, src_context=8, tgt_context=10),
     {"src_vocab_size": BAD_INT, "tgt_context": BAD_INT, "n_heads": [3, 0], "d_mlp": [0, 2.5], "dropout": [1.0, -0.1],
      "activation": ["tanh"], "norm_first": ["yes"], "eos_id": [1, 11, -1], "pad_id": [13]}),
    (seq2seq.EncoderDecoder, dict(config=seq2seq.Seq2SeqConfig.tiny()), {"config": ["tiny", None], "generator": [1.5]}),
    (seq2seq.greedy_decode, dict(model=seq2seq.EncoderDecoder(seq2seq.Seq2SeqConfig.tiny()), src=torch.ones(2, 3).long()),
     {"model": [torch.nn.Linear(1, 1)], "src": [torch.ones(2, 3), torch.ones(2, 9).long()], "max_len": [0, 11, 1.5]}),
    (seq2seq.beam_search, dict(model=seq2seq.EncoderDecoder(seq2seq.Seq2SeqConfig.tiny()), src=torch.ones(2, 3).long()),
     {"beam_width": [0, 2.5], "max_len": [0, 11], "src": [torch.full((1, 3), 13)]}),
    (seq2seq.evaluate_translation, dict(model=seq2seq.EncoderDecoder(seq2seq.Seq2SeqConfig.tiny()),
                                        src=torch.ones(2, 3).long(), tgt=torch.ones(2, 4).long()),
     {"strategy": ["sample"], "batch_size": [0, 1.5], "tgt": [torch.ones(3, 4).long()]}),
    (transformers.train_translator,
     dict(config=seq2seq.Seq2SeqConfig.numbers(2, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_mlp=8),
          steps=2, batch_size=4, n_train=20, n_validation=2, n_test=2, max_digits=2, device="cpu"),
     {"config": [seq2seq.Seq2SeqConfig.tiny(), "x"], "steps": [0, 1.5], "lr": [0.0, -1.0], "max_digits": [0, 10],
      "seed": [-1], "device": ["tpu"]}),
    (numbers_data.number_to_words, dict(n=5), {"n": [-1, 10 ** 9, 2.5, "3"]}),
    (numbers_data.make_number_splits, dict(n_train=20, n_validation=4, n_test=4, max_digits=2),
     {"n_train": BAD_INT, "n_test": [0, -1], "max_digits": [0, 10], "seed": [-1, "a"], "commas": ["yes"]}),
    (numbers_data.encode_source, dict(numbers=[4071, 5]), {"numbers": [[-1], [10 ** 9], 5, [2.5]], "length": [2, 0]}),
    (loss_landscape.random_direction, dict(model=torch.nn.Linear(2, 1), generator=torch.Generator().manual_seed(0)),
     {"model": ["net", torch.nn.ReLU()], "generator": [1.5], "normalization": ["filters", 2],
      "ignore_bias_bn": [1, "yes"]}),
    (loss_landscape.loss_surface, dict(model=torch.nn.Linear(2, 1), loss_fn=torch.nn.MSELoss(),
                                       data=(torch.ones(4, 2), torch.zeros(4, 1)),
                                       directions=({"weight": torch.ones(1, 2), "bias": torch.zeros(1)},) * 2,
                                       alphas=[-1.0, 0.0, 1.0], betas=[0.0, 1.0]),
     {"alphas": [[], [float("nan")], "ab"], "betas": [[[0.0]]], "batch_size": [0, 2.5], "batch_norm": ["train"],
      "loss_fn": [3], "data": [(torch.ones(4, 2),), "x", (torch.ones(4, 2), torch.zeros(3, 1))],
      "directions": ["ab", ({"weight": torch.ones(1, 2)},) * 2, ({"weight": torch.ones(2, 2), "bias": torch.zeros(1)},) * 2]}),
    (loss_landscape.loss_slice, dict(model=torch.nn.Linear(2, 1), loss_fn=torch.nn.MSELoss(),
                                     data=(torch.ones(4, 2), torch.zeros(4, 1)),
                                     direction={"weight": torch.ones(1, 2), "bias": torch.zeros(1)}, alphas=[0.0, 1.0]),
     {"direction": ["x", {"weight": torch.zeros(3)}], "alphas": [[[1.0]]], "batch_norm": ["x"]}),
    (loss_landscape.model_loss, dict(model=torch.nn.Linear(2, 1), loss_fn=torch.nn.MSELoss(),
                                     data=(torch.ones(4, 2), torch.zeros(4, 1))),
     {"batch_norm": ["x"], "data": ["x"], "batch_size": [0], "model": [None]}),
    (loss_landscape.surface_roughness, dict(surface=np.zeros((3, 3))), {"surface": [np.zeros(5), "x", np.zeros((2, 2))]}),
    (loss_landscape.nonconvexity, dict(surface=np.zeros((3, 3))), {"tolerance": [1.0, -0.1, "a"], "surface": [[1.0]]}),
    (loss_landscape.local_minima, dict(surface=np.zeros((3, 3))), {"surface": [[1, 2, 3], None]}),
    # udl.models.vit
    (vit.ViTConfig, dict(image_size=8, patch_size=2, in_channels=1, n_classes=10, n_layers=1, d_model=8, n_heads=2),
     {"image_size": BAD_INT, "patch_size": BAD_INT + [3], "in_channels": BAD_INT, "n_classes": [1, 2.5],
      "n_layers": BAD_INT, "d_model": BAD_INT, "n_heads": [0, 3], "d_mlp": [0, 2.5], "dropout": [1.0, -0.1],
      "activation": ["tanh"], "norm_first": [1], "eps": [0.0], "init_std": [0.0, "a"]}),
    (vit.ViT, dict(config=vit.ViTConfig.tiny()), {"config": ["vit_base", None], "generator": [1.5, -1]}),
    (vit.PatchEmbedding, dict(patch_size=2, in_channels=1, d_model=4),
     {"patch_size": BAD_INT, "in_channels": BAD_INT, "d_model": BAD_INT, "generator": ["a"]}),
    (vit.image_patches, dict(images=torch.zeros(2, 1, 4, 4), patch_size=2),
     {"images": [torch.zeros(4, 4), [[1.0]]], "patch_size": BAD_INT + [3]}),
    (vit.parameter_count, dict(config=vit.ViTConfig.tiny()), {"config": ["vit_base", None]}),
    # udl.models.swin
    (swin.SwinConfig, dict(image_size=8, in_channels=1, patch_size=1, d_model=8, depths=(2, 2), n_heads=(1, 2),
                           window=4, n_classes=10),
     {"image_size": BAD_INT, "in_channels": BAD_INT, "patch_size": BAD_INT + [3], "d_model": BAD_INT,
      "depths": [(), (2, 0), 2], "n_heads": [(1,), (3, 2)], "window": [0, 3], "mlp_ratio": BAD_INT,
      "n_classes": BAD_INT, "dropout": [1.0, -0.1], "activation": ["tanh"], "eps": [0.0]}),
    (swin.Swin, dict(config=swin.SwinConfig.tiny()), {"config": ["tiny", None], "generator": [1.5, -1]}),
    (swin.SwinLayer, dict(d_model=8, n_heads=2, window=2),
     {"d_model": BAD_INT, "n_heads": [0, 3], "window": BAD_INT, "shift": [2, -1, 1.5], "mlp_ratio": [0],
      "dropout": [1.0], "activation": ["tanh"], "eps": [0.0], "generator": ["a"]}),
    (swin.WindowAttention, dict(d_model=8, n_heads=2, window=2),
     {"d_model": [0], "n_heads": [0, 3], "window": BAD_INT, "dropout": [1.0], "generator": [1.5]}),
    (swin.PatchMerging, dict(d_model=4), {"d_model": BAD_INT, "eps": [0.0, "a"], "generator": [1.5]}),
    (swin.PatchPartition, dict(patch_size=2, in_channels=1, d_model=4),
     {"patch_size": BAD_INT, "in_channels": BAD_INT, "d_model": BAD_INT, "eps": [0.0], "generator": ["a"]}),
    (swin.window_partition, dict(x=torch.zeros(1, 4, 4, 2), window=2),
     {"x": [torch.zeros(4, 4), torch.zeros(1, 3, 4, 2), [1.0]], "window": BAD_INT}),
    (swin.window_reverse, dict(windows=torch.zeros(1, 4, 4, 2), height=4, width=4),
     {"windows": [torch.zeros(1, 3, 4, 2), torch.zeros(4, 2)], "height": BAD_INT, "width": BAD_INT}),
    (swin.relative_offsets, dict(window=3), {"window": BAD_INT}),
    (swin.shift_mask, dict(height=4, width=4, window=2, shift=1),
     {"height": BAD_INT, "width": BAD_INT, "window": BAD_INT + [3], "shift": [-1, 2, 1.5]}),
    (swin.window_ids, dict(height=4, width=6, window=2, shift=1),
     {"height": BAD_INT, "width": BAD_INT, "window": BAD_INT, "shift": [-1, 2, 1.5]}),
    # udl.models.bert and udl.data.text_tasks
    (bert.BertConfig, dict(vocab_size=13, context=8, n_layers=1, d_model=8, n_heads=2),
     {"vocab_size": BAD_INT, "context": BAD_INT, "n_layers": BAD_INT, "d_model": BAD_INT, "n_heads": BAD_INT + [3],
      "d_mlp": [0, -1, 2.5], "dropout": [1.0, -0.1], "activation": ["tanh"], "norm_first": [1],
      "n_segments": [-1, 1.5], "pad_id": [13, -1], "eps": [0.0], "init_std": [0.0, "a"]}),
    (bert.BERT, dict(config=bert.BertConfig.tiny()), {"config": ["base", None], "generator": [1.5]}),
    (bert.MaskedLanguageModel, dict(encoder=bert.BERT(bert.BertConfig.tiny())),
     {"encoder": [torch.nn.Linear(2, 2), None], "generator": [1.5]}),
    (bert.BertClassifier, dict(encoder=bert.BERT(bert.BertConfig.tiny()), n_classes=2),
     {"encoder": [None], "n_classes": [1, 0, 2.5, True], "freeze": [1, "yes"], "generator": ["g"]}),
    (bert.parameter_count, dict(config=bert.BertConfig.tiny()), {"config": ["large", None]}),
    (bert.parameter_groups, dict(config=bert.BertConfig.tiny()), {"config": ["large"]}),
    (bert.meta_model, dict(config=bert.BertConfig.tiny()), {"config": [None]}),
    (bert.mask_tokens, dict(tokens=torch.arange(7, 13), mask_id=4, vocab_size=13),
     {"tokens": [[7, 8], torch.zeros(3)], "mask_id": [13, -1], "vocab_size": BAD_INT, "prob": [-0.1, 1.5],
      "p_mask": [1.2], "p_random": [-0.5, 0.5], "special_ids": [3], "generator": [1.5]}),
    (bert.mlm_windows, dict(tokens=torch.arange(7, 40), context=8, special_ids=BERT_SPECIAL, batch_size=2,
                            vocab_size=40),
     {"tokens": [torch.arange(7, 10), [7, 8]], "context": [1, 0], "special_ids": [{"<cls>": 5}],
      "batch_size": BAD_INT, "vocab_size": BAD_INT, "prob": [1.5], "generator": [True]}),
    (bert.measure_masking_rule, dict(batches=[(torch.tensor([[5, 4]]), torch.tensor([[bert.IGNORE, 9]]))],
                                     special_ids=BERT_SPECIAL),
     {"special_ids": [{"<cls>": 5}, [4, 5]], "batches": [[(torch.zeros(1, 2), torch.zeros(1, 3))], [(1, 2)]]}),
    (transformers.pretrain_mlm, dict(model=BERT_MLM, tokens=torch.arange(40) % 6 + 7, special_ids=BERT_SPECIAL,
                                     steps=1, batch_size=2, context=8, device="cpu", progress=False),
     {"model": [None, BERT_MLM.encoder], "steps": [0, 1.5], "context": [1, 17], "lr": [0.0, -1.0], "warmup": [-1],
      "seed": [-1], "special_ids": [{"<cls>": 5}, [4, 5]], "callback": [3]}),
    (bert.masked_token_cross_entropy, dict(model=BERT_MLM, tokens=torch.arange(40) % 6 + 7,
                                           special_ids=BERT_SPECIAL, context=8),
     {"model": [None], "tokens": [[1, 2], torch.arange(3) + 7], "context": [1], "batch_size": [0]}),
    (bert.encode_texts, dict(texts=["ab ab"], tokenizer=BERT_TOKENIZER, context=4),
     {"texts": ["ab", [1]], "tokenizer": [None, "bpe"], "context": [1, 0, 2.5]}),
    (transformers.finetune_classifier, dict(classifier=BERT_CLF, tokens=torch.full((4, 5), 7),
                                            labels=torch.tensor([0, 1, 0, 1]), steps=1, batch_size=2, device="cpu"),
     {"classifier": [None, BERT_MLM], "steps": [0, 1.5], "batch_size": [0], "lr": [0.0], "weight_decay": [-1.0],
      "warmup": [-1], "seed": [-1]}),
    (bert.predict, dict(classifier=BERT_CLF, tokens=torch.full((4, 5), 7)), {"classifier": [None, BERT_MLM]}),
    (transformers.pretrained_bert, dict(config=bert.BertConfig.tiny(vocab_size=2000), steps=1, batch_size=2,
                                        device="cpu"),
     {"config": [None], "steps": [0], "batch_size": [0], "lr": [0.0], "seed": [-1], "disk_cache": [1],
      "device": ["tpu"]}),
    (transformers.pretrained_gpt, dict(config=gpt.GPTConfig(vocab_size=2000, context=8, n_layers=1, d_model=8,
                                                            n_heads=2), steps=1, batch_size=2, device="cpu"),
     {"config": [None, bert.BertConfig.tiny()], "steps": [0], "batch_size": [0], "lr": [0.0], "warmup": [-1],
      "eval_every": [-1, 1.5], "seed": [-1], "device": ["tpu"]}),
    # udl.train.recipes and udl.cache
    (recipes.decay_groups, dict(model_or_params=torch.nn.Linear(2, 2), weight_decay=0.1),
     {"model_or_params": [3, None, "ab"], "weight_decay": [-0.1, "a"]}),
    (recipes.adamw, dict(model_or_params=torch.nn.Linear(2, 2), lr=1e-3, weight_decay=0.1),
     {"model_or_params": [3], "weight_decay": [-1.0]}),
    (recipes.warmup_cosine, dict(steps=10, warmup=2, floor=0.1),
     {"steps": BAD_INT, "warmup": [-1, 1.5], "floor": [-0.1, 1.5, "a"]}),
    (recipes.warmup_linear, dict(steps=10, warmup=2), {"steps": BAD_INT, "warmup": [-1, 1.5], "floor": [2.0]}),
    (cache.trained, dict(name="row", settings={}, build=lambda: torch.nn.Linear(1, 1), train=lambda net: None,
                         device="cpu", disk=False),
     {"name": ["A B", 3, ""], "settings": [[1]], "build": [3], "train": [None], "device": ["tpu"], "disk": [1],
      "sources": [[3]]}),
    (text_tasks.word_order, dict(split="test", n_sentences=2),
     {"split": ["dev", 3], "n_sentences": [0, 10**6], "seed": [-1], "min_words": [3], "max_words": [2],
      "max_tokens": [5]}),
    (text_tasks.shuffle_inner_words, dict(sentence="a b c d", rng=np.random.default_rng(0)),
     {"sentence": [3, "a b b c"], "rng": [0]}),
    (recurrent.RNNCell, dict(d_in=3, d_hidden=4),
     {"d_in": BAD_INT, "d_hidden": BAD_INT, "nonlinearity": ["sigmoid"], "bias": [1], "generator": ["x", -1]}),
    (recurrent.LSTMCell, dict(d_in=3, d_hidden=4),
     {"d_in": BAD_INT, "d_hidden": BAD_INT, "bias": ["no"], "forget_bias": ["1", float("inf")], "generator": [1.5]}),
    (recurrent.GRUCell, dict(d_in=3, d_hidden=4), {"d_in": BAD_INT, "d_hidden": BAD_INT, "generator": [2.5]}),
    (recurrent.RNN, dict(d_in=3, d_hidden=4, n_layers=2),
     {"d_in": BAD_INT, "d_hidden": BAD_INT, "n_layers": BAD_INT, "nonlinearity": ["gelu"], "batch_first": [0],
      "bias": [None], "generator": ["x"]}),
    (recurrent.LSTM, dict(d_in=3, d_hidden=4, n_layers=2),
     {"n_layers": BAD_INT, "batch_first": ["yes"], "forget_bias": [float("nan")], "generator": [-1]}),
    (recurrent.GRU, dict(d_in=3, d_hidden=4), {"d_hidden": BAD_INT, "n_layers": BAD_INT, "batch_first": [1]}),
    (recurrent.LSTM.from_torch, dict(module=torch.nn.LSTM(2, 3)), {"module": [torch.nn.GRU(2, 3), 3]}),
    (recurrent.GRUCell.from_torch, dict(cell=torch.nn.GRUCell(2, 3)), {"cell": [torch.nn.GRU(2, 3)]}),
    (recurrent_model.RecurrentNetwork, dict(vocab_size=5, d_embed=2, d_hidden=3, d_out=2),
     {"vocab_size": BAD_INT, "d_embed": BAD_INT, "d_hidden": BAD_INT, "d_out": BAD_INT, "kind": ["transformer"],
      "n_layers": BAD_INT, "forget_bias": ["a"], "generator": [1.5]}),
    (recurrent_model.step_gradient_norms, dict(model=recurrent_model.RecurrentNetwork(5, 2, 3, 2, generator=0),
                                               tokens=torch.zeros(2, 4, dtype=torch.long),
                                               labels=torch.zeros(2, dtype=torch.long)),
     {"model": [torch.nn.LSTM(2, 3)], "tokens": [torch.zeros(2, 4), torch.zeros(8, dtype=torch.long)],
      "labels": [torch.zeros(3, dtype=torch.long)]}),
    (sequences.first_token_task, dict(n=4, length=3),
     {"n": BAD_INT, "length": BAD_INT, "n_classes": [1, 2.5], "vocab_size": [2], "seed": [-1, "a"]}),
    (graph_nn.GraphConv, dict(d_in=3, d_out=4),
     {"d_in": BAD_INT, "d_out": BAD_INT, "aggregation": ["attention", None], "combine": ["concat"],
      "activation": ["tanh"], "bias": [1], "generator": [2.5, -1]}),
    (graph_nn.GraphAttention, dict(d_in=3, d_out=4, heads=2),
     {"d_in": BAD_INT, "d_out": BAD_INT, "heads": BAD_INT, "concat": [1], "negative_slope": [-0.1, "a"],
      "activation": ["gelu"], "bias": ["yes"], "generator": ["x"]}),
    (graph_nn.GraphSequential, dict(layers=[graph_nn.GraphConv(3, 4, generator=0)]),
     {"layers": [3, "ab", [torch.zeros(2)]]}),
    (deep.relu_mlp, dict(widths=[3, 4, 2]), {"widths": [[3], [3, 0, 2], 5, [3, 2.5, 1]]}),
    (graph_nn.propagation_matrix, dict(A=torch.zeros(3, 3)),
     {"A": [torch.zeros(3, 4), torch.zeros(3, 3, dtype=torch.long), np.zeros((3, 3))], "aggregation": ["max"]}),
    (graph_nn.readout, dict(H=torch.zeros(2, 3), node_graph=torch.tensor([0, 1, 1]), n_graphs=2),
     {"H": [torch.zeros(3), torch.zeros(2, 3, dtype=torch.long)], "node_graph": [torch.tensor([0, 1]),
      torch.zeros(3), torch.tensor([0, 1, 2])], "n_graphs": BAD_INT, "mode": ["median"]}),
    (graph_nn.edge_score, dict(H=torch.zeros(2, 3), pairs=torch.tensor([[0, 1]])),
     {"H": [torch.zeros(3)], "pairs": [torch.tensor([0, 1]), torch.tensor([[0.0, 1.0]]), torch.tensor([[0, 3]])]}),
    (graph_data.Graph, dict(A=torch.tensor([[0., 1], [1, 0]]), X=torch.eye(2)),
     {"A": [torch.eye(2), torch.tensor([[0., 1], [0, 0]]), torch.tensor([[0., 2], [2, 0]]), torch.zeros(2, 3),
            torch.zeros(2, 2, dtype=torch.long), [[0, 1], [1, 0]]],
      "X": [torch.eye(3), torch.zeros(2), torch.eye(2, dtype=torch.long)], "E": [torch.zeros(1, 2), torch.zeros(1)],
      "y": [torch.zeros(3), torch.zeros(2, dtype=torch.bool)], "node_graph": [torch.tensor([1, 1]), torch.zeros(2)]}),
    (graph_data.from_networkx, dict(g=nx.karate_club_graph(), edge_data="weight", label="club"),
     {"g": [nx.DiGraph([(0, 1)]), nx.Graph([(0, 0)]), "karate"], "node_data": ["club", 3, torch.eye(3)],
      "edge_data": ["colour", 3], "label": ["colour", 1.5]}),
    (graph_data.to_networkx, dict(graph=graph_data.karate_club()), {"graph": [nx.Graph(), None]}),
    (graph_data.to_edge_index, dict(A=torch.tensor([[0., 1], [1, 0]])), {"A": [torch.zeros(2), [[0, 1]]]}),
    (graph_data.from_edge_index, dict(edge_index=torch.tensor([[0, 1], [1, 2]])),
     {"edge_index": [torch.tensor([[0., 1], [1, 2]]), torch.tensor([[0, 1, 2]]), torch.tensor([[0], [0]]),
                     torch.tensor([[-1], [1]])],
      "X": [torch.eye(3, dtype=torch.long), torch.zeros(3)], "n_nodes": [-1, 1.5]}),
    (graph_data.batch_graphs, dict(graphs=[graph_data.karate_club()] * 2),
     {"graphs": [[], graph_data.karate_club(), [graph_data.karate_club(), 3],
                 [graph_data.karate_club(), graph_data.real_graph("florentine_families")]]}),
    (graph_data.real_graph, dict(name="les_miserables"), {"name": ["cora", 3]}),
    (graph_data.negative_edges, dict(A=graph_data.karate_club().A, n=5, generator=0),
     {"A": [torch.zeros(3, 4), torch.zeros(3)], "n": [-1, 2.5, 10**6], "generator": [None, 1.5],
      "exclude": [torch.zeros(2, 3, dtype=torch.long), torch.tensor([[0, 99]])],
      "node_graph": [torch.zeros(3, dtype=torch.long)]}),
    (graph_data.split_edges, dict(graph=graph_data.karate_club(), fraction=0.1, generator=0),
     {"graph": [nx.karate_club_graph()], "fraction": [0.0, 1.0, "a"], "generator": [None, "a"]}),
    (graph_data.walks, dict(A=graph_data.karate_club().A, k=2, start=0),
     {"A": [torch.zeros(3)], "k": [-1, 1.5], "start": [-1, 34]}),
    (graph_data.count_walks, dict(A=graph_data.karate_club().A, k=2), {"A": [[[0, 1]]], "k": [-1, 2.5]}),
    (graph_data.edge_graph, dict(graph=graph_data.karate_club()), {"graph": [nx.karate_club_graph()]}),
    (graph_data.graph_classification_set, dict(n=3, seed=0),
     {"n": BAD_INT, "seed": [-1, "a"], "n_nodes": [3, 2.5], "m": [0, 100], "d": BAD_INT}),
    (graph_data.node_classification_graphs, dict(n=3, seed=0),
     {"n": BAD_INT, "seed": [-1], "n_nodes": [1, 2.5], "p_in": [-0.1, 1.5], "p_out": [2.0, "a"], "hint": [-1.0],
      "d": BAD_INT}),
    (graph_rf.hop_distances, dict(A=torch.eye(3), node=1),
     {"A": [torch.zeros(3, 4), np.eye(3)], "node": [3, -1, 1.0]}),
    (graph_rf.k_hop_neighbourhood, dict(A=torch.eye(3), node=0, k=2), {"node": [5], "k": [-1, 1.5]}),
    (graph_rf.graph_input_sensitivity, dict(model=graph_nn.GraphConv(2, 3, generator=0), A=torch.zeros(3, 3), d_in=2),
     {"model": [3], "A": [torch.zeros(3, 2), torch.zeros(3, 3, dtype=torch.long)], "d_in": BAD_INT,
      "nodes": [[3], [], "0"], "n_probes": BAD_INT, "generator": [None, 2.5]}),
    (gnn.GNNConfig, dict(d_in=3),
     {"d_in": BAD_INT, "d_hidden": BAD_INT, "n_layers": BAD_INT, "n_classes": [1, 2.5], "layer": ["gin"],
      "aggregation": ["attention"], "combine": ["concat"], "heads": [0, 3], "readout": ["median"], "d_embed": [0],
      "activation": ["tanh"]}),
    (gnn.GraphNetwork, dict(config=gnn.GNNConfig.tiny()), {"config": ["huge", 3], "generator": [2.5]}),
    (gnn.GraphClassifier, dict(config="tiny"), {"config": ["huge", None], "generator": ["a"]}),
    (gnn.NodeClassifier, dict(config="karate"), {"config": [gnn.GNNConfig.tiny().to_dict()], "generator": [-1]}),
    (gnn.EdgePredictor, dict(config="tiny", generator=0), {"config": [3], "generator": [1.5]}),
    (gnn.StructureBlind, dict(model=gnn.NodeClassifier("tiny", generator=0)), {"model": [torch.nn.Linear(2, 2), None]}),
    (gnn.without_edges, dict(graph=graph_data.karate_club()), {"graph": [nx.karate_club_graph(), torch.eye(3)]}),
    (graph_train.node_targets, dict(labels=torch.tensor([0, 1, 1]), labelled=torch.tensor([0])),
     {"labels": [torch.zeros(3), torch.zeros(3, 1, dtype=torch.long)],
      "labelled": [torch.tensor([3]), torch.zeros(2, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)]}),
    (graph_train.train_transductive, dict(model=gnn.NodeClassifier("karate", generator=0),
                                          graph=graph_data.karate_club(), labelled=torch.tensor([0, 33]), steps=2,
                                          device="cpu"),
     {"model": [3], "graph": [graph_data.real_graph("les_miserables")], "labelled": [torch.tensor([34])],
      "steps": BAD_INT, "lr": [0.0, "a"], "weight_decay": [-1.0], "seed": [-1]}),
    (graph_train.train_graph_classifier, dict(model=gnn.GraphClassifier(gnn.GNNConfig.tiny(d_in=4), generator=0),
                                              graphs=graph_data.graph_classification_set(4, seed=0), steps=2,
                                              batch_size=2, device="cpu"),
     {"graphs": [[], graph_data.node_classification_graphs(2, seed=0)], "batch_size": [5, 0], "steps": BAD_INT}),
    (graph_train.train_node_classifier, dict(model=gnn.NodeClassifier(gnn.GNNConfig.tiny(d_in=4), generator=0),
                                             graphs=graph_data.node_classification_graphs(3, seed=0), steps=2,
                                             batch_size=2, device="cpu"),
     {"graphs": [graph_data.graph_classification_set(2, seed=0), [graph_data.karate_club(), 3]],
      "batch_size": [4], "lr": [-0.1]}),
    (graph_train.train_edge_predictor, dict(model=gnn.EdgePredictor("karate", generator=0),
                                            graph=graph_data.karate_club(), steps=2, device="cpu"),
     {"graph": [nx.karate_club_graph()], "negatives": [0, 100], "drop_edges": [1.0, -0.1], "steps": BAD_INT}),
    (graph_train.graph_accuracy, dict(model=gnn.GraphClassifier(gnn.GNNConfig.tiny(d_in=4), generator=0),
                                      graphs=graph_data.graph_classification_set(3, seed=0)),
     {"model": [3], "graphs": [[]], "batch_size": BAD_INT}),
    (graph_train.node_accuracy, dict(model=gnn.NodeClassifier("karate", generator=0), graphs=graph_data.karate_club()),
     {"model": [None], "graphs": [[graph_data.real_graph("les_miserables")]], "nodes": [torch.tensor([40])]}),
    (graph_train.edge_logits, dict(model=gnn.EdgePredictor("karate", generator=0), graph=graph_data.karate_club(),
                                   pairs=torch.tensor([[0, 1]])),
     {"model": ["m"], "graph": [torch.eye(3)], "pairs": [torch.tensor([0, 1]), torch.tensor([[0.0, 1.0]])]}),
    (graph_train.common_neighbours, dict(A=graph_data.karate_club().A, pairs=torch.tensor([[0, 1]])),
     {"A": [torch.zeros(3), torch.zeros(3, 3, dtype=torch.long)], "pairs": [torch.tensor([[0, 34]]), torch.tensor([0])]}),
    (graph_train.roc_auc, dict(positive=torch.tensor([1.0, 2.0]), negative=torch.tensor([0.0])),
     {"positive": [torch.zeros(0), torch.zeros(2, 2)], "negative": [np.zeros(3)]}),
    (mixture.MixtureOfGaussians, dict(weights=[0.5, 0.5], means=[0.0, 1.0], covariances=[1.0, 1.0]),
     {"weights": [[0.5, 0.6], [1.5, -0.5], [[0.5, 0.5]], "a"], "means": [[0.0, 1.0, 2.0], [0.0, float("nan")], None],
      "covariances": [[1.0, 0.0], [1.0], [[[1.0, 0.5], [0.4, 1.0]]] * 2, "a"]}),
    (mixture.MixtureOfGaussians([0.5, 0.5], [0.0, 1.0], [1.0, 1.0]).sample, dict(n=5, generator=0),
     {"n": BAD_INT, "generator": [1.5, -1]}),
    (mixture.e_step, dict(mixture=mixture.MixtureOfGaussians([1.0], [0.0], [1.0]), x=torch.zeros(4)),
     {"mixture": [3, None], "x": [torch.zeros(4, 2), "a", torch.zeros(0)]}),
    (mixture.m_step, dict(x=torch.arange(4.0), responsibilities=torch.full((4, 2), 0.5)),
     {"responsibilities": [torch.ones(4, 2), torch.full((3, 2), 0.5), torch.ones(4)], "reg_covar": [-1e-3, "a"],
      "x": [torch.zeros(4, 2, 2)]}),
    (mixture.fit_em, dict(x=torch.arange(6.0), initial=mixture.MixtureOfGaussians([0.5, 0.5], [0.0, 5.0], [1.0, 1.0]),
                          steps=2),
     {"x": [torch.zeros(6, 2), torch.zeros(1), "a"], "initial": ["start", None], "steps": BAD_INT,
      "tol": [-1.0, "a"], "reg_covar": [-1e-3, float("inf")]}),
    (mixture.initial_mixture, dict(x=torch.arange(6.0), n_components=2, generator=0),
     {"x": [torch.zeros(1), "a"], "n_components": BAD_INT + [7], "generator": [1.5, -1]}),
    (generative.DigitClassifier, dict(generator=0), {"generator": [1.5, -1]}),
    (generative.digit_classifier, dict(device="cpu"), {"device": ["tpu"]}),
    (generative.digit_features, dict(images=torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))),
     {"images": [torch.zeros(4, 7), "a", torch.zeros(4, 64, dtype=torch.long), torch.full((2, 64), float("nan"))],
      "batch_size": BAD_INT}),
    (generative.frechet_distance, dict(features_a=np.eye(4), features_b=np.ones((3, 4))),
     {"features_a": [np.zeros(3), np.zeros((1, 4)), "a"], "features_b": [np.zeros((4, 3)), np.full((4, 4), np.inf)]}),
    (generative.precision_recall, dict(sample_features=np.eye(5), real_features=np.ones((4, 5)), k=2),
     {"sample_features": [np.zeros((2, 5)), None], "real_features": [np.zeros((5, 2))], "k": BAD_INT}),
    (generative.class_share, dict(images=torch.zeros(3, 64), classes=[0, 1, 2]),
     {"images": [torch.zeros(3, 8)], "classes": [[0, 1], 10, -1, [0.5, 1.0, 2.0], "a", True]}),
    (generative.memorisation, dict(samples=torch.zeros(3, 64), train=torch.ones(4, 64), held_out=torch.ones(4, 64)),
     {"samples": [torch.zeros(0, 64), None], "train": [torch.zeros(3, 9)], "held_out": [torch.zeros(1, 64)],
      "quantile": [0.0, 0.6, "a"], "alpha": [0.0, 0.5]}),
    (generative.trivial_digits, dict(n=4, generator=0), {"n": BAD_INT, "classes": [11, [1, 2]],
                                                         "generator": [None, 1.5]}),
    (generative.evaluate_digits, dict(samples=torch.rand(8, 64, generator=torch.Generator().manual_seed(0)), classes=3),
     {"samples": [torch.zeros(3, 64), np.zeros((8, 7))], "classes": [[1, 2], 10], "seed": [-1, 1.5], "k": BAD_INT}),
    (generative.evaluation_table, dict(result={row: dict(frechet=1.0, precision=0.5, recall=0.5, class_share=None,
                                                         memorisation_p=0.5, memorisation_passes=True, count=8)
                                               for row in ("model", "floor", "ceiling")}),
     {"result": [None, {"model": 1}]}),
    # udl.models.diffusion, udl.models.denoisers (chapter 18)
    (diffusion.Diffusion, dict(beta=[0.1, 0.2]), {"beta": [[], [0.0, 0.1], [1.0], "a", [[0.1]]]}),
    (diffusion.Diffusion.linear, dict(T=10), {"T": BAD_INT, "beta_1": [0.0, 1.0, "a"], "beta_T": [-0.1]}),
    (diffusion.Diffusion.cosine, dict(T=10), {"T": BAD_INT, "s": [-0.1], "max_beta": [0.0, 1.0]}),
    (diffusion.ddim_timesteps, dict(T=10, n_steps=3), {"T": BAD_INT, "n_steps": [0, 11, 1.5]}),
    (_PROCESS.forward_step, dict(z_prev=torch.zeros(2, 3), t=4, generator=0),
     {"z_prev": [torch.zeros(0, 3), np.zeros((2, 3))], "t": [0, 11, torch.tensor([1.0, 2.0])],
      "noise": [torch.zeros(3, 3)], "generator": [1.5]}),
    (_PROCESS.forward_chain, dict(x=torch.zeros(2, 3), t_max=3, generator=0),
     {"x": [torch.zeros(2, 3, dtype=torch.long)], "t_max": [0, 11], "generator": ["a"]}),
    (_PROCESS.diffusion_kernel, dict(t=3), {"t": [-1, 11, 1.5]}),
    (_PROCESS.diffuse, dict(x=torch.zeros(2, 3), t=torch.tensor([0, 10]), generator=0),
     {"x": [[0.0, 1.0]], "t": [-1, torch.tensor([1, 11]), torch.tensor([1])], "noise": [torch.zeros(2)]}),
    (_PROCESS.posterior, dict(t=3), {"t": [0, 11, "3"]}),
    (_PROCESS.posterior_mean, dict(z_t=torch.zeros(2, 3), x=torch.ones(2, 3), t=2),
     {"x": [torch.ones(3, 3)], "t": [0, 11]}),
    (_PROCESS.predict_x, dict(z_t=torch.zeros(2, 3), eps=torch.ones(2, 3), t=2), {"eps": [torch.ones(2)], "t": [0]}),
    (_PROCESS.loss, dict(model=denoisers.MLPDenoiser.tiny(d_in=3, generator=0), x=torch.zeros(4, 3), generator=0),
     {"model": [3], "p_uncond": [-0.1, 1.5], "c": [torch.zeros(4)], "t": [torch.tensor([0, 1, 2, 3])],
      "generator": [1.5]}),
    (_PROCESS.guided_noise, dict(model=denoisers.DigitDenoiser.tiny(generator=0), z_t=torch.zeros(2, 1, 8, 8), t=3,
                                 c=torch.tensor([0, 2]), guidance=1.5),
     {"guidance": [-1.0, "a"], "c": [torch.zeros(2), torch.tensor([0])], "null_class": [-1]}),
    (_PROCESS.ddpm_step, dict(eps=torch.zeros(2, 3), z_t=torch.ones(2, 3), t=5, generator=0),
     {"t": [0, 11], "variance": ["learned"], "eps": [torch.zeros(3, 3)], "generator": [1.5]}),
    (_PROCESS.ddim_step, dict(eps=torch.zeros(2, 3), z_t=torch.ones(2, 3), t=5, t_prev=2),
     {"t_prev": [5, -1], "eta": [-1.0], "noise": [torch.zeros(1)]}),
    (_PROCESS.sample_ddpm, dict(model=denoisers.MLPDenoiser.tiny(generator=0), shape=(3, 2), generator=0),
     {"model": [3], "shape": [5, (0, 2)], "variance": ["x"], "c": [torch.zeros(3)], "generator": [1.5]}),
    (_PROCESS.sample_ddim, dict(model=denoisers.DigitDenoiser.tiny(generator=0), shape=(3, 1, 8, 8),
                                c=torch.tensor([0, 1, 2]), n_steps=4, guidance=1.0, generator=0),
     {"n_steps": [0, 11], "eta": [-1.0], "guidance": [-1.0], "c": [torch.tensor([0, 1])]}),
    (denoisers.time_embedding, dict(t=torch.arange(3), dim=4),
     {"t": [torch.zeros(2, 2), [1, 2]], "dim": [3, 0, 1.5], "max_period": [0.5]}),
    (denoisers.MLPDenoiser, dict(d_in=2), {"d_in": BAD_INT, "width": BAD_INT, "depth": BAD_INT, "d_time": [3, 0],
                                           "generator": [1.5]}),
    (denoisers.DigitDenoiser, dict(n_classes=3, channels=(4, 8), d_embed=8, groups=2),
     {"n_classes": BAD_INT, "channels": [(4,), (4, 0), (4, 8, 16), 4], "d_embed": [7, 0], "groups": [0, 3],
      "generator": [-1]}),
    # udl.models.vae, udl.train.vae (chapter 17)
    (vae_model.VAEConfig, dict(d_in=8, hidden=(4,), d_latent=2),
     {"d_in": BAD_INT, "hidden": [4, (4, 0), "4"], "d_latent": BAD_INT, "likelihood": ["bernoulli", 1],
      "n_trials": BAD_INT, "sigma": [0.0, -1.0, "a"]}),
    (vae_model.VAE, dict(config="tiny", generator=0), {"config": ["huge", 3, None], "generator": [1.5, -1]}),
    (vae_model.gaussian_kl, dict(mu=torch.zeros(2, 3), log_var=torch.zeros(2, 3)),
     {"mu": [np.zeros((2, 3)), torch.zeros(3), torch.zeros(2, 3, dtype=torch.long)], "log_var": [torch.zeros(2, 2)]}),
    (vae_model.monte_carlo_kl, dict(mu=torch.zeros(2, 3), log_var=torch.zeros(2, 3), n_samples=10, generator=0),
     {"mu": [[0.0]], "log_var": [torch.zeros(3, 3)], "n_samples": [1, 2.5, "10"], "generator": [None, 1.5]}),
    (_VAE.elbo, dict(x=torch.rand(3, 8, generator=torch.Generator().manual_seed(0)), generator=0, n_samples=2),
     {"x": [torch.zeros(3, 7), np.zeros((3, 8)), torch.zeros(3, 8, dtype=torch.float64)], "n_samples": BAD_INT,
      "generator": [1.5]}),
    (_VAE.importance_log_likelihood, dict(x=torch.rand(3, 8, generator=torch.Generator().manual_seed(0)),
                                          n_samples=5, generator=0),
     {"x": [torch.zeros(8)], "n_samples": BAD_INT, "chunk": [0], "generator": [None, "a"]}),
    (_VAE.sample, dict(n=3, generator=0), {"n": BAD_INT, "generator": [1.5], }),
    (_VAE.interpolate, dict(x_a=torch.zeros(8), x_b=torch.ones(8), n_steps=3),
     {"x_a": [torch.zeros(2, 8)], "x_b": [torch.zeros(7)], "n_steps": [1, 2.5]}),
    (vae_train.NegativeELBO, dict(model=vae_model.VAE("tiny", generator=0), seed=0),
     {"model": [torch.nn.Linear(8, 8)], "seed": [-1, 1.5]}),
    (vae_train.train_vae, dict(model=vae_model.VAE("tiny", generator=0), x=torch.rand(20, 8), steps=2, batch_size=4,
                               device="cpu"),
     {"model": [None], "x": [torch.zeros(20, 7), torch.full((20, 8), 1.5), "x"], "steps": BAD_INT,
      "batch_size": [0, 21], "lr": [0.0, "a"], "seed": [-1], "device": ["tpu"]}),
    (vae_train.digits_vae, dict(d_latent=2, steps=2, hidden=(8,), device="cpu"),
     {"d_latent": BAD_INT, "steps": BAD_INT, "hidden": [(8, 0)], "seed": [-1], "device": ["tpu"]}),
    # udl.train.diffusion (chapter 18)
    (diffusion_train.linear_process, dict(T=100), {"T": [20, 2.5, "a"]}),
    (diffusion_train.DenoisingLoss, dict(model=denoisers.MLPDenoiser.tiny(generator=0), process=_PROCESS),
     {"model": [None], "process": ["linear"], "p_uncond": [-0.1, 1.0], "seed": [-1, 1.5]}),
    (diffusion_train.train_denoiser, dict(model=denoisers.MLPDenoiser.tiny(generator=0), process=_PROCESS,
                                          x=torch.randn(8, 2), steps=2, batch_size=4, device="cpu"),
     {"model": [None], "process": [None], "x": [torch.zeros(0, 2), "x"], "c": [torch.zeros(8)], "steps": BAD_INT,
      "batch_size": [0, 9], "lr": [0.0], "p_uncond": [0.5], "ema": [1.0, -0.1], "seed": [-1]}),
    (diffusion_train.standard_mixture, dict(),
     {"weights": [(1.0, -1.0, 1.0)], "means": [(0.0,)], "sds": [(0.1, 0.0, 0.1), "a"]}),
    (diffusion_train.mixture_denoiser, dict(mixture=diffusion_train.standard_mixture(), T=50, n_train=100, steps=2,
                                            batch_size=50, width=4, depth=1, d_time=4, device="cpu"),
     {"mixture": [None], "T": [0], "n_train": BAD_INT, "steps": BAD_INT, "batch_size": [101], "lr": [0.0],
      "ema": [1.0], "width": BAD_INT, "seed": [-1]}),
    (diffusion_train.digits_to_signed, dict(images=np.zeros((2, 64), dtype=np.float32)),
     {"images": [np.zeros((2, 63), dtype=np.float32), "x"]}),
    (diffusion_train.signed_to_digits, dict(z=torch.zeros(2, 1, 8, 8)), {"z": [np.zeros(3), torch.zeros(2, 5)]}),
    (diffusion_train.digits_denoiser, dict(T=50, steps=2, channels=(4, 8), d_embed=8, groups=2, device="cpu"),
     {"T": [0], "steps": BAD_INT, "p_uncond": [0.0, 1.0], "channels": [(4, 0)], "seed": [-1]}),
    (diffusion_train.sample_digits, dict(model=denoisers.DigitDenoiser(channels=(4, 8), d_embed=8, groups=2,
                                                                       generator=0),
                                         process=_PROCESS, classes=[0, 9], n_steps=2, generator=0),
     {"classes": [torch.zeros(2), []], "guidance": [-1.0], "n_steps": [0, 11], "generator": [1.5]}),
    (sampling.pixel_shuffle, dict(x=torch.zeros(1, 8, 2, 2), factor=2),
     {"x": [torch.zeros(1, 6, 2, 2), torch.zeros(8, 2, 2), "x"], "factor": BAD_INT}),
    # udl.nn.adversarial, udl.models.gan, udl.train.gan (chapters 14-15)
    (adversarial.discriminator_loss, dict(real_logits=torch.zeros(3), fake_logits=torch.zeros(3)),
     {"kind": ["hinge", None], "real_logits": [np.zeros(3), torch.zeros(3, dtype=torch.long), torch.zeros(0)],
      "fake_logits": [[0.0]]}),
    (adversarial.generator_loss, dict(fake_logits=torch.zeros(3)), {"kind": ["hinge"], "fake_logits": [None]}),
    (adversarial.gradient_penalty, dict(critic=lambda x: x.sum(1), real=torch.zeros(2, 3), fake=torch.ones(2, 3),
                                        generator=0),
     {"critic": [3], "real": [torch.zeros(0, 3), "x"], "fake": [torch.zeros(3, 3)], "generator": [1.5, -1],
      "extra": [3]}),
    (gan_model.GANConfig, dict(d_latent=4, image_size=8),
     {"d_latent": BAD_INT, "image_size": [6, 2, 2.5], "channels": BAD_INT, "width": BAD_INT, "g_batch_norm": [1],
      "d_batch_norm": ["no"], "slope": [1.0, -0.1]}),
    (gan_model.DCGANGenerator, dict(config="tiny", generator=0), {"config": ["huge", 3], "generator": [1.5, -1]}),
    (gan_model.DCGANDiscriminator, dict(config="tiny", generator=0), {"config": ["huge", 3], "generator": [1.5]}),
    (gan_model.MLPGenerator, dict(d_latent=2, d_out=2, hidden=(4,), generator=0),
     {"d_latent": BAD_INT, "d_out": BAD_INT, "hidden": [(), 4, (0,)], "generator": [1.5]}),
    (gan_model.MLPDiscriminator, dict(d_in=2, hidden=(4,)), {"d_in": BAD_INT, "slope": [1.0, "a"], "hidden": [()]}),
    (gan_model.GAN, dict(generator_net=torch.nn.Linear(2, 2), discriminator_net=torch.nn.Linear(2, 1), d_latent=2),
     {"generator_net": [3], "discriminator_net": ["D"], "d_latent": BAD_INT}),
    (_GAN_PAIR.sample, dict(n=3, generator=0), {"n": BAD_INT, "generator": [1.5]}),
    (_GAN_PAIR.latent, dict(n=3, generator=0), {"n": BAD_INT, "generator": [1.5, -1]}),
    (gan_train.step_generator, dict(seed=0, step=1), {"seed": [-1, 1.5], "step": [-1], "stream": [-1],
                                                      "device": ["tpu"]}),
    (gan_train.train_adversarial, _adversarial_arguments(),
     {"modules": [{}, None], "data": [[torch.zeros(4, 2)]], "d_loss": [None], "g_loss": [3],
      "d_params": [[torch.zeros(2)]], "steps": BAD_INT, "batch_size": [0, 5], "lr_d": [0.0], "lr_g": ["a"],
      "betas": [(0.5,), (0.5, 1.0)], "n_critic": BAD_INT, "seed": [-1], "device": ["tpu"], "resume": [True]}),
    (gan_train.train_gan, dict(gan=_GAN_PAIR, x=torch.randn(8, 2), steps=1, batch_size=4, device="cpu"),
     {"gan": [None], "x": ["x", torch.zeros(8)], "c": [torch.zeros(3)], "loss": ["hinge"], "gp_weight": [-1.0],
      "steps": BAD_INT, "batch_size": [0, 9], "seed": [-1]}),
    (gan_train.discriminator_accuracy, dict(discriminator=gan_model.MLPDiscriminator(2, (4,), generator=0),
                                            real=torch.zeros(3, 2), fake=torch.ones(3, 2)),
     {"discriminator": [3], "real": ["x", torch.zeros(0, 2)], "fake": [np.zeros((3, 2))]}),
    (analysis_modes.mode_coverage, dict(samples=torch.zeros(4, 2), centres=torch.ones(2, 2), radius=0.5),
     {"samples": [torch.zeros(4), np.zeros((4, 2))], "centres": [torch.zeros(2, 3)], "radius": [0.0, "a"],
      "min_share": [-0.1, 1.5]}),
    (analysis_modes.nearest_neighbour_accuracy, dict(a=torch.zeros(3, 2), b=torch.ones(3, 2)),
     {"a": [torch.zeros(0, 2), [[0.0]]], "b": [torch.zeros(3, 3), torch.full((3, 2), float("nan"))]}),
    (analysis_modes.same_distribution_accuracy, dict(n=10, m=10), {"n": BAD_INT, "m": [0, 2.5]}),
    # udl.models.stylegan, udl.train.stylegan, udl.analysis.stylegan (fig. 15.19)
    (stylegan_model.StyleGANConfig, dict(d_latent=4, d_style=4, image_size=8, channels=(4, 2)),
     {"d_latent": BAD_INT, "d_style": BAD_INT, "mapping_depth": BAD_INT, "out_channels": BAD_INT,
      "image_size": [6, 2, 2.5], "channels": [4, (4,), (4, 0), "4"]}),
    (stylegan_model.StyleGenerator, dict(config="tiny", generator=0), {"config": ["huge", 3, None],
                                                                       "generator": [1.5, -1]}),
    (stylegan_model.MappingNetwork, dict(d_latent=2, d_style=3, depth=2, generator=0),
     {"d_latent": BAD_INT, "d_style": BAD_INT, "depth": BAD_INT, "generator": [1.5]}),
    (stylegan_model.AdaIN, dict(channels=3, d_style=2), {"channels": BAD_INT, "d_style": BAD_INT, "eps": [0.0, "a"],
                                                         "generator": [-1]}),
    (stylegan_model.NoiseInjection, dict(channels=3), {"channels": BAD_INT}),
    (stylegan_model.StyleLayer, dict(in_channels=None, channels=3, d_style=2),
     {"in_channels": [0, 2.5], "channels": BAD_INT, "generator": [1.5]}),
    (_STYLE.latent, dict(n=2, generator=0), {"n": BAD_INT, "generator": [1.5]}),
    (_STYLE.draw_noise, dict(n=2, generator=0), {"n": BAD_INT, "generator": ["a"]}),
    (_STYLE.sample, dict(n=2, generator=0), {"n": BAD_INT, "generator": [-1]}),
    (_STYLE.synthesis, dict(ws=torch.zeros(2, 4)),
     {"ws": [torch.zeros(2, 3), torch.zeros(2, 5, 4), np.zeros((2, 4)), torch.zeros(2, 4, dtype=torch.float64)],
      "noise": [torch.zeros(2, 1, 4, 4), [torch.zeros(2, 1, 4, 4)]], "generator": [1.5]}),
    (_STYLE.mixed_styles, dict(w_coarse=torch.zeros(2, 4), w_fine=torch.ones(2, 4), crossover=1),
     {"w_coarse": [torch.zeros(2, 3)], "w_fine": [torch.zeros(3, 4), "w"], "crossover": [-1, 5, 1.5]}),
    (stylegan_train.mixed_batch, dict(model=_STYLE, n=3, p_mix=0.5, generator=0),
     {"model": [torch.nn.Linear(2, 2)], "n": BAD_INT, "p_mix": [-0.1, 1.5, "a"], "generator": [1.5]}),
    (stylegan_train.train_stylegan, dict(model=stylegan_model.StyleGenerator("tiny", generator=0),
                                         discriminator=gan_model.DCGANDiscriminator("tiny", generator=1),
                                         x=torch.rand(8, 64), steps=1, batch_size=4, device="cpu"),
     {"model": [None], "discriminator": [3], "x": [torch.rand(8, 63), torch.full((8, 64), 2.0), "x"],
      "steps": BAD_INT, "batch_size": [0, 9], "p_mix": [1.5], "lr": [0.0], "seed": [-1], "device": ["tpu"]}),
    (stylegan_train.digits_stylegan, dict(config=stylegan_model.StyleGANConfig.tiny(), steps=1, batch_size=4,
                                          d_width=2, device="cpu"),
     {"config": ["tiny", stylegan_model.StyleGANConfig.tiny(image_size=16, channels=(2, 2, 2))], "steps": BAD_INT,
      "batch_size": [0], "p_mix": [2.0], "lr": [-1.0], "d_width": BAD_INT, "seed": [-1], "device": ["tpu"]}),
    (stylegan_analysis.noise_change_bands, dict(model=_NOISY_STYLE, n=3, generator=0),
     {"model": [None], "n": BAD_INT, "cutoff": [-0.1, 0.6], "generator": [None, 1.5]}),
    (stylegan_analysis.mixing_classes, dict(model=_STYLE, n=3, generator=0),
     {"model": [None], "n": BAD_INT, "crossover": [-1, 5, 1.5], "generator": [None, "a"]}),
    # udl.models.conditional_gan, udl.train.conditional_gan (fig. 15.13)
    (cgan_model.ConditionalGANConfig, dict(d_latent=3, n_classes=3, width=2),
     {"d_latent": BAD_INT, "n_classes": [1, 2.5], "n_continuous": [-1, 1.5], "width": BAD_INT}),
    (cgan_model.ConditionalGenerator, dict(config="tiny", generator=0), {"config": ["huge", 3], "generator": [1.5, -1]}),
    (cgan_model.ConditionalDiscriminator, dict(config="tiny", generator=0),
     {"config": ["huge"], "condition": ["add"], "generator": [1.5]}),
    (cgan_model.AuxiliaryClassifierDiscriminator, dict(config="tiny"), {"config": [3], "generator": [1.5]}),
    (cgan_model.InfoGANDiscriminator, dict(config="tiny"), {"config": [None], "generator": ["a"]}),
    (cgan_model.ConditionalGAN, dict(config="tiny", kind="acgan", generator=0),
     {"config": ["huge"], "kind": ["wgan"], "condition": ["x"], "generator": [1.5]}),
    (_CGAN.sample, dict(c=torch.tensor([0, 1]), generator=0),
     {"c": [torch.tensor([0.5]), torch.tensor([3]), [0]], "generator": [1.5]}),
    (_CGAN.latent, dict(n=3, generator=0), {"n": [-1, 2.5], "generator": [1.5]}),
    (_CGAN.codes, dict(n=3, generator=0), {"n": [-1, 2.5], "generator": [1.5]}),
    (cgan_train.train_cgan, dict(gan=cgan_model.ConditionalGAN.tiny(), x=torch.rand(8, 1, 8, 8), y=torch.arange(8) % 3,
                                 steps=1, batch_size=4, device="cpu"),
     {"gan": [None, _CGAN], "x": [torch.rand(8, 64), "x"], "y": [torch.arange(8), torch.zeros(8)], "steps": BAD_INT,
      "batch_size": [0, 9], "seed": [-1]}),
    (cgan_train.train_acgan, dict(gan=cgan_model.ConditionalGAN.tiny(kind="acgan"), x=torch.rand(8, 1, 8, 8),
                                  y=torch.arange(8) % 3, steps=1, batch_size=4, device="cpu"),
     {"gan": [None], "y": [torch.arange(4)], "class_weight": [-1.0, "a"], "steps": BAD_INT, "seed": [-1, 1.5]}),
    (cgan_train.train_infogan, dict(gan=cgan_model.ConditionalGAN.tiny(kind="infogan"), x=torch.rand(8, 1, 8, 8),
                                    steps=1, batch_size=4, device="cpu"),
     {"gan": [_CGAN], "x": [torch.rand(0, 1, 8, 8)], "info_weight": [-1.0], "steps": BAD_INT, "lr_d": [0.0]}),
    (cgan_train.infogan_information_loss, dict(code_logits=torch.zeros(2, 3), code_means=torch.zeros(2, 1),
                                               c=torch.tensor([0, 2]), u=torch.ones(2, 1)),
     {"code_logits": [torch.zeros(3)], "code_means": [torch.zeros(3, 1)], "c": [torch.zeros(2)],
      "u": [torch.ones(2, 2)]}),
    (cgan_train.digits_conditional_gan, dict(kind="cgan", steps=1, width=2, device="cpu"),
     {"kind": ["wgan"], "steps": BAD_INT, "width": [0], "n_continuous": [-1, 2], "seed": [-1]}),
    (cgan_train.code_accuracy, dict(gan=cgan_model.ConditionalGAN.tiny(kind="infogan"), n=10),
     {"gan": [None, _CGAN], "n": BAD_INT, "generator": [1.5]}),
    (cgan_train.code_purity, dict(codes=[0, 1, 1], classes=[2, 2, 3]),
     {"codes": ["ab", [-1, 0, 0], [[0]]], "classes": [[0.5, 1.0, 2.0], [1]]}),
    # udl.data.digit_styles, udl.models.cyclegan, udl.train.cyclegan (fig. 15.18)
    (digit_styles.embolden, dict(images=torch.zeros(2, 1, 8, 8), width=2),
     {"images": [torch.zeros(8), torch.zeros(2, 8, 8, dtype=torch.long), "x"], "width": [0, 9, 1.5]}),
    (digit_styles.digit_domains, dict(width=2, seed=1), {"width": [0, 9, "2"], "seed": [-1, 1.5]}),
    (cyclegan_model.CycleGANConfig, dict(width=4, n_blocks=1),
     {"channels": BAD_INT, "width": BAD_INT, "n_blocks": [-1, 1.5, "2"]}),
    (cyclegan_model.Translator, dict(config="tiny", generator=0), {"config": ["huge", 3, None],
                                                                  "generator": [1.5, -1]}),
    (cyclegan_model.CycleGAN, dict(config="tiny", generator=0), {"config": ["huge", 3, None], "generator": [1.5, -1]}),
    (_CYCLE.translate, dict(x=torch.zeros(2, 1, 8, 8), direction="b_to_a"),
     {"x": [torch.zeros(2, 2, 8, 8), torch.zeros(8, 8)], "direction": ["a_to_a", 1]}),
    (_CYCLE.round_trip, dict(x=torch.zeros(2, 1, 8, 8), start="b"), {"x": [torch.zeros(2, 3, 8, 8)], "start": ["c"]}),
    (_CYCLE.losses, dict(a=torch.zeros(2, 1, 8, 8), b=torch.ones(3, 1, 8, 8)),
     {"a": [torch.zeros(2, 1, 8, 8, dtype=torch.float64)], "b": [torch.zeros(3, 2, 8, 8)]}),
    (cyclegan_train.domain_discriminator, dict(width=4, generator=0),
     {"width": BAD_INT, "image_size": [6, 2], "channels": BAD_INT, "generator": [1.5]}),
    (cyclegan_train.train_cyclegan, dict(model=cyclegan_model.CycleGAN("tiny", generator=0),
                                         discriminator_a=cyclegan_train.domain_discriminator(4, generator=1),
                                         discriminator_b=cyclegan_train.domain_discriminator(4, generator=2),
                                         x_a=torch.rand(20, 1, 8, 8), x_b=torch.rand(12, 1, 8, 8), steps=2,
                                         batch_size=4, device="cpu"),
     {"model": [None, torch.nn.Linear(2, 2)], "discriminator_a": [None], "x_a": [torch.zeros(20, 64), "x"],
      "x_b": [torch.zeros(12, 1, 6, 6), torch.zeros(0, 1, 8, 8)], "loss": ["hinge"], "cycle_weight": [-1.0, "a"],
      "identity_weight": [-1.0], "content_weight": [-0.5], "steps": BAD_INT, "batch_size": [0, 21], "seed": [-1]}),
    (cyclegan_train.digits_cyclegan, dict(width=2, n_blocks=0, discriminator_width=2, steps=2, batch_size=4,
                                          device="cpu"),
     {"width": BAD_INT, "n_blocks": [-1], "discriminator_width": BAD_INT, "steps": BAD_INT, "batch_size": [0, 720],
      "bold_width": [0, 9], "seed": [-1]}),
    (cyclegan_train.train_domain_classifier, dict(x_a=torch.rand(10, 1, 8, 8), x_b=torch.rand(10, 1, 8, 8), width=2,
                                                  steps=2, batch_size=4, device="cpu"),
     {"x_a": [torch.zeros(10, 64), None], "x_b": [torch.zeros(10, 1, 4, 4)], "width": BAD_INT, "steps": BAD_INT,
      "batch_size": [0, 21], "lr": [0.0, "a"], "seed": [-1]}),
    # udl.data.photos, udl.analysis.colour, udl.models.pix2pix, udl.train.pix2pix (fig. 15.16)
    (photos.photo_patches, dict(names="chelsea", size=8, n=2, downscale=8),
     {"names": [[], ["eagle"], 3], "size": BAD_INT + [38], "n": BAD_INT, "seed": [-1, 1.5], "downscale": BAD_INT}),
    (photos.to_grey, dict(rgb=torch.zeros(1, 3, 4, 4)),
     {"rgb": [torch.zeros(1, 1, 4, 4), torch.zeros(1, 3, 4, 4, dtype=torch.long), np.zeros((1, 3, 4, 4))]}),
    (colour_analysis.colourfulness, dict(rgb=torch.rand(2, 3, 4, 4)),
     {"rgb": [torch.zeros(2, 1, 4, 4), torch.zeros(2, 3, 4, 4, dtype=torch.long), [0.5]]}),
    (colour_analysis.opponent_channels, dict(rgb=torch.rand(2, 3, 4, 4)), {"rgb": [torch.zeros(3, 4, 4), None]}),
    (pix2pix_model.PatchDiscriminator, dict(in_channels=4, width=2, n_layers=1, generator=0),
     {"in_channels": BAD_INT, "width": BAD_INT, "n_layers": BAD_INT + [9], "batch_norm": [1], "generator": [1.5]}),
    (pix2pix_model.patch_receptive_field, dict(n_layers=2), {"n_layers": BAD_INT}),
    (pix2pix_model.patch_map_size, dict(input_size=32, n_layers=1), {"input_size": BAD_INT, "n_layers": BAD_INT}),
    (pix2pix_train.Colouriser, dict(levels=2, width=2, generator=0),
     {"levels": BAD_INT, "width": BAD_INT, "generator": [1.5, -1]}),
    (pix2pix_train.train_pix2pix, dict(colouriser=pix2pix_train.Colouriser(levels=2, width=2, generator=0),
                                       grey=torch.rand(4, 1, 8, 8), colour=torch.rand(4, 3, 8, 8), steps=1,
                                       batch_size=2, device="cpu"),
     {"grey": [torch.zeros(4, 3, 8, 8), np.zeros((4, 1, 8, 8))], "colour": [torch.zeros(4, 3, 8, 4), None],
      "discriminator": [pix2pix_model.PatchDiscriminator(3, 2, 1), 3], "l1_weight": [0.0, -1.0], "lr": [0.0],
      "ema": [1.0, -0.1], "steps": BAD_INT, "batch_size": [0, 5], "seed": [-1], "callback": [3]}),
    (pix2pix_train.photo_colouriser, dict(adversarial=True, size=8, n_train=32, downscale=8, levels=2, width=2,
                                          steps=1, device="cpu"),
     {"adversarial": [1, "yes"], "size": BAD_INT, "n_train": BAD_INT, "steps": BAD_INT, "seed": [-1]}),
    # udl.analysis.image_quality, udl.models.srgan, udl.train.srgan (fig. 15.17)
    (image_quality.psnr, dict(estimate=torch.zeros(1, 3, 8, 8), target=torch.ones(1, 3, 8, 8)),
     {"estimate": [torch.zeros(3, 8, 8), np.zeros((1, 3, 8, 8))], "target": [torch.zeros(1, 3, 8, 7)],
      "peak": [0.0, "1"], "border": [-1, 4, 1.5]}),
    (image_quality.frequency_radius, dict(height=4, width=6), {"height": BAD_INT, "width": BAD_INT}),
    (image_quality.high_frequency_energy, dict(images=torch.zeros(1, 3, 8, 8)),
     {"images": [torch.zeros(8, 8), "x"], "cutoff": [-0.1, 0.6, "a"]}),
    (image_quality.radial_power_spectrum, dict(images=torch.zeros(1, 3, 8, 8)),
     {"images": [torch.zeros(3, 8, 8)], "n_bins": BAD_INT}),
    (srgan_model.SRGANConfig, dict(width=4, n_blocks=1),
     {"channels": BAD_INT, "width": BAD_INT, "n_blocks": [-1, 1.5], "scale": [1, 3, 6, 2.0], "kernel": [0, 4],
      "batch_norm": [1, "yes"], "bicubic_skip": [0], "d_width": BAD_INT, "d_stages": BAD_INT}),
    (srgan_model.SRResNet, dict(config="tiny", generator=0), {"config": ["huge", 3, None], "generator": [1.5, -1]}),
    (srgan_model.SRDiscriminator, dict(config="tiny", generator=0), {"config": ["srgan", 3], "generator": [1.5]}),
    (srgan_train.low_resolution, dict(images=torch.zeros(1, 3, 8, 8)),
     {"images": [torch.zeros(3, 8, 8), torch.zeros(1, 3, 8, 8, dtype=torch.long)], "factor": BAD_INT + [9]}),
    (srgan_train.ContentLoss, dict(model=srgan_model.SRResNet("tiny", generator=0)),
     {"model": [srgan_model.SRDiscriminator("tiny", generator=0), None]}),
    (srgan_train.train_content, dict(model=srgan_model.SRResNet("tiny", generator=0), hr=torch.rand(8, 3, 8, 8),
                                     steps=1, batch_size=4, device="cpu"),
     {"model": [None], "hr": [torch.rand(8, 3, 8, 6), torch.rand(8, 1, 8, 8), "x"], "steps": BAD_INT,
      "batch_size": [0, 9], "lr": [0.0, "a"], "seed": [-1, 1.5]}),
    (srgan_train.train_srgan, dict(model=srgan_model.SRResNet("tiny", generator=0),
                                   discriminator=srgan_model.SRDiscriminator("tiny", generator=1),
                                   hr=torch.rand(8, 3, 8, 8), steps=1, batch_size=4, device="cpu"),
     {"model": [None], "discriminator": [torch.nn.Linear(2, 2)], "hr": [torch.rand(0, 3, 8, 8)], "steps": BAD_INT,
      "batch_size": [9], "adversarial_weight": [-1.0, "a"], "lr_g": [0.0], "lr_d": [-1.0], "seed": [-1]}),
    (srgan_train.super_resolve, dict(model=srgan_model.SRResNet("tiny", generator=0), low=torch.rand(1, 3, 2, 2)),
     {"model": [torch.nn.Linear(2, 2)], "low": [torch.rand(1, 1, 2, 2), torch.rand(3, 2, 2)]}),
    (srgan_train.photo_super_resolvers, dict(config=srgan_model.SRGANConfig.tiny(), downscale=8, patch=16,
                                             n_patches=8, steps=1, adversarial_steps=0, device="cpu"),
     {"config": ["tiny"], "names": [["nowhere"], 3], "downscale": BAD_INT, "patch": [0, 30], "n_patches": BAD_INT,
      "steps": BAD_INT, "adversarial_steps": [-1], "adversarial_weight": [-1.0], "seed": [-1], "device": ["tpu"]}),
    # udl.analysis.taxonomy (fig. 14.1), udl.models.progressive_gan and udl.train.progressive_gan (fig. 15.9)
    (taxonomy.probe, dict(system=SYSTEMS[-1], generator=0), {"system": ["GAN", None], "generator": [1.5, -1]}),
    (taxonomy.probe_systems, dict(systems=(SYSTEMS[-1],), generator=0),
     {"systems": ["x", [3]], "generator": [-1, 1.5]}),
    (taxonomy.region, dict(row={"samples": True, "probability": "exact", "latent": False}), {"row": [3, {}]}),
    (taxonomy.diffusion_log_weights, dict(process=diffusion.Diffusion.linear(2, 0.1, 0.2),
                                          denoiser=MLPDenoiser.tiny(d_in=1), x=torch.zeros(3, 1), n_samples=2),
     {"process": [None], "denoiser": [3], "x": [torch.zeros(3), "x"], "n_samples": BAD_INT, "generator": [1.5]}),
    (taxonomy.jacobian_rank, dict(fn=lambda z: 2 * z, z=torch.ones(2)),
     {"fn": [3], "z": [torch.ones(2, 2), "z"], "rtol": [0.0, 2.0]}),
    (progressive_model.ProgressiveGANConfig, dict(),
     {"d_latent": BAD_INT, "channels": BAD_INT, "widths": [(), "ab", (0,)], "slope": [1.0, -0.1]}),
    (progressive_model.ProgressiveGenerator, dict(config="tiny", generator=0),
     {"config": ["huge", 3], "generator": [1.5, -1]}),
    (progressive_model.ProgressiveDiscriminator, dict(config="tiny", generator=0),
     {"config": ["huge", 3], "generator": [1.5]}),
    (progressive_model.pixel_norm, dict(h=torch.ones(2, 3, 2, 2)), {"h": ["x", torch.ones(3)], "eps": [-1.0]}),
    (progressive_model.downsample, dict(images=torch.zeros(1, 1, 8, 8), resolution=4),
     {"images": [torch.zeros(8, 8), "x"], "resolution": [0, 3, 16]}),
    (progressive_train.train_progressive,
     dict(generator_net=progressive_model.ProgressiveGenerator("tiny", generator=0),
          discriminator_net=progressive_model.ProgressiveDiscriminator("tiny", generator=1),
          x=torch.rand(8, 1, 16, 16), stable_steps=1, fade_steps=1, batch_size=4, device="cpu"),
     {"generator_net": [None], "discriminator_net": [progressive_model.ProgressiveGenerator("tiny", generator=0)],
      "x": [torch.rand(8, 1, 8, 8), "x"], "stable_steps": BAD_INT, "fade_steps": [0], "batch_size": [0, 9],
      "loss": ["hinge"], "lr": [0.0], "betas": [(0.5,)], "seed": [-1], "device": ["tpu"], "on_stage_end": [3]}),
    (progressive_train.upsample_digits, dict(x=torch.zeros(2, 64)),
     {"x": [torch.zeros(2, 10), "x"], "size": [4, 2.5]}),
    (progressive_train.unupsample_digits, dict(images=torch.zeros(2, 1, 16, 16)),
     {"images": [torch.zeros(2, 1, 4, 4), "x"]}),
    (progressive_train.phases, dict(n_stages=3, stable_steps=2, fade_steps=1),
     {"n_stages": BAD_INT, "stable_steps": BAD_INT, "fade_steps": [0]}),
    (progressive_train.digits_progressive_gan, dict(config=progressive_model.ProgressiveGANConfig.tiny(),
                                                    stable_steps=1, fade_steps=1, batch_size=4, device="cpu"),
     {"config": ["huge", 3], "stable_steps": BAD_INT, "fade_steps": [0], "batch_size": [0], "seed": [-1]}),
    (penguin.PenguinEnv, dict(mdp=penguin.penguin_mrp(), max_steps=10, render_mode="ansi"),
     {"mdp": ["penguin", None.__class__], "render_mode": ["human", 3]}),
    (penguin.rollout, dict(env=penguin.PenguinEnv(), policy=np.zeros(16, dtype=np.int64), seed=0, max_steps=5),
     {"env": ["penguin"], "policy": [np.full(16, 4), np.full((16, 4), 0.3), "x"], "seed": [-1, 1.5], "max_steps": [0]}),
    (penguin.discounted_returns, dict(rewards=np.ones(3), gamma=0.9),
     {"rewards": [np.ones((2, 2)), [float("nan")]], "gamma": [1.5, -0.1, "a"]}),
    (penguin.penguin_mrp, dict(gamma=0.9), {"gamma": [1.0, -0.1, "a"]}),
    (pruning.prunable_weights, dict(model=torch.nn.Linear(4, 3)), {"model": ["x"]}),
    (pruning.magnitude_masks, dict(model=torch.nn.Linear(4, 3), sparsity=0.5),
     {"model": ["x", torch.nn.ReLU()], "sparsity": [1.5, -0.1, "a"], "scope": ["all"]}),
    (pruning.apply_masks, dict(model=torch.nn.Linear(4, 3), masks={"weight": torch.ones(3, 4, dtype=torch.bool)}),
     {"model": ["x"], "masks": [{}, {"w": torch.ones(3, 4, dtype=torch.bool)}, {"weight": torch.ones(4, 3)}]}),
    (pruning.sparsity, dict(masks={"w": torch.ones(2, 2, dtype=torch.bool)}), {"masks": [{}, {"w": torch.ones(2)}, "x"]}),
    (pruning.accuracy, dict(model=torch.nn.Linear(4, 3), x=torch.zeros(2, 4), y=torch.zeros(2, dtype=torch.long)),
     {"model": ["x"], "x": ["x"], "y": [torch.zeros(3, dtype=torch.long), "y"]}),
    (pruning.finetune, dict(model=torch.nn.Linear(4, 3), masks={"weight": torch.ones(3, 4, dtype=torch.bool)},
                            data=(torch.zeros(4, 4), torch.zeros(4, dtype=torch.long)), steps=2),
     {"model": ["x"], "masks": [{}, {"weight": torch.ones(4, 3, dtype=torch.bool)}],
      "data": ["x", (torch.zeros(4, 4), torch.zeros(3, dtype=torch.long))], "steps": [-1, 1.5], "lr": [0.0, "a"],
      "batch_size": BAD_INT, "seed": [-1]}),
    (pruning.prune_and_finetune, dict(model=torch.nn.Linear(4, 3), sparsity=0.5,
                                      data=(torch.zeros(4, 4), torch.zeros(4, dtype=torch.long)), steps=1),
     {"model": ["x"], "sparsity": [2.0], "scope": ["all"], "steps": [-1], "lr": [0.0]}),
    (pruning.iterative_pruning, dict(model=torch.nn.Linear(4, 3), sparsity=0.5,
                                     data=(torch.zeros(4, 4), torch.zeros(4, dtype=torch.long)), rounds=2, steps=1),
     {"model": ["x"], "sparsity": [-0.5], "rounds": BAD_INT, "scope": ["x"], "steps": [-1]}),
    (pruning.digit_mlp, dict(hidden=(4,), steps=2), {"hidden": [(0,), 3], "steps": BAD_INT, "lr": [0.0], "seed": [-1],
                                                     "device": ["tpu"]}),
    (attacks.fgsm, dict(model=torch.nn.Sequential(torch.nn.Flatten(), deep.DeepNetwork([4, 3], generator=0)),
                        x=torch.full((2, 4), 0.5), y=torch.zeros(2, dtype=torch.long), eps=0.1),
     {"model": ["x"], "x": [torch.full((2, 4), 2.0), "x", torch.zeros(2, 4, dtype=torch.long)],
      "y": [torch.zeros(3, dtype=torch.long), torch.zeros(2)], "eps": [-0.1, 1.5, "a"]}),
    (attacks.pgd, dict(model=torch.nn.Sequential(torch.nn.Flatten(), deep.DeepNetwork([4, 3], generator=0)),
                       x=torch.full((2, 4), 0.5), y=torch.zeros(2, dtype=torch.long), eps=0.1, steps=2, generator=0),
     {"model": ["x"], "x": [torch.full((2, 4), -1.0)], "y": [torch.zeros(2)], "eps": [-0.1], "steps": BAD_INT,
      "step_size": [0.0, "a"], "random_start": [1], "generator": [1.5, -1]}),
    (attacks.accuracy_under_attack,
     dict(model=torch.nn.Sequential(torch.nn.Flatten(), deep.DeepNetwork([4, 3], generator=0)),
          x=torch.full((2, 4), 0.5), y=torch.zeros(2, dtype=torch.long), eps_values=[0.0, 0.1], attack="fgsm"),
     {"model": ["x"], "x": ["x"], "y": [torch.zeros(3, dtype=torch.long)], "eps_values": [[], [1.5], "a"],
      "attack": ["cw", 3], "steps": BAD_INT, "random_start": [1], "generator": [1.5]}),
]
# Public classes that are plain records of results or data (no behaviour to misuse), and
# the figure framework's own types (tests/test_registry.py tries them).
RECORDS = {"MNIST1D", "ToyData", "MDP", "LossNotFiniteError",
           "Check", "FigureSpec", "Limit", "Params", "Result", "UnknownFigure"}


def _bad_calls():
    for fn, good, bad in CASES:
        for name, values in bad.items():
            for value in values:
                yield pytest.param(fn, good, name, value, id=f"{fn.__qualname__}-{name}={value!r}")


def _template(name):
    """udl.validate's one-line message naming the parameter ``name``: ``The 'name' parameter of Owner must <what is
    wanted>. Got <what was given> instead.`` (any owner; "must be a positive int", "must divide d_model = 8", ...)."""
    return re.compile(rf"The {re.escape(repr(name))} parameter of [A-Za-z_][\w.]* must .+\. Got .+ instead\.")


@pytest.mark.parametrize("fn, good, name, value", list(_bad_calls()))
def test_bad_argument_is_refused_with_a_clear_message(fn, good, name, value):
    with pytest.raises((ValueError, TypeError)) as info:
        fn(**{**good, name: value})
    message = str(info.value)
    assert _template(name).fullmatch(message), f"not the one-line template for {name!r}: {message!r}"


# Entry points that work in place and return None: what they must have done to their arguments.
IN_PLACE = {
    nn_init.he_init: lambda args: bool((args["module"].bias == 0).all()),  # biases 0, weights N(0, 2 / fan-in)
    nn_init.init_parameters: lambda args: bool((args["module"].weight.abs() <= 2 ** -0.5).all()),  # U(±1/√fan_in)
}


def _assert_sensible(result, where="result"):
    """What a working call returns: no NaN (-inf is a masked logit), containers of such values, never None."""
    assert result is not None, f"{where} is None"
    if isinstance(result, torch.Tensor):
        if result.dtype.is_floating_point and result.device.type != "meta":
            assert not torch.isnan(result).any(), f"{where} has NaN entries"
    elif isinstance(result, np.ndarray):
        if result.dtype.kind == "f":
            assert not np.isnan(result).any(), f"{where} has NaN entries"
    elif isinstance(result, (bool, int, float, np.number)):
        assert not np.isnan(float(result)), f"{where} = {result}"
    elif isinstance(result, (tuple, list)):
        for i, item in enumerate(result):
            if item is not None:
                _assert_sensible(item, f"{where}[{i}]")
    elif isinstance(result, dict):
        for key, item in result.items():
            if item is not None:
                _assert_sensible(item, f"{where}[{key!r}]")


@pytest.mark.parametrize("fn, good", [(fn, good) for fn, good, _ in CASES if fn is not gallery.build_gallery],
                         ids=lambda v: getattr(v, "__qualname__", ""))
def test_good_arguments_work(fn, good):
    result = fn(**good)
    if inspect.isclass(fn):
        assert isinstance(result, fn)
    elif fn in IN_PLACE:
        assert result is None and IN_PLACE[fn](good)
    else:
        _assert_sensible(result, fn.__qualname__)


def _library_classes():
    for info in pkgutil.walk_packages(udl.__path__, "udl."):
        if info.name.startswith(("udl.figures", "udl.cli", "udl.__main__")):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and not issubclass(obj, tuple):
                yield name, obj


def test_every_public_class_has_a_row():
    covered = {fn.__name__ for fn, _, _ in CASES} | RECORDS
    missing = sorted({name for name, _ in _library_classes()} - covered)
    assert not missing, f"add these public classes to CASES (or RECORDS): {missing}"


def test_the_template_message():
    with pytest.raises(ValueError, match=r"^The 'd_hidden' parameter of ShallowNetwork must be a positive int\. "
                                         r"Got 0 instead\.$"):
        shallow.ShallowNetwork(1, 0, 1)
    assert np.isfinite(regions.max_regions(2, 3))
