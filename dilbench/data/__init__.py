"""Data sets as in-memory NumPy arrays: MNIST, CIFAR-10, any ImageFolder, and a bundled MNIST subset.

Pure NumPy + Pillow: importing this package never imports TensorFlow (only a download does).
"""

from dilbench.data.dataset import Dataset
from dilbench.data.errors import DataError, DataNotFoundError
from dilbench.data.load import load_data, load_dataset, locate_dataset
from dilbench.data.registry import DATASETS

__all__ = ["DATASETS", "DataError", "DataNotFoundError", "Dataset", "load_data", "load_dataset", "locate_dataset"]
