"""Differential privacy through Opacus: DP-SGD's training loop and the accounting every private defense shares.

DP-SGD (Abadi et al. 2016, "Deep learning with differential privacy", arXiv:1607.00133) is a wrapper around an
unchanged per-batch objective: batches are Poisson samples (each training sample joins with probability
``q = batch_size / n``: the batch sampler of Opacus's ``DPDataLoader``, so the accountant's assumption holds),
Opacus's ``GradSampleModule`` hooks give per-sample gradients of the objective, and its ``DPOptimizer`` clips each to
``max_grad_norm``, adds N(0, σ²·max_grad_norm²) to their sum and divides by the expected batch size before the
optimiser's step. The accountant (Opacus's RDP or PRV) counts the noisy steps through the optimiser's step hook.
Everything random (the batches, the noise) is drawn from generators seeded from the run's seed.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from opacus import GradSampleModule
from opacus.accountants import IAccountant, create_accountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.optimizers import DPOptimizer
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from opacus.validators import ModuleValidator

from benchmark.api import DataBundle, RunContext
from benchmark.recipes import Recipe, learning_rate
from defenses._train import BatchLoss, make_optimiser, set_lr, tensors, unit_tensor, update

#: Salts of the seed: the Poisson batches and the gradient noise are streams of their own.
POISSON_SALT, NOISE_SALT = 0xB47C, 0x9015E
#: How close to ``target_epsilon`` Opacus's search for σ ends (its default): the ε spent is in [target − 0.01, target].
EPSILON_TOLERANCE = 0.01
NORM_FIX = "build it with norm=group (e.g. --model preact-resnet18:norm=group)"


def model_refusal(model: torch.nn.Module) -> str | None:
    """Why ``model`` cannot be trained privately (Opacus's ``ModuleValidator``: BatchNorm mixes the samples of a
    batch), with the fix; None when it can."""
    errors = ModuleValidator.validate(model, strict=False)
    if not errors:
        return None
    layers = sorted({type(module).__name__ for module in model.modules()
                     if next(module.children(), None) is None and ModuleValidator.validate(module, strict=False)})
    reason = str(errors[0]).split(".")[0]
    return f"Opacus refuses {', '.join(layers) or type(model).__name__} for private training ({reason}): {NORM_FIX}"


def seed_for(seed: int, salt: int) -> int:
    return int(np.random.SeedSequence([seed, salt]).generate_state(1)[0])


def poisson_steps(sample_rate: float) -> int:
    """Noisy steps per epoch at ``sample_rate``: ⌊1/q⌋, as Opacus's Poisson sampler takes them."""
    return max(1, int(1 / sample_rate))


def spent(accountant: IAccountant, delta: float) -> float:
    """The ε ``accountant`` certifies at ``delta`` for the steps it recorded (inf where σ is too small for any
    bound: the PRV accountant overflows there)."""
    try:
        return float(accountant.get_epsilon(delta=delta))
    except OverflowError:
        return float("inf")


def epsilon(mechanism: str, *, noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε that Opacus's accountant ``mechanism`` ("rdp" or "prv") gives ``steps`` subsampled Gaussian steps at
    ``sample_rate`` with noise multiplier σ, at ``delta``."""
    accountant = create_accountant(mechanism=mechanism)
    accountant.history = [(noise_multiplier, sample_rate, steps)]
    return spent(accountant, delta)


def noise_for(target_epsilon: float, mechanism: str, *, sample_rate: float, steps: int, delta: float) -> float:
    """The σ with which ``steps`` steps at ``sample_rate`` spend at most ``target_epsilon`` (and at least
    ``target_epsilon − EPSILON_TOLERANCE``) at ``delta``: Opacus's own search (``get_noise_multiplier``)."""
    try:
        with warnings.catch_warnings():  # the search's trial σs far from the answer warn of their RDP orders
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
            return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta,
                                              sample_rate=sample_rate, steps=steps, accountant=mechanism,
                                              epsilon_tolerance=EPSILON_TOLERANCE))
    except ValueError:
        raise ValueError(f"target_epsilon={target_epsilon:g} cannot be reached at delta={delta:g} in {steps} steps "
                         f"at sample rate {sample_rate:.4g}, even with σ = 10⁶: raise target_epsilon") from None


