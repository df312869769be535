"""Pure kernels: every op is ``<op>_forward(...) -> (y, cache)`` and ``<op>_backward(dy, cache)``.

Backward returns gradients in the order of the forward's differentiable arguments. Kernels
keep the input dtype (float32/float64), never write into their arguments, accept
non-contiguous and read-only input, and are vectorized (loops run over kernel offsets only).
"""

from .activation import *  # noqa: F401,F403
from .activation import __all__ as _activation
from .adaptive_pooling import *  # noqa: F401,F403
from .adaptive_pooling import __all__ as _adaptive_pooling
from .alpha_pooling import *  # noqa: F401,F403
from .alpha_pooling import __all__ as _alpha_pooling
from .binary import *  # noqa: F401,F403
from .binary import __all__ as _binary
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv
from .conv_transpose import *  # noqa: F401,F403
from .conv_transpose import __all__ as _conv_transpose
from .dft_pooling import *  # noqa: F401,F403
from .dft_pooling import __all__ as _dft_pooling
from .dropout import *  # noqa: F401,F403
from .dropout import __all__ as _dropout
from .lenet_classic import *  # noqa: F401,F403
from .lenet_classic import __all__ as _lenet_classic
from .linear import *  # noqa: F401,F403
from .linear import __all__ as _linear
from .lp_pooling import *  # noqa: F401,F403
from .lp_pooling import __all__ as _lp_pooling
from .loss import *  # noqa: F401,F403
from .loss import __all__ as _loss
from .meprop import *  # noqa: F401,F403
from .meprop import __all__ as _meprop
from .mixed_pooling import *  # noqa: F401,F403
from .mixed_pooling import __all__ as _mixed_pooling
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization
from .pooling import *  # noqa: F401,F403
from .pooling import __all__ as _pooling
from .reshape import *  # noqa: F401,F403
from .reshape import __all__ as _reshape
from .roi_pooling import *  # noqa: F401,F403
from .roi_pooling import __all__ as _roi_pooling
from .shortcut import *  # noqa: F401,F403
from .shortcut import __all__ as _shortcut
from .stochastic_pooling import *  # noqa: F401,F403
from .stochastic_pooling import __all__ as _stochastic_pooling
from .unpooling import *  # noqa: F401,F403
from .unpooling import __all__ as _unpooling
from .wavelet_pooling import *  # noqa: F401,F403
from .wavelet_pooling import __all__ as _wavelet_pooling

__all__ = [*_activation, *_adaptive_pooling, *_alpha_pooling, *_binary, *_conv,
           *_conv_transpose, *_dft_pooling, *_dropout, *_lenet_classic, *_linear, *_loss,
           *_lp_pooling, *_meprop, *_mixed_pooling, *_normalization, *_pooling, *_reshape,
           *_roi_pooling, *_shortcut, *_stochastic_pooling, *_unpooling, *_wavelet_pooling]
