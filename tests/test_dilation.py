"""The NumPy reference of dilated convolution (known outputs) and `dilbench check dilation`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from toolkit import invoke

from dilbench.checks import dilation as checks
from dilbench.dilation import (
    conv2d_reference,
    convolve2d_reference,
    correlate,
    dilate_kernel,
    input_gradient_reference,
)


def nhwc(a) -> np.ndarray:
    return np.asarray(a, np.float64)[None, :, :, None]


def hwio(k) -> np.ndarray:
    return np.asarray(k, np.float64)[:, :, None, None]


def test_dilate_kernel_inserts_d_minus_1_zeros_between_taps():
    spread = dilate_kernel(np.array([[1, 2], [3, 4]]), 3)
    assert spread.tolist() == [[1, 0, 0, 2], [0, 0, 0, 0], [0, 0, 0, 0], [3, 0, 0, 4]]
    assert dilate_kernel(np.ones((3, 3, 2, 5)), 4).shape == (9, 9, 2, 5)
    assert np.array_equal(dilate_kernel(np.arange(9).reshape(3, 3), 1), np.arange(9).reshape(3, 3))
    with pytest.raises(ValueError):
        dilate_kernel(np.ones((3, 3)), 0)


def test_known_outputs_valid_and_same():
    x = np.arange(25).reshape(5, 5)
    # dilation 2, kernel [[1, 0], [0, -1]]: out[i, j] = x[i, j] - x[i+2, j+2] = -(2*5 + 2)
    out = conv2d_reference(nhwc(x), hwio([[1, 0], [0, -1]]), dilation=2)
    assert out[0, :, :, 0].tolist() == [[-12.0] * 3] * 3
    # 'same', dilation 1, 3x3 box: sums of each pixel's neighbourhood
    small = np.arange(9).reshape(3, 3)
    out = conv2d_reference(nhwc(small), hwio(np.ones((3, 3))), dilation=1, padding="same")
    assert out[0, :, :, 0].tolist() == [[8, 15, 12], [21, 36, 27], [20, 33, 24]]
    # 'same', dilation 2, 3x3 box at the centre of a 5x5 image: rows and columns 0, 2, 4
    out = conv2d_reference(nhwc(x), hwio(np.ones((3, 3))), dilation=2, padding="same")
    assert out.shape == (1, 5, 5, 1) and out[0, 2, 2, 0] == 0 + 2 + 4 + 10 + 12 + 14 + 20 + 22 + 24
    assert out[0, 0, 0, 0] == 0 + 2 + 10 + 12  # the taps that land inside the image


def test_cross_correlation_is_convolution_with_the_flipped_kernel():
    x = nhwc(np.arange(16).reshape(4, 4))
    k = hwio([[1, 2], [3, 4]])
    # true convolution at (0, 0): x[1,1]*k[0,0] + x[1,0]*k[0,1] + x[0,1]*k[1,0] + x[0,0]*k[1,1]
    assert convolve2d_reference(x, k)[0, 0, 0, 0] == 5 * 1 + 4 * 2 + 1 * 3 + 0 * 4
    assert correlate(x, k)[0, 0, 0, 0] == 0 * 1 + 1 * 2 + 4 * 3 + 5 * 4
    np.testing.assert_array_equal(convolve2d_reference(x, k), correlate(x, k[::-1, ::-1]))


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_reference_input_gradient_is_the_adjoint(dilation, padding):
    """<g, conv(x)> = <grad(g), x> for all x, g: the defining property of the input gradient."""
    rng = np.random.default_rng(dilation)
    x = rng.standard_normal((2, 9, 10, 3))
    k = rng.standard_normal((3, 3, 3, 4))
    y = conv2d_reference(x, k, dilation, padding)
    g = rng.standard_normal(y.shape)
    grad = input_gradient_reference(g, k, dilation, padding, x.shape)
    assert grad.shape == x.shape
    assert np.sum(g * y) == pytest.approx(np.sum(grad * x), rel=1e-10)


@pytest.fixture(scope="module")
def rows():
    pytest.importorskip("tensorflow")
    pytest.importorskip("scipy")
    return checks.run_checks(seed=0)


def test_tensorflow_agrees_with_the_references(rows):
    assert all(row.ok for row in rows), [r for r in rows if not r.ok]
    assert {r.dilation for r in rows} == {1, 2, 3, 4} and {r.padding for r in rows} == {"valid", "same"}
    computed = {r.computed for r in rows}
    for name in ("tf.nn.conv2d(dilations=d)", "tf.nn.atrous_conv2d(rate=d)", "scipy correlate2d(spread kernel)",
                 "input gradient (GradientTape)", "tf.nn.conv2d_transpose(dilations=d)"):
        assert name in computed
    matches = [r for r in rows if r.expect == "match"]
    assert len(matches) == 4 * (2 * 5 + 2) and max(r.error for r in matches) < 1e-4
    # the unflipped kernel does NOT give the true convolution: TensorFlow correlates
    differ = [r for r in rows if r.expect == "differ"]
    assert len(differ) == 4 and min(r.error for r in differ) > 1.0


def test_a_wrong_reference_fails_the_check(monkeypatch):
    pytest.importorskip("tensorflow")
    monkeypatch.setattr(checks, "conv2d_reference", lambda x, k, d, padding: conv2d_reference(x, k, d, padding) + 1e-3)
    monkeypatch.setattr(checks, "DILATIONS", (2,))
    bad = [r for r in checks.run_checks(0) if not r.ok]
    assert {r.computed for r in bad} >= {"tf.nn.conv2d(dilations=d)", "tf.nn.atrous_conv2d(rate=d)"}
    assert "FAILED" in checks.format_checks(bad)


def test_missing_scipy_is_reported_not_a_crash(monkeypatch):
    pytest.importorskip("tensorflow")
    real = checks.importlib.util.find_spec
    monkeypatch.setattr(checks.importlib.util, "find_spec", lambda name: None if name == "scipy" else real(name))
    monkeypatch.setattr(checks, "DILATIONS", (1,))
    rows = checks.run_checks(0)
    skipped = [r for r in rows if r.skipped]
    assert len(skipped) == 3 and all(r.ok and math.isnan(r.error) for r in skipped)
    assert "scipy is not installed" in checks.format_checks(rows)


def test_cli_check_dilation(rows, monkeypatch):
    monkeypatch.setattr(checks, "run_checks", lambda seed: rows)
    result = invoke("check", "dilation")
    assert result.exit_code == 0, result.output
    assert "cross-correlation" in result.output and "flipped kernel" in result.output
    assert "all 52 comparisons ok" in result.output
    failing = [checks.CheckRow("tf.nn.conv2d(dilations=d)", "NumPy reference", 2, "valid", 0.5)]
    monkeypatch.setattr(checks, "run_checks", lambda seed: failing)
    result = invoke("check", "dilation")
    assert result.exit_code == 1
    assert "FAIL" in result.output and "1 dilated-convolution comparisons failed" in result.output
