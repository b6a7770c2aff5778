"""The ART wrapper of models that are not torch modules (``benchmark.array_estimator``): counts, memory, and
gradients delegated to ART's scikit-learn estimators."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.array_estimator import ArrayClassifier, ArrayModel, wrap_arrays
from benchmark.errors import AttackError

SHAPE = (1, 8, 8)
CLASSES = 3


@pytest.fixture(scope="module")
def logistic():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features, labels = rng.random((60, 64), dtype=np.float32), rng.integers(0, CLASSES, 60)
    return LogisticRegression(max_iter=200).fit(features, labels), features.reshape(-1, *SHAPE)[:20]


def sklearn_model(estimator, *, gradients: bool = True) -> ArrayModel:
    from art.estimators.classification import SklearnClassifier

    return ArrayModel(predict=lambda x: estimator.predict_proba(x.reshape(len(x), -1)),
                      art_estimator=SklearnClassifier(estimator, clip_values=(0.0, 1.0)) if gradients else None,
                      outputs="probabilities")


def test_predict_counts_samples_and_batches(logistic):
    estimator, x = logistic
    calls = []
    model = ArrayModel(predict=lambda batch: calls.append(len(batch)) or estimator.predict_proba(
        batch.reshape(len(batch), -1)))
    wrapped = wrap_arrays(model, SHAPE, CLASSES)
    scores = wrapped.predict(x.astype(np.float64), batch_size=8)
    assert scores.dtype == np.float32 and scores.shape == (20, CLASSES)
    assert np.allclose(scores, estimator.predict_proba(x.reshape(20, -1)))
    assert calls == [8, 8, 4] and wrapped.counts["predict"] == 20
    assert wrapped.predict(x[:0]).shape == (0, CLASSES)


def test_memoized_predicts_each_input_once(logistic):
    estimator, x = logistic
    wrapped = wrap_arrays(sklearn_model(estimator), SHAPE, CLASSES)
    outside = wrapped.predict(x)
    with wrapped.memoized():
        first = wrapped.predict(x[:10])
        with wrapped.memoized():  # nested: the same memory
            again = wrapped.predict(x)
    assert wrapped.counts["predict"] == 20 + 10 + 10  # the second block computed only the 10 it had not seen
    assert np.array_equal(again, outside) and np.array_equal(first, outside[:10])
    wrapped.predict(x)
    assert wrapped.counts["predict"] == 60  # no memory outside the block


def test_gradients_are_arts_in_the_data_shape(logistic):
    from art.estimators.classification import SklearnClassifier

    estimator, x = logistic
    wrapped = wrap_arrays(sklearn_model(estimator), SHAPE, CLASSES)
    art = SklearnClassifier(estimator, clip_values=(0.0, 1.0))
    flat, labels = x.reshape(20, -1), np.eye(CLASSES)[np.arange(20) % CLASSES]
    grad = wrapped.loss_gradient(x, labels)
    assert grad.shape == x.shape and grad.dtype == np.float32 and np.abs(grad).sum() > 0
    assert np.allclose(grad.reshape(20, -1), art.loss_gradient(flat, labels), atol=1e-6)
    assert wrapped.counts["grad"] == 20
    every = wrapped.class_gradient(x)
    assert every.shape == (20, CLASSES, *SHAPE)
    assert np.allclose(every.reshape(20, CLASSES, -1), art.class_gradient(flat), atol=1e-6)
    assert wrapped.counts["grad"] == 20 + 20 * CLASSES  # one per class asked for, as a torch model's backward passes
    some = wrapped.class_gradient(x, label=np.arange(20) % 2)
    assert some.shape == (20, 1, *SHAPE) and wrapped.counts["grad"] == 20 + 20 * CLASSES + 20 * 2
    wrapped.class_gradient(x, label=1)
    assert wrapped.counts["grad"] == 20 + 20 * CLASSES + 20 * 2 + 20


def test_a_black_box_refuses_gradients(logistic):
    estimator, x = logistic
    wrapped = wrap_arrays(sklearn_model(estimator, gradients=False), SHAPE, CLASSES)
    with pytest.raises(AttackError, match="black box"):
        wrapped.loss_gradient(x, np.eye(CLASSES)[[0] * 20])
    with pytest.raises(AttackError, match="black box"):
        wrapped.class_gradient(x)
    assert wrapped.counts["grad"] == 0


def test_every_art_attack_accepts_it_by_type(logistic):
    """ART checks an estimator's type (``estimator_requirements``) when an attack is built."""
    from art.attacks.evasion import (
        CarliniL2Method,
        CarliniLInfMethod,
        DeepFool,
        FastGradientMethod,
        HopSkipJump,
        ProjectedGradientDescentNumpy,
        SquareAttack,
    )

    wrapped = wrap_arrays(sklearn_model(logistic[0]), SHAPE, CLASSES)
    assert isinstance(wrapped, ArrayClassifier) and wrapped.clip_values.tolist() == [0.0, 1.0]
    for attack in (CarliniL2Method, CarliniLInfMethod, DeepFool, FastGradientMethod, HopSkipJump,
                   ProjectedGradientDescentNumpy, SquareAttack):
        attack(wrapped)


def test_fgsm_runs_on_a_logistic_regression(logistic):
    from art.attacks.evasion import FastGradientMethod

    estimator, x = logistic
    wrapped = wrap_arrays(sklearn_model(estimator), SHAPE, CLASSES)
    clean = wrapped.predict(x).argmax(1)
    adversarial = FastGradientMethod(wrapped, eps=0.3).generate(x=x, y=np.eye(CLASSES)[clean])
    assert adversarial.shape == x.shape and np.abs(adversarial - x).max() <= 0.3 + 1e-6
    assert (wrapped.predict(adversarial).argmax(1) != clean).mean() > 0.5
    assert wrapped.counts["grad"] >= 20


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_pgd_on_a_logistic_regression_takes_arts_numpy_steps(logistic, norm):
    """Without a random start the harness's NumPy PGD gives ART's ProjectedGradientDescentNumpy's iterates; with
    one, every sample gets the same result alone as in its batch, to float rounding (the start is drawn from its
    key)."""
    from art.attacks.evasion.projected_gradient_descent.projected_gradient_descent_numpy import (
        ProjectedGradientDescentNumpy,
    )

    from attacks.pgd import PGD
    from benchmark.api import art_norm

    estimator, x = logistic
    wrapped = wrap_arrays(sklearn_model(estimator), SHAPE, CLASSES)
    y = wrapped.predict(x).argmax(1)
    eps = 0.1 if norm == "inf" else 1.0
    ours = PGD(steps=7, random_start=False).generate(wrapped, x, y, eps=eps, norm=norm, keys=np.arange(len(x)),
                                                     batch_size=8)
    art = ProjectedGradientDescentNumpy(wrapped, norm=art_norm(norm), eps=eps, eps_step=0.25 * eps, max_iter=7,
                                        num_random_init=0, batch_size=8, verbose=False).generate(x, np.eye(CLASSES)[y])
    np.testing.assert_allclose(ours, art, atol=1e-5)
    assert (wrapped.predict(ours).argmax(1) != y).any()
    keys = np.arange(len(x)) + 100
    batch = PGD(steps=7).generate(wrapped, x, y, eps=eps, norm=norm, keys=keys, batch_size=8)
    alone = PGD(steps=7).generate(wrapped, x[3:4], y[3:4], eps=eps, norm=norm, keys=keys[3:4], batch_size=8)
    np.testing.assert_allclose(batch[3:4], alone, atol=1e-6)  # scikit-learn's batched products round differently
