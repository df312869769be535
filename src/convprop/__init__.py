"""convprop: convolutional networks with forward and backward propagation written out in NumPy.

Two tiers: :mod:`convprop.functional` holds pure kernels (``<op>_forward -> (y, cache)``,
``<op>_backward(dy, cache) -> grads``); :mod:`convprop.layers` holds modules that own
parameters and delegate to those kernels. Everything else (optimizers, data, training,
model zoo, gradient checking) sits on top.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
