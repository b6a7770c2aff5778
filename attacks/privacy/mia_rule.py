"""Rule-based membership inference (Yeom et al. 2018, "Privacy Risk in Machine Learning: Analyzing the Connection to
Overfitting", arXiv:1709.01604, its attack on the 0–1 loss), run through ART's
``MembershipInferenceBlackBoxRuleBased``.

Threat model: black-box, labels only (it sees the predicted class): a sample is called a member when the model
classifies it correctly. Scores are 0 or 1, so its ROC has one threshold: AUC = (1 + TPR − FPR) / 2, where TPR is
the model's accuracy on the members and FPR its accuracy on the non-members, and it reaches no TPR at a low FPR
unless the model errs on almost every non-member. Cost: one prediction per evaluation sample; it needs no
attack-train half.

Example::

    bench evaluate --privacy mia-rule --n-train 100
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import PRIVACY
from benchmark.api import MembershipData
from benchmark.constraints import Constrained
from benchmark.membership import one_hot


@PRIVACY.register("mia-rule")
@dataclass(frozen=True)
class MIARule(Constrained):
    """Membership inference by the rule "correctly classified ⇒ member" (Yeom et al. 2018), ART
    ``MembershipInferenceBlackBoxRuleBased``. No parameters."""

    parameter_constraints: ClassVar[dict] = {}
    kind: ClassVar[str] = "membership"
    labels_only: ClassVar[bool] = True
    needs_grad: ClassVar[bool] = False

    def scores(self, estimator, data: MembershipData, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
        from art.attacks.inference.membership_inference import MembershipInferenceBlackBoxRuleBased

        attack = MembershipInferenceBlackBoxRuleBased(estimator)
        members = attack.infer(data.x_eval_in, one_hot(data.y_eval_in, estimator.nb_classes))
        nonmembers = attack.infer(data.x_eval_out, one_hot(data.y_eval_out, estimator.nb_classes))
        return members.astype(np.float64), nonmembers.astype(np.float64)
