"""`dilbench check dilation`: TensorFlow's dilated convolutions against the NumPy reference and SciPy.

For dilations 1-4 and 'valid'/'same' padding on random inputs it compares tf.nn.conv2d(dilations=d),
tf.nn.atrous_conv2d and scipy.signal.correlate2d (spread kernel) with `dilbench.dilation`, the input
gradient (GradientTape) with the reference transposed convolution and with tf.nn.conv2d_transpose, and
shows that TensorFlow computes cross-correlation: a true convolution needs the flipped kernel.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dilbench.dilation import conv2d_reference, convolve2d_reference, dilate_kernel, input_gradient_reference
from dilbench.tables import text_table

TOLERANCE = 1e-4  # float32 TensorFlow against float64 NumPy: observed errors are ~2e-6
DILATIONS = (1, 2, 3, 4)
NOTE = (
    "TensorFlow's conv2d computes cross-correlation, out[i,j] = sum_ab x[i+a*d, j+b*d] * k[a,b], with no kernel flip.\n"
    "A true convolution flips the kernel: conv(x, k) = tf.nn.conv2d(x, k[::-1, ::-1]); the 'differ' rows show that\n"
    "the unflipped kernel gives a different result. The input gradient of a dilated convolution is a transposed\n"
    "dilated convolution with the same kernel."
)
NO_SCIPY = "scipy is not installed (pip install scipy, or pip install -e '.[dev]')"


@dataclass(frozen=True)
class CheckRow:
    computed: str
    reference: str
    dilation: int
    padding: str
    error: float  # max abs difference; nan when the computation could not run
    expect: str = "match"  # "differ": the row shows two things are NOT the same
    tolerance: float = TOLERANCE
    problem: str | None = None  # why it could not run, or why it was skipped
    skipped: bool = False

    @property
    def ok(self) -> bool:
        if self.skipped:
            return True
        if math.isnan(self.error):
            return False
        return self.error <= self.tolerance if self.expect == "match" else self.error > self.tolerance


def _scipy(name: str, x: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    """scipy.signal.correlate2d or convolve2d summed over input channels, per example and output channel."""
    import scipy.signal

    fn = getattr(scipy.signal, name)
    out: np.ndarray | None = None
    for c in range(x.shape[3]):
        for o in range(kernel.shape[3]):
            plane = np.stack([fn(x[n, :, :, c], kernel[:, :, c, o], mode=mode) for n in range(x.shape[0])])
            if out is None:
                out = np.zeros((*plane.shape, kernel.shape[3]))
            out[..., o] += plane
    assert out is not None, "x and kernel have at least one channel"
    return out


def run_checks(seed: int = 0) -> list[CheckRow]:
    """Every comparison as a row; `all(row.ok for row in rows)` is the verdict."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 13, 15, 2)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 2, 3)).astype(np.float32)
    has_scipy = importlib.util.find_spec("scipy") is not None
    rows: list[CheckRow] = []

    def check(computed: str, reference: str, d: int, padding: str, expected: np.ndarray, fn: Callable, *args,
              expect: str = "match", needs_scipy: bool = False) -> np.ndarray | None:
        """Run fn(*args), compare with `expected`, append the row; the value, or None if it did not run."""
        if needs_scipy and not has_scipy:
            rows.append(CheckRow(computed, reference, d, padding, math.nan, expect, problem=NO_SCIPY, skipped=True))
            return None
        try:
            value = np.asarray(fn(*args), np.float64)
        except tf.errors.OpError as err:
            rows.append(CheckRow(computed, reference, d, padding, math.nan, expect, problem=err.message.splitlines()[0]))
            return None
        if value.shape != expected.shape:
            problem = f"{computed}: shape {value.shape}, expected {expected.shape}"
            rows.append(CheckRow(computed, reference, d, padding, math.nan, expect, problem=problem))
            return None
        rows.append(CheckRow(computed, reference, d, padding, float(np.max(np.abs(value - expected))), expect))
        return value

    def conv(k, d, padding):
        return tf.nn.conv2d(tx, k, 1, padding.upper(), dilations=d)

    def tape_gradient(grad_out, d, padding):
        with tf.GradientTape() as tape:
            tape.watch(tx)
            out = conv(tk, d, padding)
        return tape.gradient(out, tx, output_gradients=tf.constant(grad_out))

    def transpose(grad_out, d, padding):
        return tf.nn.conv2d_transpose(tf.constant(grad_out), tk, x.shape, 1, padding.upper(), dilations=d)

    tx, tk, flipped = tf.constant(x), tf.constant(kernel), tf.constant(kernel[::-1, ::-1])
    for d in DILATIONS:
        spread = dilate_kernel(kernel.astype(np.float64), d)
        for padding in ("valid", "same"):
            ref = conv2d_reference(x, kernel, d, padding)
            check("tf.nn.conv2d(dilations=d)", "NumPy reference", d, padding, ref, conv, tk, d, padding)
            check("tf.nn.atrous_conv2d(rate=d)", "NumPy reference", d, padding, ref, tf.nn.atrous_conv2d, tx, tk, d, padding.upper())
            check("scipy correlate2d(spread kernel)", "NumPy reference", d, padding, ref,
                  _scipy, "correlate2d", x, spread, padding, needs_scipy=True)
            grad_out = rng.standard_normal(ref.shape).astype(np.float32)
            grad_ref = input_gradient_reference(grad_out, kernel, d, padding, x.shape)
            tape_grad = check("input gradient (GradientTape)", "NumPy transposed conv", d, padding, grad_ref,
                              tape_gradient, grad_out, d, padding)
            against, expected = (
                ("input gradient (GradientTape)", tape_grad) if tape_grad is not None else ("NumPy transposed conv", grad_ref))
            check("tf.nn.conv2d_transpose(dilations=d)", against, d, padding, expected, transpose, grad_out, d, padding)
        true_conv = convolve2d_reference(x, spread)
        check("tf.nn.conv2d(flipped kernel)", "true convolution", d, "valid", true_conv, conv, flipped, d, "valid")
        check("tf.nn.conv2d(kernel as is)", "true convolution", d, "valid", true_conv, conv, tk, d, "valid", expect="differ")
        check("scipy convolve2d(spread kernel)", "true convolution", d, "valid", true_conv,
              _scipy, "convolve2d", x, spread, "valid", needs_scipy=True)
    return rows


def format_checks(rows: list[CheckRow]) -> str:
    """The note on cross-correlation, then one line per comparison and a verdict."""
    header = ["computed", "against", "d", "padding", "expect", "max abs err", "result"]
    table = []
    for r in rows:
        error = "-" if math.isnan(r.error) else f"{r.error:.2e}"
        result = "skipped" if r.skipped else ("ok" if r.ok else "FAIL")
        table.append([r.computed, r.reference, str(r.dilation), r.padding, r.expect, error, result])
    problems = sorted({r.problem for r in rows if r.problem})
    failed = sum(not r.ok for r in rows)
    verdict = (f"FAILED: {failed} of {len(rows)} comparisons" if failed else f"all {sum(not r.skipped for r in rows)} comparisons ok")
    return "\n".join([NOTE, "", text_table(table, header), "", *(f"note: {p}" for p in problems),
                      f"{verdict} (match: max abs err <= {TOLERANCE:g}; differ: > {TOLERANCE:g})"])
