"""Built-in defenses; importing this package registers them in ``benchmark.DEFENSES``."""

from defenses import adversarial, combined, dp_fedavg, dp_sgd, federated, noise, pretrained, standard  # noqa: F401
