import numpy as np
import pytest
import scipy.linalg
import torch

from udl.analysis.generative import (DigitClassifier, class_share, digit_classifier, digit_features,
                                     evaluate_digits, evaluation_table, frechet_distance, memorisation,
                                     precision_recall, trivial_digits)
from udl.data.images import load_digits


def _exact_moments(rng, n, mean, cov):
    """n points whose sample mean is exactly ``mean`` and sample covariance (ddof 1) exactly ``cov``."""
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z, rowvar=False)))).T  # whitened: covariance I
    return mean + z @ np.linalg.cholesky(cov).T


def _random_cov(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# --------------------------------------------------------------------------- Fréchet distance
def test_frechet_distance_equals_the_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    d = 6
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    # diagonal (commuting) covariances: d² = ‖Δμ‖² + Σ_i (√a_i − √b_i)²
    va, vb = rng.uniform(0.2, 3.0, d), rng.uniform(0.2, 3.0, d)
    a, b = _exact_moments(rng, 500, mu_a, np.diag(va)), _exact_moments(rng, 300, mu_b, np.diag(vb))
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(va) - np.sqrt(vb)) ** 2).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)
    # Σ_a = I, Σ_b full: d² = ‖Δμ‖² + Σ_i (1 − √λ_i(Σ_b))²
    cov_b = _random_cov(rng, d)
    a, b = _exact_moments(rng, 400, mu_a, np.eye(d)), _exact_moments(rng, 400, mu_b, cov_b)
    expected = ((mu_a - mu_b) ** 2).sum() + ((1 - np.sqrt(np.linalg.eigvalsh(cov_b))) ** 2).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)
    # 1-D: the squared 2-Wasserstein distance (μ_a − μ_b)² + (σ_a − σ_b)²
    a, b = _exact_moments(rng, 50, np.array([1.0]), np.eye(1) * 4.0), _exact_moments(rng, 80, np.array([-1.0]),
                                                                                      np.eye(1) * 0.25)
    assert frechet_distance(a, b) == pytest.approx(4.0 + 1.5 ** 2, rel=1e-12)


def test_frechet_distance_equals_scipy_sqrtm_reference():
    rng = np.random.default_rng(1)
    for d, n_a, n_b in [(3, 40, 60), (16, 200, 150), (64, 359, 359)]:
        a = rng.standard_normal((n_a, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)
        b = rng.standard_normal((n_b, d)) @ rng.standard_normal((d, d))
        sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        root = scipy.linalg.sqrtm(sa @ sb).real
        reference = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sa + sb - 2 * root)
        assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-8, abs=1e-8)
        assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(reference, rel=1e-8)


def test_frechet_distance_of_large_samples_approaches_the_population_distance():
    rng = np.random.default_rng(2)
    d = 4
    cov_a, cov_b = _random_cov(rng, d), _random_cov(rng, d)
    root_a = scipy.linalg.sqrtm(cov_a).real
    population = 1.0 * d + np.trace(cov_a + cov_b - 2 * scipy.linalg.sqrtm(root_a @ cov_b @ root_a).real)
    a = rng.multivariate_normal(np.zeros(d), cov_a, 200_000)
    b = rng.multivariate_normal(np.ones(d), cov_b, 200_000)
    assert frechet_distance(a, b) == pytest.approx(population, rel=0.02)


def test_frechet_distance_is_zero_for_one_set_and_symmetric():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((30, 64)), rng.standard_normal((40, 64))  # fewer points than features: singular Σ
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-8)


def test_frechet_distance_refusals():
    with pytest.raises(ValueError, match="'features_b' parameter of frechet_distance must be features of the same"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="finite"):
        frechet_distance(np.full((3, 3), np.nan), np.zeros((5, 3)))


# --------------------------------------------------------------------------- precision and recall
def test_precision_recall_on_a_line_with_known_answers():
    real = np.arange(10.0)[:, None]  # 0, 1, ..., 9: with k = 1 every radius is 1
    samples = np.array([[0.5], [3.2], [20.0], [30.0]])
    # precision: 0.5 and 3.2 lie within 1 of a real point, 20 and 30 do not -> 2/4
    # recall: sample radii (k = 1) are 2.7, 2.7, 10, 10; the balls around 0.5 and 3.2 cover 0..5 -> 6/10
    assert precision_recall(samples, real, k=1) == pytest.approx((0.5, 0.6))
    # k = 2: real radii 2; 3.2 and 0.5 still in, 20 and 30 out. Sample radii: 19.5, 16.8, 16.8, 26.8:
    # the balls around 0.5 and 3.2 cover every real point -> recall 1
    assert precision_recall(samples, real, k=2) == pytest.approx((0.5, 1.0))


def test_precision_recall_of_the_real_set_itself_and_of_a_dropped_mode():
    rng = np.random.default_rng(4)
    mode_a = rng.standard_normal((50, 2))
    mode_b = rng.standard_normal((50, 2)) + np.array([100.0, 0.0])
    real = np.concatenate([mode_a, mode_b])
    assert precision_recall(real, real) == (1.0, 1.0)
    # samples from one mode only: all of them look real, half the real data is never produced
    assert precision_recall(mode_a, real) == (1.0, 0.5)
    # samples far from everything: neither
    assert precision_recall(mode_a + np.array([0.0, 50.0]), real) == (0.0, 0.0)


