"""Keras building blocks shared by the model families, and the FLOP count they are measured by.

Imported only inside builders and the `summary` command: importing it imports Keras and TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf

from dilbench.errors import DilbenchError


def layer_seeds(seed: int) -> Iterator[int]:
    """Distinct initializer seeds, one per layer: a Keras initializer given the same seed twice
    produces the same values, so every layer needs its own."""
    rng = np.random.default_rng(seed)
    while True:
        yield int(rng.integers(2**31 - 1))


def conv2d_same(filters: int, kernel: int, stride: int, *, use_bias: bool, dtype: str, seed: int, name: str) -> list[keras.Layer]:
    """slim's `conv2d_same`: 'same' padding at stride 1; at stride > 1 pad (k-1)//2 before and the rest
    after, then a 'valid' convolution, so the output does not depend on whether the input size is even
    (Keras's strided 'same' pads only after for even inputs)."""
    init = keras.initializers.HeNormal(seed=seed)
    if stride == 1:
        return [keras.layers.Conv2D(filters, kernel, padding="same", use_bias=use_bias, kernel_initializer=init, dtype=dtype, name=name)]
    before = (kernel - 1) // 2
    pad = keras.layers.ZeroPadding2D(((before, kernel - 1 - before), (before, kernel - 1 - before)), dtype=dtype, name=f"{name}_pad")
    conv = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="valid", use_bias=use_bias, kernel_initializer=init, dtype=dtype, name=name,
    )
    return [pad, conv]


def batch_norm(momentum: float, epsilon: float, dtype: str, name: str) -> keras.layers.BatchNormalization:
    """BN whose moving statistics update when called with training=True and are used otherwise.

    Built under a tf.distribute strategy with several replicas, BN is synchronized: batch mean and
    variance are taken over the global batch (sums all-reduced across replicas), so N replicas
    normalise, train and update the moving statistics as one device does with the same global batch.
    Unsynchronized, each replica would normalise its own slice. On one replica plain BN is kept: the
    same statistics, without the all-reduce.
    """
    synchronized = tf.distribute.get_strategy().num_replicas_in_sync > 1
    return keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, synchronized=synchronized, dtype=dtype, name=name)


def conv_bn_relu(
    filters: int, kernel: int, stride: int, *, use_bias: bool, momentum: float, epsilon: float, dtype: str, seed: int, name: str,
) -> list[keras.Layer]:
    """Convolution, batch norm, ReLU. The conv normally has no bias: BN subtracts the batch mean, which
    cancels any constant bias, and BN's beta is the learned shift (the config warns if one is asked for)."""
    return [
        *conv2d_same(filters, kernel, stride, use_bias=use_bias, dtype=dtype, seed=seed, name=name),
        batch_norm(momentum, epsilon, dtype, f"{name}_bn"),
        keras.layers.ReLU(dtype=dtype, name=f"{name}_relu"),
    ]


