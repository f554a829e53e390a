"""What an answer cell may import and use: the plain data of the exercises' code policy.

Names are dotted (``module.function``); ``module.*`` stands for every public function the
module (or one of its submodules) defines. This module imports nothing.
"""

from __future__ import annotations

__all__ = [
    "BATCH_NORM_OPERATORS",
    "BOX_OPERATORS",
    "COURSE_LIB",
    "NUMPY_AND_STDLIB",
    "WINDOW_OPERATORS",
]

#: Top-level modules an answer cell may import: NumPy and harmless parts of the standard library.
NUMPY_AND_STDLIB: tuple[str, ...] = ("numpy", "math", "itertools", "functools", "collections")

#: Ready-made convolution, correlation, pooling and sliding-window functions.
WINDOW_OPERATORS: tuple[str, ...] = (
    "numpy.convolve",
    "numpy.correlate",
    *(
        f"scipy.signal.{name}"
        for name in (
            "convolve",
            "correlate",
            "convolve2d",
            "correlate2d",
            "fftconvolve",
            "oaconvolve",
        )
    ),
    *(
        f"scipy.ndimage.{name}"
        for name in (
            "convolve",
            "correlate",
            "convolve1d",
            "correlate1d",
            "uniform_filter",
            "uniform_filter1d",
            "maximum_filter",
            "maximum_filter1d",
            "minimum_filter",
            "generic_filter",
        )
    ),
    *(
        f"torch.{name}"
        for name in (
            "conv1d",
            "conv2d",
            "conv3d",
            "conv_transpose1d",
            "conv_transpose2d",
            "max_pool1d",
            "max_pool2d",
            "avg_pool1d",
            "adaptive_avg_pool1d",
            "adaptive_max_pool1d",
            "convolution",
        )
    ),
    *(
        f"torch.nn.functional.{name}"
        for name in (
            "conv1d",
            "conv2d",
            "conv3d",
            "conv_transpose1d",
            "conv_transpose2d",
            "max_pool1d",
            "max_pool2d",
            "max_pool2d_with_indices",
            "avg_pool1d",
            "avg_pool2d",
            "adaptive_avg_pool2d",
            "adaptive_max_pool2d",
            "lp_pool2d",
            "max_unpool2d",
            "unfold",
            "fold",
        )
    ),
    "torch.nn.grad.conv2d_input",
    "torch.nn.grad.conv2d_weight",
)

#: course_lib's own operators and the grader's reference answers.
COURSE_LIB: tuple[str, ...] = ("course_lib.*", "course_lib.grading.reference.*")

#: Ready-made normalisation layers.
BATCH_NORM_OPERATORS: tuple[str, ...] = (
    "torch.batch_norm",
    "torch.native_batch_norm",
    "torch.nn.functional.batch_norm",
    "torch.nn.functional.instance_norm",
    "torch.nn.functional.layer_norm",
    "torch.nn.functional.group_norm",
)

#: Ready-made box operations: every function of torchvision.ops and of course_lib.detection.
BOX_OPERATORS: tuple[str, ...] = ("torchvision.ops.*", "course_lib.detection.*")
