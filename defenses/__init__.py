"""Built-in defenses; importing this package registers them in ``benchmark.DEFENSES``."""

from defenses import adversarial, standard  # noqa: F401
