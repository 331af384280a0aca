"""Loaders for the real data sets in ``../shared/data`` and built-in sets.

Each loader returns plain tensors or numpy arrays; none downloads anything.
"""

from ._paths import DataNotFoundError as DataNotFoundError
from ._paths import data_root as data_root
from ._paths import dataset_dir as dataset_dir
from .builtin import BUILTIN_DATASETS as BUILTIN_DATASETS
from .builtin import load_builtin as load_builtin
from .burgers import BurgersReference as BurgersReference
from .burgers import load_burgers as load_burgers
from .htru2 import load_htru2 as load_htru2
from .mnist import load_mnist as load_mnist
from .mnist import load_mnist_split as load_mnist_split
from .mnist import row_sequences as row_sequences
from .mnist import split_indices as split_indices
from .splits import stratified_split as stratified_split
from .tinyshakespeare import CharCorpus as CharCorpus
from .tinyshakespeare import load_tinyshakespeare as load_tinyshakespeare
from .uci import UCIDataset as UCIDataset
from .uci import UCIFormatError as UCIFormatError
from .uci import list_uci_datasets as list_uci_datasets
from .uci import load_uci as load_uci

__all__ = [
    "BUILTIN_DATASETS",
    "BurgersReference",
    "CharCorpus",
    "DataNotFoundError",
    "UCIDataset",
    "UCIFormatError",
    "data_root",
    "dataset_dir",
    "list_uci_datasets",
    "load_builtin",
    "load_burgers",
    "load_htru2",
    "load_mnist",
    "load_mnist_split",
    "load_tinyshakespeare",
    "load_uci",
    "row_sequences",
    "split_indices",
    "stratified_split",
]
