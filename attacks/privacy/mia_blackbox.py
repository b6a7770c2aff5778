"""Black-box membership inference with a learned attack model (Shokri et al. 2017, "Membership Inference Attacks
against Machine Learning Models", arXiv:1610.05820; with the target's loss as feature, Yeom et al. 2018), run through
ART's ``MembershipInferenceBlackBox``.

Threat model: black-box, score-based (it sees the model's outputs, never its gradients), with known members and
non-members to learn from, as the paper's shadow models would give them. The attack model is fit on the split's
attack-train halves and scores the evaluation halves with its probability of "member". Its input is the model's loss
on the true label (``input_type="loss"``) or its output vector beside the true label (``"prediction"``). The
defaults differ from ART's (``nn`` on predictions): measured on an MLP overfit to 40–100 digits, with 20–50
attack-train samples per side, ART's default reached AUC 0.49–0.56 and a random forest on the loss 0.66–0.82.
Deterministic given the seed: scikit-learn models get ``random_state``, ART's network is built and shuffled under
seeded global generators (restored afterwards). Cost: one prediction per sample of all four halves.

Example::

    bench evaluate --privacy mia-blackbox:attack_model_type=gb,input_type=prediction --n-train 100
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import PRIVACY
from benchmark.api import MembershipData
from benchmark.constraints import Constrained, Interval, Options
from benchmark.membership import one_hot, seeded_globals

#: ART's attack models: its neural network, random forest, gradient boosting, logistic regression, decision tree,
#: k nearest neighbours, SVM.
MODEL_TYPES = ("nn", "rf", "gb", "lr", "dt", "knn", "svm")


@PRIVACY.register("mia-blackbox")
@dataclass(frozen=True)
class MIABlackBox(Constrained):
    """Membership inference by a learned attack model (Shokri et al. 2017), ART ``MembershipInferenceBlackBox``.

    Args:
        attack_model_type: ART's attack model: nn, rf (random forest), gb (gradient boosting), lr (logistic
            regression), dt (decision tree), knn, svm.
        input_type: what the attack model sees of each sample: "loss" (the model's cross-entropy on its label) or
            "prediction" (the model's outputs, with the label beside them).
        nn_epochs: training epochs of ART's network (``attack_model_type=nn`` only).
    """

    attack_model_type: str = "rf"
    input_type: str = "loss"
    nn_epochs: int = 100

    parameter_constraints: ClassVar[dict] = {
        "attack_model_type": Options(*MODEL_TYPES),
        "input_type": Options("loss", "prediction"),
        "nn_epochs": Interval(int, 1, 100_000),
    }
    kind: ClassVar[str] = "membership"
    labels_only: ClassVar[bool] = False
    needs_grad: ClassVar[bool] = False

    def scores(self, estimator, data: MembershipData, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
        from art.attacks.inference.membership_inference import MembershipInferenceBlackBox

        classes = estimator.nb_classes
        with seeded_globals(seed):
            attack = MembershipInferenceBlackBox(estimator, input_type=self.input_type,
                                                 attack_model_type=self.attack_model_type,
                                                 nn_model_epochs=self.nn_epochs)
            model = attack.attack_model  # None for ART's network: built in ``fit``, under the seeded generators
            if model is not None and "random_state" in model.get_params():
                model.set_params(random_state=seed)
            attack.fit(data.x_train_in, one_hot(data.y_train_in, classes),
                       data.x_train_out, one_hot(data.y_train_out, classes))
            members = attack.infer(data.x_eval_in, one_hot(data.y_eval_in, classes), probabilities=True)
            nonmembers = attack.infer(data.x_eval_out, one_hot(data.y_eval_out, classes), probabilities=True)
        return members.reshape(-1).astype(np.float64), nonmembers.reshape(-1).astype(np.float64)
