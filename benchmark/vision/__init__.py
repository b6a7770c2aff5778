"""Image datasets from their original files, in torchvision's layout under the data directory: ``mnist``,
``fashion-mnist`` (IDX), ``cifar10``, ``cifar100`` (binary version), ``svhn`` (cropped digits, .mat).

``datadir`` says where the files live, ``checksums`` what is published about them and how they are verified; importing
this package registers the datasets.
"""

from benchmark.vision import cifar, idx, svhn  # noqa: F401  (register the datasets)
