"""Built-in federated client attacks; importing this package registers them in ``benchmark.CLIENT_ATTACKS``."""

from attacks.federated import alie, backdoor, ipm, label_flip, minmax, naive  # noqa: F401
