"""The data sets dilbench can load: config name -> reader module.

A reader module provides DESCRIPTION (one line, shown to users) and
source(root, download) -> Source; adding a data set is one new module plus one line here.
"""

from types import ModuleType

from dilbench.data import cifar10, imagefolder, mnist, mnist_bundled

READERS: dict[str, ModuleType] = {
    "mnist": mnist,
    "cifar10": cifar10,
    "imagefolder": imagefolder,
    "mnist_bundled": mnist_bundled,
}

# name -> one-line description, for config validation and `--help` listings.
DATASETS: dict[str, str] = {name: reader.DESCRIPTION for name, reader in READERS.items()}