def nchw_convolutions(model: torch.nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
    """Hand every convolution of ``model`` its input in NCHW-contiguous memory (forward pre-hooks; remove them with
    their handles). Opacus 1.6's per-sample gradient of a convolution (``opacus.utils.tensor_utils.unfold2d``)
    reads the input's spatial strides as NCHW's, but a CPU convolution returns channels-last output when its input
    looks channels-last (a single-channel batch such as digits' can), and the next convolution's per-sample weight
    gradients then come out wrong: zeros on cnn-small and digits."""
    def contiguous(_module: torch.nn.Module, args: tuple) -> tuple:
        return tuple(arg.contiguous() if isinstance(arg, torch.Tensor) else arg for arg in args)

    return [module.register_forward_pre_hook(contiguous) for module in model.modules()
            if isinstance(module, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Conv3d)]


class AttackHooksOff:
    """The network as a member defense's batch loss sees it: a pass on inputs that require a gradient (an inner
    maximisation: PGD-AT's or TRADES's attack, which differentiates the loss with respect to its input) turns
    Opacus's per-sample-gradient hooks off, and a pass on plain inputs (the weight update's) turns them back on. So
    the attack's passes and their backward passes leave no per-sample gradients, and only the private step's do;
    an inner maximisation runs its forward and backward passes before the weight update's forward pass."""

    def __init__(self, private: GradSampleModule) -> None:
        self.private = private

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            self.private.disable_hooks()
        else:
            self.private.enable_hooks()
        return self.private(x)


def train_private(model: torch.nn.Module, data: DataBundle, ctx: RunContext, *, recipe: Recipe, batch_loss: BatchLoss,
                  noise_multiplier: float, max_grad_norm: float, accountant: IAccountant) -> None:
    """Train ``model`` in place with DP-SGD for ``ctx.epochs(recipe.epochs)`` epochs of Poisson batches of expected
    size ``recipe.batch_size`` (the recipe's optimiser and schedule; nothing else of it), each batch's loss
    ``batch_loss``; ``accountant`` records every noisy step: ``epochs · poisson_steps(q)``."""
    device = torch.device(ctx.device)
    model.to(device)
    x, y = tensors(data, None, device)
    sample_rate, epochs = recipe.batch_size / len(x), ctx.epochs(recipe.epochs)
    batches = UniformWithReplacementSampler(num_samples=len(x), sample_rate=sample_rate,
                                            generator=torch.Generator().manual_seed(seed_for(ctx.seed, POISSON_SALT)),
                                            steps=poisson_steps(sample_rate))
    handles = nchw_convolutions(model)
    private = GradSampleModule(model)
    optimiser = DPOptimizer(make_optimiser(model, recipe), noise_multiplier=noise_multiplier,
                            max_grad_norm=max_grad_norm, expected_batch_size=recipe.batch_size,
                            generator=torch.Generator(device).manual_seed(seed_for(ctx.seed, NOISE_SALT)))
    optimiser.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=sample_rate))
    net = AttackHooksOff(private)
    model.train()
    with warnings.catch_warnings():  # Opacus's hooks on a first layer whose input needs no gradient: as intended
        warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")
        for epoch in range(epochs):
            for batch, index in enumerate(batches):
                idx = torch.as_tensor(index, dtype=torch.long, device=device)
                set_lr(optimiser, learning_rate(recipe, epoch + (batch + 1) / len(batches), epochs))
                update(optimiser, batch_loss(net, unit_tensor(x[idx]), y[idx]), None)
                ctx.count("train_grad_evals", len(idx))
    private.to_standard_module()
    for handle in handles:
        handle.remove()
    model.eval()
