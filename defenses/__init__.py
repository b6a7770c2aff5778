"""Built-in defenses; importing this package registers them in ``benchmark.DEFENSES``."""

from defenses import (  # noqa: F401
    adversarial,
    combined,
    dp_fedavg,
    dp_sgd,
    federated,
    ibp_training,
    noise,
    preprocessing,
    pretrained,
    smoothing,
    standard,
)