def test_precision_recall_equals_a_brute_force_loop():
    rng = np.random.default_rng(5)
    s, r = rng.standard_normal((30, 3)), rng.standard_normal((40, 3)) * 1.5 + 0.5
    k = 3

    def radius(points, i):
        return sorted(np.linalg.norm(points - points[i], axis=1))[k]

    precision = np.mean([any(np.linalg.norm(x - r[j]) <= radius(r, j) for j in range(len(r))) for x in s])
    recall = np.mean([any(np.linalg.norm(x - s[j]) <= radius(s, j) for j in range(len(s))) for x in r])
    assert precision_recall(s, r, k=k) == pytest.approx((precision, recall))
    assert 0 < precision < 1 and 0 < recall < 1


def test_precision_recall_refusals():
    with pytest.raises(ValueError, match="'sample_features' parameter of precision_recall .* N >= 4"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)
    with pytest.raises(ValueError, match="'k' parameter of precision_recall must be a positive int"):
        precision_recall(np.zeros((5, 2)), np.zeros((5, 2)), k=0)


# --------------------------------------------------------------------------- the classifier and its features
def test_classifier_held_out_accuracy():
    model = digit_classifier()
    record = model.record
    assert isinstance(model, DigitClassifier) and not model.training
    x, y = load_digits("test", seed=0, flat=False)
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(x)[:, None]).argmax(1).numpy() == y).mean()
    assert accuracy >= 0.98  # measured: 0.994 (357 of 359)
    assert record["test_accuracy"] == pytest.approx(accuracy)
    assert class_share(x, y) == pytest.approx(accuracy)
    again = digit_classifier()  # the cached copy: the same weights, a fresh module
    assert again is not model
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))


def test_class_share_counts_the_requested_class():
    x, y = load_digits("test", seed=0)
    assert class_share(x, (y + 1) % 10) <= 0.02
    zeros = x[y == 0]
    assert class_share(zeros, 0) == pytest.approx(class_share(zeros, np.zeros(len(zeros), dtype=int)))
    assert class_share(zeros, 0) >= 0.97
    assert class_share(torch.from_numpy(zeros), torch.zeros(len(zeros), dtype=torch.long)) == class_share(zeros, 0)


def test_digit_features_shapes_and_layouts():
    x, _ = load_digits("test", seed=0)
    flat = digit_features(x[:20])
    assert flat.shape == (20, 64) and flat.dtype == np.float64
    np.testing.assert_array_equal(flat, digit_features(torch.from_numpy(x[:20]).reshape(20, 1, 8, 8)))
    np.testing.assert_array_equal(flat, digit_features(x[:20].reshape(20, 8, 8)))
    np.testing.assert_array_equal(digit_features(x[:20] * 2.0), digit_features(np.clip(x[:20] * 2.0, 0, 1)))
    assert (flat >= 0).all() and (flat > 0).any()  # after a ReLU


def test_real_digits_are_close_and_the_trivial_model_is_far():
    x_test, _ = load_digits("test", seed=0)
    x_train, _ = load_digits("train", seed=0)
    reference = digit_features(x_train)
    floor = frechet_distance(digit_features(x_test), reference)
    ceiling = frechet_distance(digit_features(trivial_digits(len(x_test), generator=0)), reference)
    assert ceiling > 10 * floor  # measured: 107 vs 3.6


def test_trivial_digits_match_the_pixel_statistics():
    x, y = load_digits("train", seed=0)
    fake = trivial_digits(20_000, generator=1).reshape(-1, 64).double().numpy()
    assert fake.min() >= 0 and fake.max() <= 1
    # clipping moves the means a little; the per-pixel correlation is gone
    assert np.abs(fake.mean(0) - x.mean(0)).max() < 0.08
    assert np.abs(np.corrcoef(fake[:, 27], fake[:, 28])[0, 1]) < 0.03
    sevens = trivial_digits(5000, classes=7, generator=2).reshape(-1, 64).numpy()
    assert np.abs(sevens.mean(0) - x[y == 7].mean(0)).max() < 0.08
    assert torch.equal(trivial_digits(5, generator=3), trivial_digits(5, generator=3))


# --------------------------------------------------------------------------- memorisation
def test_memorisation_flags_copied_training_images():
    x_train, _ = load_digits("train", seed=0)
    x_test, _ = load_digits("test", seed=0)
    copies = x_train[np.random.default_rng(0).permutation(len(x_train))[:200]]
    result = memorisation(copies, x_train, x_test)
    assert not result["passes"] and result["p_value"] < 1e-10 and result["share_closer"] > result["allowed"]
    assert result["median_sample"] == 0.0 and result["median_held_out"] > 0.5
    assert result["closer_than_any_held_out"] == 200
    # copies with a little noise: still much closer than unseen digits are
    noisy = np.clip(copies + np.random.default_rng(1).normal(0, 0.03, copies.shape), 0, 1)
    assert not memorisation(noisy, x_train, x_test)["passes"]
    # a model that copies a tenth of its samples and draws the rest afresh is caught, every time
    for trial in range(10):
        rng = np.random.default_rng(trial)
        order = rng.permutation(len(x_test))
        mixed = np.concatenate([x_test[order[:162]], x_train[rng.permutation(len(x_train))[:18]]])
        assert not memorisation(mixed, x_train, x_test[order[180:]])["passes"]


