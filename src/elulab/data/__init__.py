"""Loaders for the real data sets in ``../shared/data`` and built-in sets.

Each loader returns plain tensors or numpy arrays; none downloads anything.
"""

from ._paths import DataNotFoundError as DataNotFoundError
from ._paths import data_root as data_root
from ._paths import dataset_dir as dataset_dir
from .htru2 import load_htru2 as load_htru2
from .mnist import load_mnist as load_mnist
from .mnist import split_indices as split_indices
from .uci import UCIDataset as UCIDataset
from .uci import UCIFormatError as UCIFormatError
from .uci import list_uci_datasets as list_uci_datasets
from .uci import load_uci as load_uci

__all__ = ["DataNotFoundError", "data_root", "dataset_dir", "load_mnist", "split_indices",
           "UCIDataset", "UCIFormatError", "list_uci_datasets", "load_uci",
           "load_htru2"]
