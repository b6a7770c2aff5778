"""Built-in attacks; importing this package registers them in ``benchmark.ATTACKS``."""

from attacks import fgsm, noise, pgd  # noqa: F401
