"""GroupedModel: an ordered list of layer groups and a head, the only view schedules get of a model."""

from __future__ import annotations

import keras
import tensorflow as tf


class GroupedModel(keras.Model):
    """logits = head(group_L(...group_1(x))).

    A layer group is the unit a backprop schedule updates. The head's variables are updated together
    with the last group (it sits between group L and the loss), so a schedule deals in exactly L
    variable sets: `group_variables(i)`.
    """

    def __init__(self, groups: list[keras.Layer], head: keras.Layer, input_shape: tuple[int, ...], **kwargs):
        super().__init__(**kwargs)
        self.groups = list(groups)
        self.head = head
        self(tf.zeros((1, *input_shape)))  # create every variable now, outside any tf.function

    def call(self, x, training: bool = False):
        return self.forward_from(0, x, training=training)

    def forward_from(self, start: int, h, training: bool = False):
        """Run groups start..L-1 (0-based) and the head on `h`, the input of group `start`."""
        for group in self.groups[start:]:
            h = group(h, training=training)
        return self.logits(h, training=training)

    def logits(self, features, training: bool = False):
        """The head on group L's output, as float32 logits whatever the compute precision."""
        return tf.cast(self.head(features, training=training), tf.float32)

    def group_outputs(self, x, training: bool = False) -> list:
        """The input of every group, then the final features: [x, g1(x), g2(g1(x)), ...]."""
        outputs = [x]
        for group in self.groups:
            outputs.append(group(outputs[-1], training=training))
        return outputs

    def group_variables(self, index: int) -> list:
        """Trainable variables a schedule updates as group `index` (0-based); the last group owns the head's."""
        variables = list(self.groups[index].trainable_variables)
        if index == len(self.groups) - 1:
            variables += self.head.trainable_variables
        return variables

    @property
    def group_names(self) -> list[str]:
        """Each group's layer name (`layer3_d2`, `block2`, `block1_unit3`): plot panels and TensorBoard tags."""
        return [group.name for group in self.groups]

    @property
    def num_groups(self) -> int:
        return len(self.groups)
