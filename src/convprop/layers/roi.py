"""Region-of-interest pooling modules (no parameters), as ``torchvision.ops.RoIPool`` and
``RoIAlign``.

Their forward takes two arrays, the feature map and the boxes, as one tuple ``(x, boxes)``
(the form a container passes along; ``forward(x, boxes=...)`` works too): x (N, C, H, W) and
boxes (K, 5) rows ``(batch_index, x1, y1, x2, y2)`` of x's dtype (a box wholly outside the
feature map is an error unless ``allow_outside=True``). The output is y
(K, C, PH, PW); backward returns dx only (boxes are not differentiated, as in torchvision).
"""

from __future__ import annotations

from ..functional.roi_pooling import (roi_align_backward, roi_align_forward, roi_args,
                                      roi_pool_backward, roi_pool_forward)
from .._checks import boolean
from .module import Module

__all__ = ["RoIPool", "RoIAlign"]


def _split(op: str, inputs, boxes):
    """``(x, boxes)`` from a pair, or from x and the ``boxes`` keyword."""
    if isinstance(inputs, (tuple, list)):
        if boxes is not None or len(inputs) != 2:
            raise TypeError(f"{op}: give either an (x, boxes) pair or x with boxes=, got a "
                            f"{type(inputs).__name__} of {len(inputs)} and "
                            f"boxes={'set' if boxes is not None else None}")
        return inputs
    if boxes is None:
        raise TypeError(f"{op}: boxes are required: call forward((x, boxes)) with boxes "
                        "(K, 5) rows (batch_index, x1, y1, x2, y2)")
    return inputs, boxes


class RoIPool(Module):
    """RoI max pooling (Fast R-CNN), as ``torchvision.ops.RoIPool(output_size,
    spatial_scale)``: ``forward((x, boxes))`` -> y (K, C, PH, PW) and a cache whose
    ``argmax`` records each bin's maximum; backward returns dx. See
    :func:`~convprop.functional.roi_pooling.roi_pool_forward`."""

    def __init__(self, output_size, spatial_scale, *, allow_outside: bool = False):
        super().__init__()
        self.output_size, self.spatial_scale, _, _ = roi_args(
            "RoIPool", output_size, spatial_scale)
        self.allow_outside = boolean("RoIPool", "allow_outside", allow_outside)

    def forward(self, inputs, *, training: bool = False, boxes=None):
        x, boxes = _split("RoIPool", inputs, boxes)
        return roi_pool_forward(x, boxes, output_size=self.output_size,
                                spatial_scale=self.spatial_scale,
                                allow_outside=self.allow_outside)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return roi_pool_backward(dy, cache)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
                + (", allow_outside=True" if self.allow_outside else ""))


class RoIAlign(Module):
    """RoI Align (Mask R-CNN), as ``torchvision.ops.RoIAlign(output_size, spatial_scale,
    sampling_ratio, aligned=False)``: ``forward((x, boxes))`` -> y (K, C, PH, PW), each bin
    the mean of its bilinear samples; backward returns dx (the exact adjoint). See
    :func:`~convprop.functional.roi_pooling.roi_align_forward`."""

    def __init__(self, output_size, spatial_scale, sampling_ratio, aligned: bool = False, *,
                 allow_outside: bool = False):
        super().__init__()
        (self.output_size, self.spatial_scale, self.sampling_ratio,
         self.aligned) = roi_args("RoIAlign", output_size, spatial_scale, sampling_ratio,
                                  aligned)
        self.allow_outside = boolean("RoIAlign", "allow_outside", allow_outside)

    def forward(self, inputs, *, training: bool = False, boxes=None):
        x, boxes = _split("RoIAlign", inputs, boxes)
        return roi_align_forward(x, boxes, output_size=self.output_size,
                                 spatial_scale=self.spatial_scale,
                                 sampling_ratio=self.sampling_ratio, aligned=self.aligned,
                                 allow_outside=self.allow_outside)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return roi_align_backward(dy, cache)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
                + (", allow_outside=True" if self.allow_outside else ""))
