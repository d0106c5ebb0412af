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


@keras.saving.register_keras_serializable(package="dilbench")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras's BatchNormalization whose batch moments in training do not depend on how the batch is ordered or
    split across replicas: one device and N synchronized replicas normalise with bit-equal means and variances
    (but for ties of float64 rounding, below), and so does one device given the batch in another order.

    Keras takes them in float32, by one sum over the batch on one device and by per-replica sums all-reduced
    when synchronized (there as E[x^2] - E[x]^2, another formula), so the same images give means and variances
    an ulp or so apart. ReLU makes that count: a pre-activation within rounding of 0 lands on either side of
    the kink, and with batch norm a few such flips move a batch's gradient by about 1% (issue 21).

    Here each channel's sum S and sum of squares Q of the float32 input (Keras casts bfloat16 and float16 to
    float32 first) are accumulated in float64, all-reduced in float64 with the value count n (one all-reduce)
    when synchronized across several replicas, and mean = S/n, variance = max(Q/n - mean^2, 0) are rounded once
    to float32. Every float32 value and its square are exact in float64, and a float64 sum of n terms, in any
    order, is within n * 2^-53 of the exact sum (relative; the terms of Q are positive), so the rounded moments
    are the same float32 values unless the exact ones lie that close to a float32 rounding boundary (2^-24
    relative apart): for the 65,536 values of a channel of 64 32x32 images, about 1 in 8,000 at the very worst
    (rounding errors that all add up), about 1 in 2 million for typical ones (growing as sqrt(n)). Q/n - mean^2
    cancels: its error is (1 + mean^2/variance) times that, so a channel whose mean is beyond ~90 standard
    deviations (worst case; ~1,400 typically) could see its variance's last bit depend on the order, still far
    closer to the exact value than Keras's float32 moments. (A mean and squared deviations per image would be
    cheaper, but whether TensorFlow's float32 reductions give each image the same sum whatever else is in its
    batch depends on the shape: not for 10 channels on this CPU.)

    The float64 sums are two matrix-vector products with a vector of ones (much faster on a CPU than
    TensorFlow's float64 reduce_sum), and the gradient is written out in float32: d mean / dx = 1/n and
    d variance / dx = 2 (x - mean) / n, with the per-channel gradients of mean and variance all-reduced first
    when synchronized (what the all-reduce's own gradient does in Keras). Everything else is Keras's: the same
    variables and names (checkpoints of either load into the other), moving statistics as moving * momentum +
    batch * (1 - momentum) with the batch's population variance (no Bessel correction, as Keras on one device
    and synchronized), inference with the moving statistics, the normalisation itself. A mask falls back to
    Keras's moments.
    """

    def _moments(self, inputs, mask):
        if mask is not None:
            return super()._moments(inputs, mask)
        context = tf.distribute.get_replica_context()
        synchronized = self.synchronized and context is not None and context.num_replicas_in_sync > 1
        channels = inputs.shape[self.axis]
        order = [*self._reduction_axes, self.axis % len(inputs.shape)]

        def total(values):
            return context.all_reduce(tf.distribute.ReduceOp.SUM, values) if synchronized else values

        @tf.custom_gradient
        def moments(x):
            values = tf.reshape(tf.cast(x if order == sorted(order) else tf.transpose(x, order), tf.float64), [-1, channels])
            ones = tf.ones(tf.shape(values)[:1], tf.float64)
            sums = total(tf.concat([tf.linalg.matvec(values, ones, transpose_a=True),
                                    tf.linalg.matvec(tf.square(values), ones, transpose_a=True),
                                    tf.cast(tf.shape(values)[:1], tf.float64)], 0))
            count = sums[-1]
            mean64 = sums[:channels] / count
            variance64 = sums[channels:2 * channels] / count - tf.square(mean64)
            mean, variance = tf.cast(mean64, x.dtype), tf.cast(tf.maximum(variance64, 0.0), x.dtype)

            def grad(d_mean, d_variance):
                d = total(tf.cast(tf.concat([d_mean, d_variance], 0), tf.float64)) / count
                d_variance = tf.where(variance64 > 0, 2 * d[channels:], 0.0)
                shape = [channels if axis == order[-1] else 1 for axis in range(len(x.shape))]
                return (tf.reshape(tf.cast(d[:channels], x.dtype), shape)
                        + (x - tf.reshape(mean, shape)) * tf.reshape(tf.cast(d_variance, x.dtype), shape))

            return (mean, variance), grad

        return moments(inputs)


def batch_norm(momentum: float, epsilon: float, dtype: str, name: str) -> BatchNormalization:
    """BN whose moving statistics update when called with training=True and are used otherwise.

    Built under a tf.distribute strategy with several replicas, BN is synchronized: batch mean and
    variance are taken over the global batch (sums all-reduced across replicas), so N replicas
    normalise, train and update the moving statistics as one device does with the same global batch,
    with bit-equal batch moments (`BatchNormalization` above). Unsynchronized, each replica would
    normalise its own slice. On one replica the same sums are taken, without the all-reduce.
    """
    synchronized = tf.distribute.get_strategy().num_replicas_in_sync > 1
    return BatchNormalization(momentum=momentum, epsilon=epsilon, synchronized=synchronized, dtype=dtype, name=name)


@keras.saving.register_keras_serializable(package="dilbench")
class Dropout(keras.layers.Dropout):
    """Keras's Dropout, which on several replicas drops what one device drops.

    Every replica draws from the same seed (the layer's seed generator steps alike on all), so Keras's Dropout
    gives each replica the mask of the *first* images of a batch of its own size: replica 1's images get
    replica 0's pattern, and no replica drops what one device drops from the same global batch. Here every
    replica draws the mask of the whole global batch, exactly as one device draws it (the same seed and
    stateless generator, Keras's formula), and keeps the rows of its own images: one all-reduce of the
    replicas' image counts finds them (replicas hold consecutive slices of the global batch, in replica
    order: training/distributed.py). So N replicas drop the same units of the same images as one device,
    at the cost of drawing the global batch's mask on each replica. On one replica, Keras's own call.
    """

    def call(self, inputs, training=False):
        context = tf.distribute.get_replica_context()
        if not (training and self.rate > 0) or context is None or context.num_replicas_in_sync == 1:
            return super().call(inputs, training=training)
        seed = self.seed_generator.next()  # as keras.src.backend.tensorflow.random.dropout draws and casts it
        seed = seed if seed.dtype == tf.int32 else tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
        noise_shape = tf.shape(inputs) if self.noise_shape is None else tf.convert_to_tensor(
            [tf.shape(inputs)[i] if d is None else d for i, d in enumerate(self.noise_shape)])
        images = tf.shape(inputs)[0]
        replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
        counts = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                    tf.one_hot(replica, context.num_replicas_in_sync, dtype=tf.int32) * images)
        per_image = tf.equal(noise_shape[0], images)  # else one mask row shared by all images (noise_shape[0] = 1)
        first = tf.where(per_image, tf.reduce_sum(counts[:replica]), 0)
        whole = tf.concat([tf.where(per_image, tf.reduce_sum(counts), noise_shape[0])[None], noise_shape[1:]], 0)
        random = tf.random.stateless_uniform(whole, seed=seed, dtype=inputs.dtype)[first:first + noise_shape[0]]
        kept = inputs * tf.convert_to_tensor(1 / (1 - self.rate), dtype=inputs.dtype)
        return tf.where(random >= tf.convert_to_tensor(self.rate, dtype=inputs.dtype), kept, tf.zeros([], inputs.dtype))


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
