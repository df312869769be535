"""The readable reference tier: every kernel as a loop, written as the equation is.

One output element (one window, one example) at a time, in float64, CS231n style: short,
commented, slow. Nothing here is called by the fast tier (:mod:`convprop.functional`) and
nothing here imports it: these functions are the independent oracles the tests hold the fast
kernels to, and what explain mode uses to show a small layer's windows one by one.

=====================  ==============================================================
module                 references
=====================  ==============================================================
:mod:`.conv`           conv, conv_backward, conv_transpose, flip
:mod:`.pooling`        max_pool (+ switches), max_pool_backward (+ _ties), avg_pool,
                       avg_pool_backward, lp_pool, pool_windows, windows
:mod:`.adaptive`       adaptive_avg_pool, adaptive_max_pool (+ _backward_ties),
                       global_avg_pool, global_max_pool
:mod:`.unpooling`      max_unpool, max_unpool_backward
:mod:`.dense`          linear, linear_backward, activation, activation_backward
                       (relu, leaky_relu, sigmoid, tanh), dropout, flatten, pad_shortcut
:mod:`.normalization`  batch_norm, batch_norm_backward, local_response_norm
:mod:`.loss`           cross_entropy, cross_entropy_backward, mse, mse_backward
:mod:`.research`       alpha_pool, dft_pool, subsampling and euclidean_rbf (LeNet-5)
:mod:`.mixed`          stochastic_pool (+ _eval), scatter_to_offsets, mixed_pool (Yu),
                       mixed_maxavg_pool and gated_pool (Lee)
:mod:`.roi`            roi_pool, roi_pool_backward, roi_align, roi_align_backward
:mod:`.wavelet`        wavelet_pool, wavelet_pool_paper_backward (dwt2, idwt2)
=====================  ==============================================================

Every function takes the forward's arguments with PyTorch's names and semantics (any number
of spatial dimensions where the op has them) and returns float64, except the ops whose outputs
are x's own values (max pooling and its relatives, RoI pooling and Align, which also compute
their geometry in x's dtype as torchvision does): those keep x's dtype.
"""

from ._grid import conv_pads, ntuple, positions
from .adaptive import (adaptive_avg_pool, adaptive_bins, adaptive_max_pool,
                       adaptive_max_pool_backward_ties, global_avg_pool, global_max_pool)
from .conv import conv, conv_backward, conv_transpose, flip
from .dense import (ACTIVATIONS, activation, activation_backward, dropout, dropout_backward,
                    flatten, linear, linear_backward, pad_shortcut)
from .loss import (cross_entropy, cross_entropy_backward, mse, mse_backward, reduce,
                   squared_errors)
from .mixed import (gated_pool, mixed_maxavg_pool, mixed_pool, scatter_to_offsets,
                    stochastic_pool, stochastic_pool_eval)
from .normalization import batch_norm, batch_norm_backward, local_response_norm
from .pooling import (avg_pool, avg_pool_backward, lp_pool, max_pool, max_pool_backward,
                      max_pool_backward_ties, tie_winners,
                      pool_windows, pooled_length, scatter_at_indices, windows)
from .research import alpha_mean, alpha_pool, dft_pool, euclidean_rbf, subsampling
from .roi import (bilinear_weights, roi_align, roi_align_backward, roi_pool,
                  roi_pool_backward)
from .unpooling import max_unpool, max_unpool_backward, unpool_size
from .wavelet import (WAVELET_FILTERS, dwt2, idwt2, per_plane, wavelet_pool,
                      wavelet_pool_paper_backward)

__all__ = ["activation", "activation_backward", "ACTIVATIONS", "adaptive_avg_pool",
           "adaptive_bins", "adaptive_max_pool", "adaptive_max_pool_backward_ties", "alpha_mean",
           "alpha_pool", "avg_pool", "avg_pool_backward", "batch_norm", "batch_norm_backward",
           "bilinear_weights", "conv", "conv_backward", "conv_pads", "conv_transpose",
           "cross_entropy", "cross_entropy_backward", "dft_pool", "dropout", "dropout_backward",
           "dwt2", "euclidean_rbf", "flatten", "flip", "gated_pool", "global_avg_pool",
           "global_max_pool", "idwt2", "linear", "linear_backward", "local_response_norm",
           "lp_pool", "max_pool", "max_pool_backward", "max_pool_backward_ties", "max_unpool",
           "max_unpool_backward", "mixed_maxavg_pool", "mixed_pool", "mse", "mse_backward",
           "ntuple", "pad_shortcut", "per_plane", "pool_windows", "pooled_length", "positions",
           "reduce", "roi_align", "roi_align_backward", "roi_pool", "roi_pool_backward",
           "scatter_at_indices", "scatter_to_offsets", "squared_errors", "stochastic_pool",
           "stochastic_pool_eval", "subsampling", "tie_winners", "unpool_size", "WAVELET_FILTERS",
           "wavelet_pool", "wavelet_pool_paper_backward", "windows"]
