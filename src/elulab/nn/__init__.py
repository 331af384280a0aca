"""Modules: ELU-family activations and their registry, initialisers, SNNs and fused
blocks, RNNs, residual blocks and ResNets, Transformer blocks, AdaptiveELU.

Public names are re-exported here; implementations live in private files (one section
per file, in file-name order).
"""

# --- activations and registry (_activations.py) ---
from ._activations import ACTIVATIONS as ACTIVATIONS
from ._activations import CELU as CELU
from ._activations import ELU as ELU
from ._activations import SELU as SELU
from ._activations import Sin as Sin
from ._activations import SmoothELU as SmoothELU
from ._activations import get_activation as get_activation

# --- ELU with alpha from running input statistics (_adaptive.py) ---
from ._adaptive import AdaptiveELU as AdaptiveELU
from ._adaptive import adaptive_alpha as adaptive_alpha

# --- fused Linear + ELU-family + (Alpha)Dropout blocks (_fused.py) ---
from ._fused import COMPILE_MIN_NUMEL as COMPILE_MIN_NUMEL
from ._fused import IMPLS as IMPLS
from ._fused import FusedLinearELU as FusedLinearELU
from ._fused import fused_bias_elu_dropout as fused_bias_elu_dropout

# --- initialisers (_init.py) ---
from ._init import lecun_normal_ as lecun_normal_
from ._init import orthogonal as orthogonal

# --- residual blocks and ResNets, pre- and post-activation (_residual.py) ---
from ._residual import ResidualBlock as ResidualBlock
from ._residual import ResNet as ResNet
from ._residual import identity_path_only as identity_path_only
from ._residual import trunk_gain as trunk_gain

# --- recurrent and self-normalising networks (_rnn.py, _snn.py) ---
from ._rnn import VanillaRNN as VanillaRNN
from ._snn import SNN as SNN
from ._snn import AlphaDropout as AlphaDropout
from ._snn import ScaledELU as ScaledELU

# --- several same-shape MLPs in one module, one activation per slot (_stacked.py) ---
from ._stacked import StackedMLP as StackedMLP

# --- swapping activations in a model (_swap.py) ---
from ._swap import swap_activations as swap_activations

# --- pre-LN Transformer blocks, residual FFN stacks, character LMs (_transformer.py) ---
from ._transformer import CausalSelfAttention as CausalSelfAttention
from ._transformer import CharFFN as CharFFN
from ._transformer import CharTransformer as CharTransformer
from ._transformer import FeedForward as FeedForward
from ._transformer import ResidualFFN as ResidualFFN
from ._transformer import TransformerBlock as TransformerBlock
