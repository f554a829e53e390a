"""Write the nbgrader source notebooks solutions/<assignment>/<assignment>.ipynb.

The notebooks in solutions/ are what counts (instructors edit them in JupyterLab); this script
is one way to (re)write them from a single readable place. After running it, regenerate the
student versions:

    python scripts/make_solutions.py
    nbgrader generate_assignment "*" --force      # or one assignment: ... convolution --force

Usage: python scripts/make_solutions.py [assignment ...]
"""

from __future__ import annotations

import sys
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.grading.checks import ASSIGNMENTS, POINTS  # noqa: E402

# ---------------------------------------------------------------------------------------------
# cell builders
# ---------------------------------------------------------------------------------------------


def _src(text: str) -> str:
    return dedent(text).strip("\n")


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(_src(text))


def code(text: str) -> nbformat.NotebookNode:
    return new_code_cell(_src(text))


def answer(grade_id: str, text: str) -> nbformat.NotebookNode:
    cell = code(text)
    cell.id = grade_id
    cell.metadata["nbgrader"] = {
        "grade": False,
        "grade_id": grade_id,
        "locked": False,
        "schema_version": 3,
        "solution": True,
        "task": False,
    }
    return cell


def hidden_test(test_id: str, function: str, what: str) -> nbformat.NotebookNode:
    cell = code(
        f"""
        # Hidden tests ({POINTS[test_id]:g} points): {what}.
        # They run when your notebook is graded, on fresh random inputs each time.
        ### BEGIN HIDDEN TESTS
        from course_lib.grading.checks import run_test

        run_test("{test_id}", {function})
        ### END HIDDEN TESTS
        """
    )
    cell.id = test_id
    cell.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": test_id,
        "locked": True,
        "points": POINTS[test_id],
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    return cell


def points_of(function: str, assignment: str) -> float:
    return sum(POINTS[t] for t in ASSIGNMENTS[assignment][function])


GRADED_ON = {
    "convolution": "non-square images and kernels, strides 2 and 3 with sizes that don't "
    "divide, padding, batches and channels, overlapping pools and tied maxima",
    "output_shapes": "many sizes, kernels, strides, paddings and dilations, settings that must "
    "raise ValueError, and stacks of real PyTorch layers",
    "backprop": "non-square inputs and kernels, strides and paddings, batches and channels, "
    "overlapping windows and tied maxima, and several scalar functions",
}


def points_table(assignment: str, contracts: dict[str, str]) -> nbformat.NotebookNode:
    rows = [
        f"| `{function}` | {contracts[function]} | {points_of(function, assignment):g} |"
        for function in ASSIGNMENTS[assignment]
    ]
    total = sum(points_of(f, assignment) for f in ASSIGNMENTS[assignment])
    return md(
        "\n".join(
            [
                "## Points",
                "",
                "| function | what it does | points |",
                "|---|---|---|",
                *rows,
                f"| **total** | | **{total:g}** |",
                "",
                f"Each function is graded by hidden tests on inputs drawn at random at every "
                f"grading run: {GRADED_ON[assignment]}. A test gives its points when every one "
                "of its cases is right. When a case fails, the feedback says which case and "
                "the likely cause.",
            ]
        )
    )


RULES = """
**Rules.** Write your code only in the cells that say `# YOUR CODE HERE` (replace the
`raise NotImplementedError()` line). Use **NumPy only**: SciPy, PyTorch, `course_lib` and other
ready-made convolution or pooling functions are switched off while your functions are graded
(the loops are the point of the exercise). Do not modify the input arrays; return new arrays of
dtype float64. Loops are fine: the test inputs are small.

Run the visible tests under each function as you go; before you submit, restart the kernel and
run all cells (*Kernel → Restart Kernel and Run All Cells*) and press *Validate*.
"""


