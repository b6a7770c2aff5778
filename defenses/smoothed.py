"""``Smoothed``: a ``Preprocessed`` network behind Gaussian input noise whose predictions are the smoothed classifier's
(``defenses/smoothing.py`` says why). Imports torch: loaded only when a model is wrapped."""

from __future__ import annotations

from typing import Any

import torch

from defenses.preprocessed import Preprocessed

#: Noisy inputs per forward pass of the net when voting.
VOTE_BATCH = 10_000


class Smoothed(Preprocessed):
    """``Preprocessed`` with ``step``'s Gaussian noise (σ = ``sigma``), except that a forward pass without gradients (a
    prediction: the clean check, each break's verification, the probes) is Cohen et al.'s smoothed classifier g: the
    class most of ``votes`` noisy draws x + N(0, σ²I), clipped to [0, 1] as ART's GaussianAugmentation clips, are
    classified as (ties to the lowest class). Its scores are log vote shares, smoothed by half a vote per class so
    that they stay finite. With gradients (what the attacks differentiate) it is one noisy draw, as ``Preprocessed``:
    naive or BPDA, averaged over draws by EoT."""

    def __init__(self, net: torch.nn.Module, step: Any, mode: str = "naive", *, art: Any = None, sigma: float,
                 votes: int) -> None:
        super().__init__(net, step, mode, art=art)
        self.sigma, self.votes = float(sigma), int(votes)

    def with_mode(self, mode: str) -> Smoothed:
        return Smoothed(self.net, self.step, mode, art=self.art, sigma=self.sigma, votes=self.votes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) if torch.is_grad_enabled() else self.vote(x)

    def vote(self, x: torch.Tensor) -> torch.Tensor:
        chunk = max(1, VOTE_BATCH // self.votes)
        counts = torch.cat([self._counts(x[first : first + chunk]) for first in range(0, len(x), chunk)])
        return torch.log((counts + 0.5) / (self.votes + 0.5 * counts.shape[1]))

    def _counts(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x.repeat_interleave(self.votes, dim=0)
        noisy = (inputs + self.sigma * torch.randn_like(inputs)).clamp(0.0, 1.0)
        logits = self.net(noisy)
        predicted = logits.argmax(dim=1).view(len(x), self.votes)
        return torch.nn.functional.one_hot(predicted, logits.shape[1]).sum(dim=1).to(x.dtype)
