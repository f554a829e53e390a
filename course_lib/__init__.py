"""course_lib: the helper package behind the course on convolutional neural networks.

Reference implementations of the operators of a CNN (forward and backward) on PyTorch, shape and
size calculations, gradient checking, models, data, training, metrics, plots and widgets. The
chapters import the public names from here; grading lives in :mod:`course_lib.grading`.
"""

from .device import *
from .gradcheck import *
from .ops.activations import *
from .ops.conv import *
from .ops.conv_backward import *
from .ops.layers import *
from .ops.padding import *
from .ops.pooling import *
from .shapes import *

__version__ = "0.1.0"
