"""Built-in defenses; importing this package registers them in ``benchmark.DEFENSES``."""

from defenses import adversarial, combined, federated, noise, pretrained, standard  # noqa: F401
