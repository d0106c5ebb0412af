"""2-D dilated convolution in plain NumPy: the reference TensorFlow's kernels are checked against.

A dilation-d convolution is an ordinary one with the kernel spread out by d-1 zeros between taps.
Everything here is cross-correlation (no kernel flip), as in TensorFlow, except `convolve2d_reference`,
which is the textbook convolution, written with reversed indices rather than a flipped kernel so it is
an independent definition. Layouts are TensorFlow's: inputs NHWC, kernels HWIO; stride 1; float64.
"""

from __future__ import annotations

import numpy as np


def dilate_kernel(kernel: np.ndarray, dilation: int) -> np.ndarray:
    """Spread a (kh, kw, ...) kernel to ((kh-1)*d+1, (kw-1)*d+1, ...) by inserting d-1 zeros between taps."""
    if dilation < 1:
        raise ValueError(f"dilation must be >= 1, got {dilation}")
    kernel = np.asarray(kernel)
    kh, kw = kernel.shape[:2]
    spread = np.zeros(((kh - 1) * dilation + 1, (kw - 1) * dilation + 1, *kernel.shape[2:]), kernel.dtype)
    spread[::dilation, ::dilation] = kernel
    return spread


def same_padding(size: int) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding at stride 1 for a (spread) kernel of `size`: the odd pixel goes after."""
    return (size - 1) // 2, size - 1 - (size - 1) // 2


def _pad(x: np.ndarray, kernel_shape: tuple[int, ...], padding: str) -> np.ndarray:
    if padding == "valid":
        return x
    if padding != "same":
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return np.pad(x, ((0, 0), same_padding(kernel_shape[0]), same_padding(kernel_shape[1]), (0, 0)))


def correlate(x: np.ndarray, kernel: np.ndarray, padding: str = "valid") -> np.ndarray:
    """Ordinary cross-correlation: out[n,i,j,o] = sum over a,b,c of x[n,i+a,j+b,c] * kernel[a,b,c,o]."""
    x = _pad(np.asarray(x, np.float64), kernel.shape, padding)
    kernel = np.asarray(kernel, np.float64)
    kh, kw = kernel.shape[:2]
    height, width = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros((x.shape[0], height, width, kernel.shape[3]))
    for a in range(kh):
        for b in range(kw):
            out += x[:, a:a + height, b:b + width, :] @ kernel[a, b]
    return out


def conv2d_reference(x: np.ndarray, kernel: np.ndarray, dilation: int = 1, padding: str = "valid") -> np.ndarray:
    """What tf.nn.conv2d(x, kernel, 1, padding, dilations=dilation) computes: spread, then correlate."""
    return correlate(x, dilate_kernel(kernel, dilation), padding)


def input_gradient_reference(
    grad_out: np.ndarray, kernel: np.ndarray, dilation: int, padding: str, input_shape: tuple[int, ...],
) -> np.ndarray:
    """d(sum(grad_out * conv2d_reference(x)))/dx: the full correlation of grad_out with the spread kernel
    flipped in space and with in/out channels swapped (a transposed convolution), cropped to x."""
    spread = dilate_kernel(np.asarray(kernel, np.float64), dilation)
    kh, kw = spread.shape[:2]
    padded = np.pad(np.asarray(grad_out, np.float64), ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
    full = correlate(padded, spread[::-1, ::-1].transpose(0, 1, 3, 2))  # gradient w.r.t. the padded input
    top, left = (same_padding(kh)[0], same_padding(kw)[0]) if padding == "same" else (0, 0)
    return full[:, top:top + input_shape[1], left:left + input_shape[2], :]


def convolve2d_reference(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """True 'valid' convolution (no dilation): out[n,i,j,o] = sum x[n, i+kh-1-a, j+kw-1-b, c] * kernel[a,b,c,o]."""
    x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    kh, kw = kernel.shape[:2]
    height, width = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros((x.shape[0], height, width, kernel.shape[3]))
    for a in range(kh):
        for b in range(kw):
            out += x[:, kh - 1 - a:kh - 1 - a + height, kw - 1 - b:kw - 1 - b + width, :] @ kernel[a, b]
    return out
