"""Built-in attacks; importing this package registers them in ``benchmark.ATTACKS``."""

from attacks import apgd, apgd_targeted, autoattack, cw, deepfool, fgsm, hopskipjump, noise, pgd, square  # noqa: F401
