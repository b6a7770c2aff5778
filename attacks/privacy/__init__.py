"""Built-in privacy attacks; importing this package registers them in ``benchmark.PRIVACY``: membership inference
through ART (rule-based, black-box, label-only) and gradient inversion of federated client updates."""

from attacks.privacy import gradient_inversion, mia_blackbox, mia_label, mia_rule  # noqa: F401