def merge_visible_tests(cells: list[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    """Put each visible-test cell at the top of the graded test cell that follows it.

    nbgrader's *Validate* button runs only the graded test cells: visible tests in a cell of
    their own would never fail validation, and an unanswered notebook would validate. In the
    graded cell they run at every validation, and the hidden tests below them stay hidden.
    """
    merged: list[nbformat.NotebookNode] = []
    for cell in cells:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and cell.metadata.get("nbgrader", {}).get("grade")
            and previous.cell_type == "code"
            and "nbgrader" not in previous.metadata
            and previous.source.startswith("# Visible tests")
        ):
            cell.source = previous.source + "\n\n" + cell.source
            merged[-1] = cell
        else:
            merged.append(cell)
    return merged


def notebook(cells: list[nbformat.NotebookNode], assignment: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=merge_visible_tests(cells))
    for i, cell in enumerate(nb.cells):
        if "nbgrader" not in cell.metadata:
            cell.id = f"{assignment}-{i:02d}"
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


# ---------------------------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------------------------

CONVOLUTION_CONTRACTS = {
    "corr2d": "2-D cross-correlation of one image with one kernel",
    "pad2d": "zero padding of the last two axes",
    "conv2d_forward": "a convolution layer: batch, channels, filters, bias, stride, padding",
    "max_pool2d_forward": "max pooling",
    "avg_pool2d_forward": "average pooling",
}


def convolution() -> nbformat.NotebookNode:
    a = "convolution"
    cells = [
        md(
            """
            # Exercise: convolution and pooling, forward

            In this exercise you write the forward pass of a convolutional layer and of the
            pooling layers with NumPy loops, the way the book's chapter on convolutions
            describes them. Layout is NCHW: a batch of `N` images with `C` channels, each
            `H` pixels high and `W` pixels wide.
            """
        ),
        points_table(a, CONVOLUTION_CONTRACTS),
        md(RULES),
        code(
            """
            import numpy as np

            np.set_printoptions(precision=3, suppress=True)
            """
        ),
        md(
            """
            ## Recap: cross-correlation, padding and stride

            A convolution layer slides a `kh × kw` kernel over the image. At each position it
            multiplies the window under the kernel by the kernel, entry by entry, and adds the
            products up. CNN layers do **not** flip the kernel (that would be the convolution
            of signal processing): what they compute is a *cross-correlation*,

            $$\\text{out}[i, j] = \\sum_{a=0}^{k_h - 1} \\sum_{b=0}^{k_w - 1}
            x[i \\cdot s_h + a,\\, j \\cdot s_w + b]\\; k[a, b].$$

            With padding $p$ the image first gets $p$ rows of zeros on top and bottom and $p$
            columns on the left and right. The output then has

            $$H' = \\left\\lfloor \\frac{H + 2p_h - k_h}{s_h} \\right\\rfloor + 1$$

            rows (the same for the columns): a window that would stick out of the padded image
            is dropped. A worked example, one window at a time:
            """
        ),
        code(
            """
            x = np.arange(20.0).reshape(4, 5)
            k = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0]])  # kh=2, kw=3
            print("x =\\n", x)
            print("k =\\n", k)

            stride = 2
            out_h = (x.shape[0] - k.shape[0]) // stride + 1
            out_w = (x.shape[1] - k.shape[1]) // stride + 1
            print(f"output size with stride {stride}: {out_h} x {out_w}")

            window = x[0:2, 2:5]  # output position (0, 1): rows 0*2.., columns 1*2..
            print("window for out[0, 1] =\\n", window)
            print("products =\\n", window * k)
            print("out[0, 1] =", np.sum(window * k))
            """
        ),
        md(
            """
            ## 1. `corr2d(x, k)` ({pts:g} points)

            `x`: an image `(H, W)`; `k`: a kernel `(kh, kw)`. Return the cross-correlation in
            "valid" mode (no padding, stride 1), an array of shape `(H - kh + 1, W - kw + 1)`
            with `out[i, j] = sum(x[i:i+kh, j:j+kw] * k)`. Do not flip the kernel.
            """.replace("{pts:g}", f"{points_of('corr2d', a):g}")
        ),
        answer(
            "corr2d",
            """
            def corr2d(x, k):
                \"\"\"2-D cross-correlation, "valid" mode.

                x: (H, W), k: (kh, kw) -> (H - kh + 1, W - kw + 1)
                \"\"\"
                ### BEGIN SOLUTION
                kh, kw = k.shape
                out_h = x.shape[0] - kh + 1
                out_w = x.shape[1] - kw + 1
                out = np.zeros((out_h, out_w))
                for i in range(out_h):
                    for j in range(out_w):
                        out[i, j] = np.sum(x[i : i + kh, j : j + kw] * k)
                return out
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests: small examples you can check by hand
            x = np.arange(9.0).reshape(3, 3)
            k = np.array([[0.0, 1.0], [2.0, 3.0]])
            # out[0, 0] = 0*0 + 1*1 + 2*3 + 3*4 = 19
            expected = np.array([[19.0, 25.0], [37.0, 43.0]])
            out = corr2d(x, k)
            assert out.shape == (2, 2), out.shape
            assert np.allclose(out, expected), out

            # a non-square image and kernel: shape (H - kh + 1, W - kw + 1)
            out = corr2d(np.ones((4, 6)), np.ones((2, 3)))
            assert out.shape == (3, 4), out.shape
            assert np.allclose(out, 6.0), out
            print("corr2d: visible tests passed")
            """
        ),
        hidden_test(
            "test_corr2d",
            "corr2d",
            "non-square images and kernels, 1x1 kernels, a kernel as large as the image",
        ),
        md(
            """
            ## 2. `pad2d(x, padding)` ({pts:g} points)

            `x`: an array with at least 2 dimensions, e.g. `(H, W)` or `(N, C, H, W)`.
            `padding`: an int `p` or a pair `(ph, pw)`. Return a **new** array with `ph` rows
            of zeros added on top and bottom of the last-but-one axis and `pw` columns on the
            left and right of the last axis; the other axes are not padded. Shape
            `(..., H + 2ph, W + 2pw)`.
            """.replace("{pts:g}", f"{points_of('pad2d', a):g}")
        ),
        answer(
            "pad2d",
            """
            def pad2d(x, padding):
                \"\"\"Zero-pad the last two axes of x.

                x: (..., H, W), padding: p or (ph, pw) -> (..., H + 2ph, W + 2pw)
                \"\"\"
                ### BEGIN SOLUTION
                ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
                height, width = x.shape[-2:]
                out = np.zeros((*x.shape[:-2], height + 2 * ph, width + 2 * pw))
                out[..., ph : ph + height, pw : pw + width] = x
                return out
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            x = np.array([[1.0, 2.0], [3.0, 4.0]])
            expected = np.array(
                [
                    [0.0, 0.0, 0.0, 0.0],
                    [0.0, 1.0, 2.0, 0.0],
                    [0.0, 3.0, 4.0, 0.0],
                    [0.0, 0.0, 0.0, 0.0],
                ]
            )
            assert np.array_equal(pad2d(x, 1), expected), pad2d(x, 1)

            # a pair pads rows and columns differently; leading axes are not padded
            out = pad2d(np.ones((2, 3, 4, 5)), (1, 2))
            assert out.shape == (2, 3, 6, 9), out.shape
            assert out.sum() == 2 * 3 * 4 * 5
            print("pad2d: visible tests passed")
            """
        ),
        hidden_test("test_pad2d", "pad2d", "int padding on 2-D, 3-D and 4-D arrays, padding 0"),
        hidden_test("test_pad2d_pair", "pad2d", "pair padding (ph, pw), including 0 on one axis"),
        md(
            """
            ## 3. `conv2d_forward(x, w, b, stride=1, padding=0)` ({pts:g} points)

            - `x`: input `(N, C, H, W)`;
            - `w`: filters `(F, C, kh, kw)`, one `(C, kh, kw)` kernel per output channel;
            - `b`: biases `(F,)`, or `None` for no bias;
            - `stride` and `padding`: an int or a pair `(height, width)`.

            Return `out` of shape `(N, F, H', W')` with
            `H' = (H + 2ph - kh) // sh + 1` and `W' = (W + 2pw - kw) // sw + 1`, where
            `out[n, f, i, j]` is the sum over all channels and window positions of the padded
            input times `w[f]`, plus `b[f]`. You may call your `pad2d`.
            """.replace("{pts:g}", f"{points_of('conv2d_forward', a):g}")
        ),
        answer(
            "conv2d_forward",
            """
            def conv2d_forward(x, w, b, stride=1, padding=0):
                \"\"\"Forward pass of a convolution layer (cross-correlation), NCHW.

                x: (N, C, H, W), w: (F, C, kh, kw), b: (F,) or None
                -> (N, F, H', W'), H' = (H + 2ph - kh) // sh + 1, W' likewise
                \"\"\"
                ### BEGIN SOLUTION
                sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
                ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
                n_samples, _, height, width = x.shape
                n_filters, _, kh, kw = w.shape
                out_h = (height + 2 * ph - kh) // sh + 1
                out_w = (width + 2 * pw - kw) // sw + 1
                padded = pad2d(x, (ph, pw))
                out = np.zeros((n_samples, n_filters, out_h, out_w))
                for n in range(n_samples):
                    for f in range(n_filters):
                        for i in range(out_h):
                            for j in range(out_w):
                                window = padded[n, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                                out[n, f, i, j] = np.sum(window * w[f])
                        if b is not None:
                            out[n, f] += b[f]
                return out
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            # one image, one channel, a 2x2 kernel of ones: each output is a window sum, plus b
            x = np.arange(16.0).reshape(1, 1, 4, 4)
            w = np.ones((1, 1, 2, 2))
            out = conv2d_forward(x, w, np.array([0.5]))
            assert out.shape == (1, 1, 3, 3), out.shape
            assert out[0, 0, 0, 0] == 0 + 1 + 4 + 5 + 0.5

            # stride 2: windows start at rows/columns 0 and 2
            out = conv2d_forward(x, w, None, stride=2)
            assert np.allclose(out[0, 0], [[10.0, 18.0], [42.0, 50.0]]), out

            # padding 1 with a 3x3 kernel keeps the size; the corner sees 4 image values
            out = conv2d_forward(x, np.ones((1, 1, 3, 3)), None, padding=1)
            assert out.shape == (1, 1, 4, 4), out.shape
            assert out[0, 0, 0, 0] == 0 + 1 + 4 + 5

            # two channels and three filters: the channels are summed
            out = conv2d_forward(np.ones((2, 2, 5, 6)), np.ones((3, 2, 3, 2)), np.zeros(3))
            assert out.shape == (2, 3, 3, 5), out.shape
            assert np.allclose(out, 2 * 3 * 2)
            print("conv2d_forward: visible tests passed")
            """
        ),
        hidden_test(
            "test_conv2d_forward",
            "conv2d_forward",
            "stride 1, no padding; batches, several channels and filters, non-square kernels, "
            "nonzero and None bias",
        ),
        hidden_test(
            "test_conv2d_forward_padding",
            "conv2d_forward",
            "padding 1 and 2 and pairs like (2, 1) and (0, 2)",
        ),
        hidden_test(
            "test_conv2d_forward_stride",
            "conv2d_forward",
            "stride 2 and 3 with sizes that don't divide evenly, pair stride and padding",
        ),
        md(
            """
            ## 4. `max_pool2d_forward(x, kernel_size, stride=None)` ({pts:g} points)

            `x`: `(N, C, H, W)`; `kernel_size` and `stride`: an int or a pair; `stride=None`
            means `stride = kernel_size`. No padding; a window that would stick out is dropped
            (floor). Return `(N, C, H', W')` with the maximum of each window,
            `H' = (H - kh) // sh + 1`. Each channel is pooled on its own. Windows may overlap
            (stride smaller than the kernel).
            """.replace("{pts:g}", f"{points_of('max_pool2d_forward', a):g}")
        ),
        answer(
            "max_pool2d_forward",
            """
            def max_pool2d_forward(x, kernel_size, stride=None):
                \"\"\"Max pooling, NCHW, no padding, floor mode.

                x: (N, C, H, W) -> (N, C, (H - kh) // sh + 1, (W - kw) // sw + 1)
                \"\"\"
                ### BEGIN SOLUTION
                if stride is None:
                    stride = kernel_size
                kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
                sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
                n_samples, channels, height, width = x.shape
                out_h = (height - kh) // sh + 1
                out_w = (width - kw) // sw + 1
                out = np.zeros((n_samples, channels, out_h, out_w))
                for i in range(out_h):
                    for j in range(out_w):
                        window = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                        out[:, :, i, j] = window.max(axis=(2, 3))
                return out
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            x = np.array([[1.0, 3.0, 2.0, 0.0], [4.0, 2.0, 1.0, 5.0], [0.0, 1.0, 7.0, 2.0]])
            x = x.reshape(1, 1, 3, 4)
            out = max_pool2d_forward(x, 2)  # stride 2; the last row is dropped
            assert out.shape == (1, 1, 1, 2), out.shape
            assert np.allclose(out[0, 0], [[4.0, 5.0]]), out

            # overlapping windows: kernel 2, stride 1
            out = max_pool2d_forward(x, 2, stride=1)
            assert np.allclose(out[0, 0], [[4.0, 3.0, 5.0], [4.0, 7.0, 7.0]]), out

            # a pair kernel (height 3, width 2)
            out = max_pool2d_forward(x, (3, 2))
            assert np.allclose(out[0, 0], [[4.0, 7.0]]), out
            print("max_pool2d_forward: visible tests passed")
            """
        ),
        hidden_test(
            "test_max_pool2d_forward",
            "max_pool2d_forward",
            "default stride, sizes that don't divide, pair kernels",
        ),
        hidden_test(
            "test_max_pool2d_forward_overlap",
            "max_pool2d_forward",
            "overlapping windows, pair kernel and stride, integer inputs with tied maxima",
        ),
        md(
            """
            ## 5. `avg_pool2d_forward(x, kernel_size, stride=None)` ({pts:g} points)

            As `max_pool2d_forward`, with the mean of each window instead of its maximum.
            """.replace("{pts:g}", f"{points_of('avg_pool2d_forward', a):g}")
        ),
        answer(
            "avg_pool2d_forward",
            """
            def avg_pool2d_forward(x, kernel_size, stride=None):
                \"\"\"Average pooling, NCHW, no padding, floor mode.

                x: (N, C, H, W) -> (N, C, (H - kh) // sh + 1, (W - kw) // sw + 1)
                \"\"\"
                ### BEGIN SOLUTION
                if stride is None:
                    stride = kernel_size
                kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
                sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
                n_samples, channels, height, width = x.shape
                out_h = (height - kh) // sh + 1
                out_w = (width - kw) // sw + 1
                out = np.zeros((n_samples, channels, out_h, out_w))
                for i in range(out_h):
                    for j in range(out_w):
                        window = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                        out[:, :, i, j] = window.mean(axis=(2, 3))
                return out
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            x = np.array([[1.0, 3.0, 2.0, 0.0], [4.0, 2.0, 1.0, 5.0], [0.0, 1.0, 7.0, 2.0]])
            x = x.reshape(1, 1, 3, 4)
            out = avg_pool2d_forward(x, 2)
            assert np.allclose(out[0, 0], [[2.5, 2.0]]), out

            out = avg_pool2d_forward(x, (1, 2), stride=(2, 1))  # rows 0 and 2, all column pairs
            assert np.allclose(out[0, 0], [[2.0, 2.5, 1.0], [0.5, 4.0, 4.5]]), out
            print("avg_pool2d_forward: visible tests passed")
            """
        ),
        hidden_test(
            "test_avg_pool2d_forward",
            "avg_pool2d_forward",
            "default stride, sizes that don't divide, pair kernels",
        ),
        hidden_test(
            "test_avg_pool2d_forward_overlap",
            "avg_pool2d_forward",
            "overlapping windows, pair kernel and stride",
        ),
    ]
    return notebook(cells, a)


# ---------------------------------------------------------------------------------------------
# output shapes
# ---------------------------------------------------------------------------------------------

OUTPUT_SHAPES_CONTRACTS = {
    "conv_output_size": "output size of a convolution along one axis",
    "pool_output_size": "output size of a pooling layer along one axis",
    "conv2d_output_shape": "output shape `(C', H', W')` of a convolution layer",
    "conv2d_num_params": "number of parameters of a convolution layer",
    "layer_output_shapes": "shape after each layer of a stack of `torch.nn` layers",
}


def output_shapes() -> nbformat.NotebookNode:
    a = "output_shapes"
    cells = [
        md(
            """
            # Exercise: output shapes and parameter counts

            Before you build a network you should be able to say what shape every feature map
            has and how many parameters each layer holds. Here you write those calculations:
            from the settings of the layers, never by running them.
            """
        ),
        points_table(a, OUTPUT_SHAPES_CONTRACTS),
        md(
            """
            **Rules.** Write your code only in the cells that say `# YOUR CODE HERE`. Use plain
            Python and NumPy. In `layer_output_shapes` read the layers' settings
            (`layer.kernel_size`, `layer.stride`, ...); running a layer on a tensor is switched
            off while your function is graded.
            """
        ),
        code(
            """
            import numpy as np
            from torch import nn
            """
        ),
        md(
            """
            ## Recap: the output-size formula

            Along one axis, a convolution with kernel size $k$, stride $s$, padding $p$ and
            dilation $d$ turns $n$ inputs into

            $$n' = \\left\\lfloor \\frac{n + 2p - d(k - 1) - 1}{s} \\right\\rfloor + 1$$

            outputs: the padded input has $n + 2p$ positions, a dilated kernel spans
            $d(k-1) + 1$ of them, and the windows start every $s$ positions. A worked example
            that lists the windows:
            """
        ),
        code(
            """
            n, kernel_size, stride, padding = 7, 3, 2, 1
            padded = n + 2 * padding
            starts = list(range(0, padded - kernel_size + 1, stride))
            print(f"padded length {padded}, window starts {starts}")
            print("output size by counting:", len(starts))
            print("output size by the formula:", (n + 2 * padding - kernel_size) // stride + 1)

            conv = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
            weights = conv.weight.numel()
            biases = conv.bias.numel()
            print(f"{conv}: {weights} weights (8 * 3 * 3 * 3) + {biases} biases")
            """
        ),
        md(
            """
            ## 1. `conv_output_size` ({pts:g} points)

            `conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1)`:

            Return the output size (an `int`) by the formula above. Raise `ValueError` when an
            argument is out of range (`kernel_size < 1`, `stride < 1`, `padding < 0`,
            `dilation < 1`) or when the result would be smaller than 1 (the kernel does not
            fit in the padded input).
            """.replace("{pts:g}", f"{points_of('conv_output_size', a):g}")
        ),
        answer(
            "conv_output_size",
            """
            def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
                \"\"\"Output size of a convolution along one axis (an int).\"\"\"
                ### BEGIN SOLUTION
                if kernel_size < 1 or stride < 1 or padding < 0 or dilation < 1:
                    raise ValueError(
                        f"expected kernel_size >= 1, stride >= 1, padding >= 0, dilation >= 1; "
                        f"got {kernel_size}, {stride}, {padding}, {dilation}"
                    )
                size = (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
                if size < 1:
                    raise ValueError(f"the kernel does not fit in the padded input of size {n}")
                return size
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            assert conv_output_size(28, 5, padding=2) == 28  # LeNet's first layer keeps 28
            assert conv_output_size(7, 3, stride=2) == 3
            assert conv_output_size(8, 3, stride=2) == 3  # (8 - 3) / 2 = 2.5, rounded down
            assert conv_output_size(10, 3, dilation=2) == 6
            assert isinstance(conv_output_size(7, 3), int)
            try:
                conv_output_size(3, 5)
            except ValueError:
                pass
            else:
                raise AssertionError("a kernel larger than the input should raise ValueError")
            print("conv_output_size: visible tests passed")
            """
        ),
        hidden_test(
            "test_conv_output_size",
            "conv_output_size",
            "many sizes, kernels, strides, paddings and dilations",
        ),
        hidden_test(
            "test_conv_output_size_errors",
            "conv_output_size",
            "out-of-range settings and kernels that do not fit raise ValueError",
        ),
        md(
            """
            ## 2. `pool_output_size(n, kernel_size, stride=None, padding=0)` ({pts:g} points)

            The same for a pooling layer: `stride=None` means `stride = kernel_size`; floor
            mode; `ValueError` as above.
            """.replace("{pts:g}", f"{points_of('pool_output_size', a):g}")
        ),
        answer(
            "pool_output_size",
            """
            def pool_output_size(n, kernel_size, stride=None, padding=0):
                \"\"\"Output size of a pooling layer along one axis (an int), floor mode.\"\"\"
                ### BEGIN SOLUTION
                if stride is None:
                    stride = kernel_size
                if kernel_size < 1 or stride < 1 or padding < 0:
                    raise ValueError(
                        f"expected kernel_size >= 1, stride >= 1, padding >= 0; "
                        f"got {kernel_size}, {stride}, {padding}"
                    )
                size = (n + 2 * padding - kernel_size) // stride + 1
                if size < 1:
                    raise ValueError(f"the window does not fit in the padded input of size {n}")
                return size
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            assert pool_output_size(28, 2) == 14
            assert pool_output_size(7, 2) == 3  # the last column is dropped
            assert pool_output_size(13, 3, stride=2) == 6
            assert pool_output_size(9, 3, stride=2, padding=1) == 5
            print("pool_output_size: visible tests passed")
            """
        ),
        hidden_test("test_pool_output_size", "pool_output_size", "many settings, default stride"),
        hidden_test(
            "test_pool_output_size_errors",
            "pool_output_size",
            "out-of-range settings and windows that do not fit raise ValueError",
        ),
        md(
            """
            ## 3. `conv2d_output_shape` ({pts:g} points)

            `conv2d_output_shape(input_shape, out_channels, kernel_size, stride=1, padding=0)`:

            `input_shape`: `(C, H, W)`; `kernel_size`, `stride`, `padding`: an int or a pair
            `(height, width)`. Return the tuple `(out_channels, H', W')`. You may call your
            `conv_output_size`.
            """.replace("{pts:g}", f"{points_of('conv2d_output_shape', a):g}")
        ),
        answer(
            "conv2d_output_shape",
            """
            def conv2d_output_shape(input_shape, out_channels, kernel_size, stride=1, padding=0):
                \"\"\"(C, H, W) -> (out_channels, H', W') of a Conv2d layer.\"\"\"
                ### BEGIN SOLUTION
                kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
                sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
                ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
                _, height, width = input_shape
                return (
                    out_channels,
                    conv_output_size(height, kh, sh, ph),
                    conv_output_size(width, kw, sw, pw),
                )
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            assert conv2d_output_shape((3, 32, 32), 16, 3, padding=1) == (16, 32, 32)
            assert conv2d_output_shape((1, 28, 28), 6, 5) == (6, 24, 24)
            # pairs are (height, width)
            assert conv2d_output_shape((3, 10, 20), 4, (3, 5), stride=(1, 5)) == (4, 8, 4)
            print("conv2d_output_shape: visible tests passed")
            """
        ),
        hidden_test(
            "test_conv2d_output_shape",
            "conv2d_output_shape",
            "square and non-square inputs, int and pair kernel size, stride and padding",
        ),
        md(
            """
            ## 4. `conv2d_num_params` ({pts:g} points)

            `conv2d_num_params(in_channels, out_channels, kernel_size, bias=True)`:

            Return the number of parameters (an `int`) of
            `nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)`; `kernel_size` is an
            int or a pair.
            """.replace("{pts:g}", f"{points_of('conv2d_num_params', a):g}")
        ),
        answer(
            "conv2d_num_params",
            """
            def conv2d_num_params(in_channels, out_channels, kernel_size, bias=True):
                \"\"\"Number of weights and biases of a Conv2d layer.\"\"\"
                ### BEGIN SOLUTION
                kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
                weights = out_channels * in_channels * kh * kw
                return weights + (out_channels if bias else 0)
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            assert conv2d_num_params(1, 6, 5) == 6 * 1 * 5 * 5 + 6  # LeNet's first layer: 156
            assert conv2d_num_params(3, 8, (3, 1), bias=False) == 8 * 3 * 3 * 1
            print("conv2d_num_params: visible tests passed")
            """
        ),
        hidden_test(
            "test_conv2d_num_params",
            "conv2d_num_params",
            "int and pair kernel sizes, with and without bias",
        ),
        md(
            """
            ## 5. `layer_output_shapes(layers, input_shape)` ({pts:g} points)

            `layers`: a list of `torch.nn` modules among `Conv2d` (padding an int, a pair,
            `'same'` or `'valid'`; any stride and dilation), `MaxPool2d`, `AvgPool2d`,
            `AdaptiveAvgPool2d`, `BatchNorm2d`, `ReLU`, `LeakyReLU`, `Sigmoid`, `Tanh`,
            `Dropout`, `Flatten` and `Linear`. `input_shape`: `(C, H, W)`, without the batch
            axis. Return a list with the shape (a tuple, no batch axis) after each layer:
            `Flatten` gives `(C * H * W,)`, `Linear` gives `(out_features,)`, the layers that
            work value by value keep the shape.

            Work the shapes out from the layers' settings: `layer.kernel_size`,
            `layer.stride`, `layer.padding`, `layer.dilation`, `layer.out_channels`,
            `layer.output_size`, `layer.out_features`. Note that `Conv2d` stores them as pairs,
            while the pooling layers keep what they were given (an int or a pair). You may call
            your functions above. `type(layer).__name__` tells you the kind of layer.
            """.replace("{pts:g}", f"{points_of('layer_output_shapes', a):g}")
        ),
        answer(
            "layer_output_shapes",
            """
            def layer_output_shapes(layers, input_shape):
                \"\"\"Shape (no batch axis) after each layer, from the layers' settings.\"\"\"
                ### BEGIN SOLUTION

                def as_pair(value):
                    return (value, value) if np.ndim(value) == 0 else tuple(value)

                shape = tuple(input_shape)
                shapes = []
                for layer in layers:
                    kind = type(layer).__name__
                    if kind == "Conv2d":
                        _, height, width = shape
                        if layer.padding == "same":
                            size = (height, width)
                        else:
                            padding = (0, 0) if layer.padding == "valid" else layer.padding
                            size = tuple(
                                conv_output_size(n, k, s, p, d)
                                for n, k, s, p, d in zip(
                                    (height, width),
                                    layer.kernel_size,
                                    layer.stride,
                                    padding,
                                    layer.dilation,
                                )
                            )
                        shape = (layer.out_channels, *size)
                    elif kind in ("MaxPool2d", "AvgPool2d"):
                        channels, height, width = shape
                        kernel = as_pair(layer.kernel_size)
                        stride = as_pair(layer.stride) if layer.stride else kernel
                        dilation = as_pair(getattr(layer, "dilation", 1))
                        padding = as_pair(layer.padding)
                        size = tuple(
                            conv_output_size(n, k, s, p, d)
                            for n, k, s, p, d in zip(
                                (height, width), kernel, stride, padding, dilation
                            )
                        )
                        shape = (channels, *size)
                    elif kind == "AdaptiveAvgPool2d":
                        channels, height, width = shape
                        out_h, out_w = as_pair(layer.output_size)
                        shape = (channels, out_h or height, out_w or width)
                    elif kind == "Flatten":
                        shape = (int(np.prod(shape)),)
                    elif kind == "Linear":
                        shape = (layer.out_features,)
                    shapes.append(shape)
                return shapes
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests: LeNet-5 on 28x28 images
            lenet = [
                nn.Conv2d(1, 6, kernel_size=5, padding=2),
                nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Conv2d(6, 16, kernel_size=5),
                nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.Linear(16 * 5 * 5, 120),
            ]
            expected = [
                (6, 28, 28),
                (6, 28, 28),
                (6, 14, 14),
                (16, 10, 10),
                (16, 10, 10),
                (16, 5, 5),
                (400,),
                (120,),
            ]
            assert layer_output_shapes(lenet, (1, 28, 28)) == expected

            # 'same' keeps H and W; dilation 2 makes a 3x3 kernel span 5 pixels
            layers = [nn.Conv2d(3, 4, 3, padding="same"), nn.Conv2d(4, 2, 3, dilation=2)]
            assert layer_output_shapes(layers, (3, 9, 12)) == [(4, 9, 12), (2, 5, 8)]
            print("layer_output_shapes: visible tests passed")
            """
        ),
        hidden_test(
            "test_layer_output_shapes",
            "layer_output_shapes",
            "LeNet-like stacks with pooling, batch norm, activations, Flatten and Linear",
        ),
        hidden_test(
            "test_layer_output_shapes_padding",
            "layer_output_shapes",
            "padding 'same' and 'valid', pair padding and stride, dilation, adaptive pooling",
        ),
    ]
    return notebook(cells, a)


# ---------------------------------------------------------------------------------------------
# backprop
# ---------------------------------------------------------------------------------------------

BACKPROP_CONTRACTS = {
    "relu_backward": "gradient of ReLU",
    "max_pool2d_backward": "gradient of max pooling",
    "avg_pool2d_backward": "gradient of average pooling",
    "conv2d_backward": "gradients of a convolution layer: dx, dw, db",
    "numerical_gradient": "gradient by centred differences, to check the others",
}


def backprop() -> nbformat.NotebookNode:
    a = "backprop"
    cells = [
        md(
            """
            # Exercise: backpropagation through convolution and pooling

            Each layer's backward pass receives `dout`, the gradient of the loss with respect
            to the layer's output, and returns the gradient with respect to its input (and its
            parameters). Here you write them with NumPy loops and check them numerically.
            """
        ),
        points_table(a, BACKPROP_CONTRACTS),
        md(RULES),
        code(
            """
            import numpy as np

            np.set_printoptions(precision=3, suppress=True)
            """
        ),
        md(
            """
            ## Recap: gradients flow back through each window

            Every output value of a window operator depends on the inputs of its window, so
            its gradient goes back to exactly those inputs:

            - **max pooling**: only the maximum of the window affected the output, so it gets
              all of `dout[i, j]`; the others get 0. With tied maxima, the gradient goes to the
              *first* maximum in row-major order (what `np.argmax` returns).
            - **average pooling**: each of the `kh * kw` inputs gets `dout[i, j] / (kh * kw)`.
            - **convolution**: `out[i, j] += x_window * w`, so the window of `dx` gets
              `dout[i, j] * w`, and `dw` gets `dout[i, j] * x_window`.

            When windows overlap, an input gets the **sum** of the gradients of all windows it
            is in. A worked example with a 2x2 max pool, stride 1:
            """
        ),
        code(
            """
            x = np.array([[1.0, 5.0, 2.0], [3.0, 4.0, 6.0]])
            dout = np.array([[10.0, 20.0]])  # two windows: columns 0-1 and 1-2
            dx = np.zeros_like(x)
            for j in range(2):
                window = x[:, j : j + 2]
                a, b = np.unravel_index(np.argmax(window), window.shape)
                print(f"window {j}:\\n{window}\\nits maximum {window[a, b]} is at {(a, b + j)}")
                dx[a, b + j] += dout[0, j]
            print("dx =\\n", dx)

            # the check every backward pass deserves: centred differences
            f = lambda v: np.sum(v**3)
            v, h = np.array([1.0, 2.0]), 1e-5
            e0 = np.array([h, 0.0])
            print("analytic 3v^2:", 3 * v**2, " numerical:", (f(v + e0) - f(v - e0)) / (2 * h))
            """
        ),
        md(
            """
            ## 1. `relu_backward(dout, x)` ({pts:g} points)

            `dout` and `x` have the same shape (any shape). Return `dx = dout` where `x > 0` and
            `0` elsewhere, including where `x == 0`.
            """.replace("{pts:g}", f"{points_of('relu_backward', a):g}")
        ),
        answer(
            "relu_backward",
            """
            def relu_backward(dout, x):
                \"\"\"Gradient of ReLU: dout where x > 0, else 0. Same shape as x.\"\"\"
                ### BEGIN SOLUTION
                return np.where(x > 0, dout, 0.0)
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            x = np.array([[-1.0, 0.0, 2.0]])
            dout = np.array([[5.0, 6.0, 7.0]])
            assert np.array_equal(relu_backward(dout, x), [[0.0, 0.0, 7.0]])
            print("relu_backward: visible tests passed")
            """
        ),
        hidden_test(
            "test_relu_backward", "relu_backward", "random shapes, integer inputs with x == 0"
        ),
        md(
            """
            ## 2. `max_pool2d_backward(dout, x, kernel_size, stride=None)` ({pts:g} points)

            `x`: the input `(N, C, H, W)` of `max_pool2d_forward(x, kernel_size, stride)`;
            `dout`: the gradient of its output, `(N, C, H', W')`. Return `dx` shaped like `x`:
            each window's gradient goes to its maximum; with ties, to the first maximum in
            row-major order; where windows overlap, the gradients add up.
            """.replace("{pts:g}", f"{points_of('max_pool2d_backward', a):g}")
        ),
        answer(
            "max_pool2d_backward",
            """
            def max_pool2d_backward(dout, x, kernel_size, stride=None):
                \"\"\"Gradient of max pooling.

                dout: (N, C, H', W'), x: (N, C, H, W) -> dx: (N, C, H, W)
                \"\"\"
                ### BEGIN SOLUTION
                if stride is None:
                    stride = kernel_size
                kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
                sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
                n_samples, channels, out_h, out_w = dout.shape
                dx = np.zeros(x.shape)
                for n in range(n_samples):
                    for c in range(channels):
                        for i in range(out_h):
                            for j in range(out_w):
                                window = x[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
                                a, b = np.unravel_index(np.argmax(window), window.shape)
                                dx[n, c, i * sh + a, j * sw + b] += dout[n, c, i, j]
                return dx
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            x = np.array([[1.0, 5.0, 2.0], [3.0, 4.0, 6.0]]).reshape(1, 1, 2, 3)
            dout = np.array([[10.0, 20.0]]).reshape(1, 1, 1, 2)
            dx = max_pool2d_backward(dout, x, 2, stride=1)
            assert np.array_equal(dx[0, 0], [[0.0, 10.0, 0.0], [0.0, 0.0, 20.0]]), dx

            # a tie: the first maximum in row-major order gets the gradient
            x = np.array([[2.0, 2.0], [2.0, 1.0]]).reshape(1, 1, 2, 2)
            dx = max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2)
            assert np.array_equal(dx[0, 0], [[1.0, 0.0], [0.0, 0.0]]), dx
            print("max_pool2d_backward: visible tests passed")
            """
        ),
        hidden_test(
            "test_max_pool2d_backward",
            "max_pool2d_backward",
            "default stride, pair kernels, overlapping windows",
        ),
        hidden_test(
            "test_max_pool2d_backward_ties",
            "max_pool2d_backward",
            "integer inputs with tied maxima in overlapping windows",
        ),
        md(
            """
            ## 3. `avg_pool2d_backward(dout, x, kernel_size, stride=None)` ({pts:g} points)

            The same for `avg_pool2d_forward`: each input of a window gets
            `dout / (kh * kw)`; overlapping windows add up. Return `dx` shaped like `x`.
            """.replace("{pts:g}", f"{points_of('avg_pool2d_backward', a):g}")
        ),
        answer(
            "avg_pool2d_backward",
            """
            def avg_pool2d_backward(dout, x, kernel_size, stride=None):
                \"\"\"Gradient of average pooling.

                dout: (N, C, H', W'), x: (N, C, H, W) -> dx: (N, C, H, W)
                \"\"\"
                ### BEGIN SOLUTION
                if stride is None:
                    stride = kernel_size
                kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
                sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
                _, _, out_h, out_w = dout.shape
                dx = np.zeros(x.shape)
                for i in range(out_h):
                    for j in range(out_w):
                        share = dout[:, :, i, j] / (kh * kw)
                        rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                        dx[:, :, rows, cols] += share[:, :, None, None]
                return dx
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            x = np.zeros((1, 1, 2, 3))
            dout = np.array([[4.0, 8.0]]).reshape(1, 1, 1, 2)
            dx = avg_pool2d_backward(dout, x, 2, stride=1)
            # the middle column is in both windows: 4/4 + 8/4 = 3
            assert np.allclose(dx[0, 0], [[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]]), dx
            print("avg_pool2d_backward: visible tests passed")
            """
        ),
        hidden_test(
            "test_avg_pool2d_backward",
            "avg_pool2d_backward",
            "default stride, overlapping windows, pair kernel and stride",
        ),
        md(
            """
            ## 4. `conv2d_backward(dout, x, w, b, stride=1, padding=0)` ({pts:g} points)

            For `out = conv2d_forward(x, w, b, stride, padding)` (the convolution exercise's
            layer: `x` `(N, C, H, W)`, `w` `(F, C, kh, kw)`, `b` `(F,)` or `None`) and
            `dout` `(N, F, H', W')`, return the tuple `(dx, dw, db)`: `dx` shaped like `x`,
            `dw` like `w`, `db` like `b` (`None` when `b` is `None`). Hint: work on the padded
            input, then cut the padding away from its gradient.
            """.replace("{pts:g}", f"{points_of('conv2d_backward', a):g}")
        ),
        answer(
            "conv2d_backward",
            """
            def conv2d_backward(dout, x, w, b, stride=1, padding=0):
                \"\"\"Gradients of a convolution layer.

                dout: (N, F, H', W'), x: (N, C, H, W), w: (F, C, kh, kw), b: (F,) or None
                -> dx like x, dw like w, db like b (None when b is None)
                \"\"\"
                ### BEGIN SOLUTION
                sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
                ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
                n_samples, n_filters, out_h, out_w = dout.shape
                _, _, kh, kw = w.shape
                height, width = x.shape[2:]
                padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
                dpadded = np.zeros(padded.shape)
                dw = np.zeros(w.shape)
                for n in range(n_samples):
                    for f in range(n_filters):
                        for i in range(out_h):
                            for j in range(out_w):
                                rows = slice(i * sh, i * sh + kh)
                                cols = slice(j * sw, j * sw + kw)
                                dw[f] += dout[n, f, i, j] * padded[n, :, rows, cols]
                                dpadded[n, :, rows, cols] += dout[n, f, i, j] * w[f]
                dx = dpadded[:, :, ph : ph + height, pw : pw + width]
                db = None if b is None else dout.sum(axis=(0, 2, 3))
                return dx, dw, db
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            # one 1x1 output: out = sum(x * w) + b, so dx = dout * w, dw = dout * x, db = dout
            x = np.arange(4.0).reshape(1, 1, 2, 2)
            w = np.array([[1.0, -1.0], [2.0, 0.5]]).reshape(1, 1, 2, 2)
            dout = np.array([3.0]).reshape(1, 1, 1, 1)
            dx, dw, db = conv2d_backward(dout, x, w, np.zeros(1))
            assert np.allclose(dx, 3.0 * w) and np.allclose(dw, 3.0 * x) and np.allclose(db, [3.0])

            # shapes, with stride and padding, and no bias
            x, w = np.ones((2, 3, 5, 6)), np.ones((4, 3, 3, 2))
            dx, dw, db = conv2d_backward(np.ones((2, 4, 3, 3)), x, w, None, stride=2, padding=1)
            assert dx.shape == x.shape and dw.shape == w.shape and db is None
            print("conv2d_backward: visible tests passed")
            """
        ),
        hidden_test(
            "test_conv2d_backward",
            "conv2d_backward",
            "stride 1, no padding; batches, channels, non-square kernels, bias and no bias",
        ),
        hidden_test(
            "test_conv2d_backward_stride",
            "conv2d_backward",
            "stride 2 and 3, pair stride and padding, sizes that don't divide",
        ),
        md(
            """
            ## 5. `numerical_gradient(f, x, h=1e-5)` ({pts:g} points)

            `f` takes an array shaped like `x` and returns a number. Return the gradient of `f`
            at `x` by centred differences, an array shaped like `x`:

            $$\\frac{\\partial f}{\\partial x_i} \\approx
            \\frac{f(x + h e_i) - f(x - h e_i)}{2h}.$$

            Use the `h` you are given. `x` must be as it was when you return (nudging an
            entry and putting it back is fine; so is working on a copy).
            """.replace("{pts:g}", f"{points_of('numerical_gradient', a):g}")
        ),
        answer(
            "numerical_gradient",
            """
            def numerical_gradient(f, x, h=1e-5):
                \"\"\"Gradient of the scalar function f at x by centred differences, like x.\"\"\"
                ### BEGIN SOLUTION
                point = np.array(x, dtype=np.float64)  # a copy: x stays as it was
                grad = np.zeros(point.shape)
                for index in np.ndindex(point.shape):
                    old = point[index]
                    point[index] = old + h
                    plus = f(point)
                    point[index] = old - h
                    minus = f(point)
                    point[index] = old
                    grad[index] = (plus - minus) / (2 * h)
                return grad
                ### END SOLUTION
            """,
        ),
        code(
            """
            # Visible tests
            x = np.array([[1.0, -2.0], [0.5, 3.0]])
            grad = numerical_gradient(lambda v: np.sum(v**2), x)
            assert grad.shape == x.shape
            assert np.allclose(grad, 2 * x, atol=1e-6)
            # f(v) = v0 * v1: the gradient is (v1, v0)
            grad = numerical_gradient(lambda v: v[0] * v[1], np.array([3.0, 5.0]), h=1e-3)
            assert np.allclose(grad, [5.0, 3.0])
            print("numerical_gradient: visible tests passed")
            """
        ),
        hidden_test(
            "test_numerical_gradient",
            "numerical_gradient",
            "several functions of 1-D, 2-D and 3-D arrays with the default h",
        ),
        hidden_test(
            "test_numerical_gradient_step",
            "numerical_gradient",
            "the h passed in is used (the centred difference of x**3 is 3x**2 + h**2)",
        ),
    ]
    return notebook(cells, a)


BUILDERS = {"convolution": convolution, "output_shapes": output_shapes, "backprop": backprop}


def main(argv: list[str]) -> None:
    for assignment in argv or list(BUILDERS):
        nb = BUILDERS[assignment]()
        nbformat.validate(nb)
        path = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