class BottleneckV2(keras.Layer):
    """Pre-activation bottleneck unit of ResNet v2, as slim's `resnet_v2.bottleneck`.

    preact = ReLU(BN(x)); shortcut = x (max-pool 1x1/stride to subsample) when the depth is unchanged,
    else a 1x1 conv (stride, with bias) of preact; residual = 1x1 conv-BN-ReLU -> 3x3 conv(stride)-BN-ReLU
    -> 1x1 conv to `depth` with bias and neither BN nor activation; output = shortcut + residual.
    """

    def __init__(
        self, depth_in: int, depth: int, bottleneck: int, stride: int, *, use_bias: bool, momentum: float,
        epsilon: float, seeds: Iterator[int], dtype: str, name: str,
    ):
        super().__init__(dtype=dtype, name=name)
        self.preact = keras.Sequential([batch_norm(momentum, epsilon, dtype, "preact_bn"), keras.layers.ReLU(dtype=dtype)], name="preact")
        self.project = depth_in != depth
        if self.project:
            self.shortcut = keras.Sequential(
                conv2d_same(depth, 1, stride, use_bias=True, dtype=dtype, seed=next(seeds), name="shortcut"), name="shortcut",
            )
        elif stride > 1:
            self.shortcut = keras.layers.MaxPooling2D(1, stride, dtype=dtype, name="shortcut")
        else:
            self.shortcut = None
        self.residual = keras.Sequential([
            *conv_bn_relu(bottleneck, 1, 1, use_bias=use_bias, seed=next(seeds), name="conv1",
                          momentum=momentum, epsilon=epsilon, dtype=dtype),
            *conv_bn_relu(bottleneck, 3, stride, use_bias=use_bias, seed=next(seeds), name="conv2",
                          momentum=momentum, epsilon=epsilon, dtype=dtype),
            keras.layers.Conv2D(depth, 1, kernel_initializer=keras.initializers.HeNormal(seed=next(seeds)), dtype=dtype, name="conv3"),
        ], name="residual")

    def call(self, x, training=None):
        preact = self.preact(x, training=training)
        shortcut = x if self.shortcut is None else self.shortcut(preact if self.project else x)
        return shortcut + self.residual(preact, training=training)

    def compute_output_shape(self, input_shape):
        return self.residual.compute_output_shape(input_shape)

    def flops(self, input_shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        """Forward FLOPs per example of the convolutions, and the output shape (see `layer_flops`)."""
        residual, shape = layer_flops(self.residual, input_shape)
        shortcut = layer_flops(self.shortcut, input_shape)[0] if self.project else 0
        return residual + shortcut, shape


def layer_flops(layer: keras.Layer, input_shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """Forward FLOPs for one example through `layer`, and its output shape (both without the batch axis).

    Convention: a multiply-add is 2 FLOPs; only convolutions (2*H_out*W_out*k*k*C_in*C_out) and dense
    layers (2*in*out) count. Bias additions, batch norm, activations, pooling and residual additions are
    left out: they are a few FLOPs per activation against hundreds per output for the matmuls.
    Composite layers either are Sequential or define `flops(input_shape)`; any other layer type is an
    UncountedLayerError (a TypeError), so a new layer is counted on purpose rather than silently as 0.
    """
    input_shape = tuple(int(d) for d in input_shape)
    if hasattr(layer, "flops"):
        return layer.flops(input_shape)
    if isinstance(layer, keras.Sequential):
        total, shape = 0, input_shape
        for sub in layer.layers:
            flops, shape = layer_flops(sub, shape)
            total += flops
        return total, shape
    shape = tuple(int(d) for d in layer.compute_output_shape((1, *input_shape))[1:])
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        return 2 * shape[0] * shape[1] * kh * kw * (input_shape[-1] // layer.groups) * shape[-1], shape
    if isinstance(layer, keras.layers.Dense):
        return 2 * math.prod(input_shape) * shape[-1], shape
    if isinstance(layer, UNCOUNTED):
        return 0, shape
    raise UncountedLayerError(
        f"the FLOP count does not know layer type {type(layer).__name__} (layer {layer.name!r}); give it a method "
        f"flops(input_shape) returning (forward FLOPs per example, output shape), both without the batch axis, or wrap "
        f"it in a layer that has one (dilbench's own layers: list it in dilbench/models/layers.py's UNCOUNTED if it has no matmul)")


class UncountedLayerError(DilbenchError, TypeError):
    """A layer type the FLOP count does not know; a plugin's model declares its layers' FLOPs with a `flops` method."""


# Layers whose FLOPs the convention leaves out (elementwise, pooling, shape-only, normalisation).
UNCOUNTED = (
    keras.layers.Activation, keras.layers.ReLU, keras.layers.ELU, keras.layers.LeakyReLU, keras.layers.Softmax,
    keras.layers.AveragePooling2D, keras.layers.MaxPooling2D, keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D, keras.layers.Dropout, keras.layers.Reshape, keras.layers.Flatten,
    keras.layers.ZeroPadding2D, keras.layers.BatchNormalization, keras.layers.Identity,
)