def test_memorisation_passes_unseen_real_images():
    x_train, _ = load_digits("train", seed=0)
    x_test, _ = load_digits("test", seed=0)
    for trial in range(20):  # no false alarm over 20 random halves (300 of 300 measured)
        order = np.random.default_rng(trial).permutation(len(x_test))
        result = memorisation(x_test[order[:180]], x_train, x_test[order[180:]])
        assert result["passes"] and result["p_value"] > 1e-3
    assert result["sample_distances"].shape == (180,) and result["held_out_distances"].shape == (179,)
    assert result["expected"] == pytest.approx(np.ceil(0.05 * 359) / 359)
    assert memorisation(trivial_digits(300, generator=0), x_train, x_test)["passes"]


def test_memorisation_p_value_equals_a_permutation_test():
    x_train, _ = load_digits("train", seed=0)
    x_test, _ = load_digits("test", seed=0)
    rng = np.random.default_rng(7)
    mixed = np.concatenate([x_test[:170], x_train[:10]])  # a few copies: a p-value between 1e-4 and 0.5
    result = memorisation(mixed, x_train, x_test[180:])
    pooled = np.concatenate([result["held_out_distances"], result["sample_distances"]])
    n_h, k = len(result["held_out_distances"]), int(np.ceil(0.05 * len(pooled)))
    closest = np.argsort(pooled, kind="stable")[:k]
    observed = (closest >= n_h).sum()
    draws = 20_000  # relabel which distances are samples, keep the K closest positions
    labels = np.array([rng.permutation(len(pooled))[:len(mixed)] for _ in range(draws)])  # sample positions
    counts = np.isin(labels, closest).sum(axis=1)
    permutation_p = (counts >= observed).mean()
    assert 1e-3 < result["p_value"] < 0.5
    assert result["p_value"] == pytest.approx(permutation_p, rel=0.1)


# --------------------------------------------------------------------------- the whole table
def test_evaluate_digits_real_digits_score_as_the_floor():
    x_test, y_test = load_digits("test", seed=0)
    result = evaluate_digits(x_test, classes=y_test)
    model, floor, ceiling = result["model"], result["floor"], result["ceiling"]
    for key in ("frechet", "precision", "recall", "class_share", "memorisation_share"):
        assert model[key] == pytest.approx(floor[key])  # the samples are the held-out digits themselves
    assert model["memorisation_passes"] and floor["memorisation_passes"]
    assert ceiling["frechet"] > 5 * floor["frechet"]
    assert ceiling["precision"] < floor["precision"] and ceiling["recall"] < floor["recall"]
    assert model["class_share"] >= 0.98 and result["classifier_accuracy"] >= 0.98


def test_evaluate_digits_sees_a_copying_model_and_a_bad_one():
    x_train, y_train = load_digits("train", seed=0)
    copied = evaluate_digits(x_train[:300])
    assert not copied["model"]["memorisation_passes"] and copied["floor"]["memorisation_passes"]
    assert copied["model"]["class_share"] is None and copied["model"]["count"] == 300
    blurry = evaluate_digits(trivial_digits(300, generator=5))
    assert blurry["model"]["frechet"] > 10 * blurry["floor"]["frechet"]
    # more samples than held-out digits: the table is measured on 359 of them, the class share on all
    many = evaluate_digits(x_train[:500], classes=y_train[:500])
    assert many["model"]["count"] == 500 and many["floor"]["count"] == 359 and many["ceiling"]["count"] == 359
    assert many["model"]["class_share"] >= 0.99


def test_evaluate_digits_refusals():
    with pytest.raises(ValueError, match="'samples' parameter of evaluate_digits"):
        evaluate_digits(np.zeros((10, 7)))
    with pytest.raises(ValueError, match="'classes' parameter of evaluate_digits"):
        evaluate_digits(np.zeros((10, 64)), classes=[1, 2])
    with pytest.raises(ValueError, match="'classes' parameter of evaluate_digits"):
        evaluate_digits(np.zeros((10, 64)), classes=10)
    with pytest.raises(TypeError, match="'classes' parameter of evaluate_digits"):
        evaluate_digits(np.zeros((10, 64)), classes=np.zeros(10))


def test_evaluation_table_prints_the_three_rows():
    x_train, y_train = load_digits("train", seed=0)
    result = evaluate_digits(x_train[:100], classes=y_train[:100])
    lines = evaluation_table(result).splitlines()
    assert len(lines) == 4 and lines[1].startswith("model") and "FAILS" in lines[1]
    assert f"{result['ceiling']['frechet']:.2f}" in lines[3] and "passes" in lines[2]
    with pytest.raises(TypeError, match="'result' parameter of evaluation_table"):
        evaluation_table({"model": 1})
