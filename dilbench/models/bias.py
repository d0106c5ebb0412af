"""The one rule about biases in front of batch norm, kept TensorFlow-free so config checks can apply it."""

from __future__ import annotations

import warnings


class PointlessBiasWarning(UserWarning):
    """`use_bias: true` on convolutions that batch norm follows: allowed, but it buys nothing."""


def warn_if_bias_before_bn(use_bias: bool, where: str) -> None:
    """Warn (once per process, Python's default) that a bias in front of BN is wasted parameters."""
    if use_bias:
        warnings.warn(
            f"use_bias: true adds a bias to {where}, which batch norm follows: BN subtracts the batch mean, "
            "cancelling any constant bias (its gradient is zero in training), and BN's beta is the learned "
            "shift; the bias is kept as asked but only adds parameters",
            PointlessBiasWarning,
            stacklevel=3,
        )
