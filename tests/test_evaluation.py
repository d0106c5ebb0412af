"""The epoch's evaluation and batches, made cheaper without changing a number: evaluation in pieces is
bit-equal to evaluating whole batches, each compiled evaluation function is traced once for the whole run,
and batches gathered in the training loop are the tf.data pipeline's batches."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf
from toolkit import QUICKSTART

from dilbench.config import load_config
from dilbench.data import load_data
from dilbench.training.batches import epoch_batches, epoch_order, eval_pieces, memory_batches

SMALL = ["model.channels=4", "model.hidden=[16]", "train.batch_size=32"]


def trainer_after_some_steps(*overrides: str, epochs: int = 1):
    """A Trainer on 256 bundled MNIST images whose weights moved from their initialisation (identity kernels
    would hide differences)."""
    from dilbench.training.trainer import Trainer

    config = load_config(QUICKSTART,
                         ["data.dataset=mnist_bundled", "data.train_subset=256", "train.lr_schedule=constant", *overrides])
    config = replace(config, train=replace(config.train, epochs=epochs))
    trainer = Trainer(config, load_data(config.data, config.seed))
    x, y, size = trainer.data.x_train, trainer.data.y_train, config.train.batch_size
    for start in range(0, 128, size):
        trainer.step.train(tf.constant(x[start:start + size]), tf.constant(y[start:start + size]))
    return trainer


def whole_batches(trainer) -> tuple[float, float]:
    """What evaluation computed before it ran in pieces: each batch of eval_batch_size in one call."""
    split, size = trainer.eval_split, trainer.config.runtime.eval_batch_size
    loss_sum, correct = 0.0, 0
    for start in range(0, len(split.y), size):
        loss, hits = trainer.step.evaluate([(tf.constant(split.x[start:start + size]),)], tf.constant(split.y[start:start + size]))
        loss_sum += float(loss)
        correct += int(hits)
    return loss_sum / len(split.y), correct / len(split.y)


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_evaluation_in_pieces_is_bit_equal_to_whole_batches(precision, monkeypatch):
    """The quickstart model, 1,001 test images in batches of 500, pieces of at most 64: each batch cut into
    eight pieces of 62 or 63 (four calls of two), and a last batch of one image, evaluated whole. Loss and
    the count of hits are exactly those of whole batches. (On pieces like these the whole model moved
    bfloat16 logits by up to 1e-3, and the loss with them: the head's matrix product depends on its batch,
    which is why it still sees whole batches.)"""
    from dilbench.training import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "EVAL_PIECE", 64)
    trainer = trainer_after_some_steps(f"precision={precision}", "data.test_subset=1001")
    assert trainer.config.runtime.eval_batch_size == 500
    shapes = [[[int(x.shape[0]) for x in call] for call in batch.calls] for batch in trainer.eval_batches]
    assert shapes == [[[62, 63]] * 4] * 2 + [[[1]]]
    loss, accuracy = trainer.evaluate()
    assert (loss, accuracy) == whole_batches(trainer)
    assert 0 < accuracy < 1 and accuracy * 1001 == round(accuracy * 1001)


def test_eval_functions_are_traced_once_for_the_whole_run():
    """Three epochs of 650 test images in batches of 300: pieces of 100 (a call of two pieces and one of one)
    twice, then a batch of 50 in one piece; every compiled function (the train step, the groups on one and on
    two pieces, the head) is traced once, at its first use, and never again."""
    trainer = trainer_after_some_steps(*SMALL, "data.test_subset=650", "runtime.eval_batch_size=300", epochs=3)
    step = trainer.step
    assert len(trainer.train()) == 3
    functions = step.compiled_functions()
    assert [f.experimental_get_tracing_count() for f in functions] == [1] * 4


def test_evaluation_pieces_split_a_batch_evenly():
    assert eval_pieces(0, 10, 4) == [(0, 3), (3, 6), (6, 10)]
    assert eval_pieces(0, 8, 4) == [(0, 4), (4, 8)]
    assert eval_pieces(10, 12, 64) == [(10, 12)]
    for start, stop, piece in ((0, 500, 64), (1500, 2000, 128), (1000, 1001, 64), (100, 130, 32), (0, 7, 8)):
        pieces = eval_pieces(start, stop, piece)
        assert [a for a, _ in pieces[1:]] == [b for _, b in pieces[:-1]] and pieces[0][0] == start and pieces[-1][1] == stop
        sizes = [b - a for a, b in pieces]
        assert len(pieces) == -(-(stop - start) // piece) and max(sizes) <= piece and max(sizes) - min(sizes) <= 1


def test_batches_gathered_in_the_loop_are_the_pipelines():
    """Without augmentation on one replica the Trainer gathers batches itself (batches.py): the same images
    and labels in the same order as the tf.data pipeline's, from any step of the epoch on."""
    data = load_data(load_config(QUICKSTART, ["data.train_subset=300"]).data, 0)
    order = epoch_order(3, 1, len(data.y_train))
    for start_step in (0, 2):
        piped = list(epoch_batches(data.x_train, data.y_train, order, 64, start_step))
        gathered = list(memory_batches(data.x_train, data.y_train, order, 64, start_step))
        assert len(gathered) == len(piped) == 5 - start_step
        for (x, y), (gx, gy) in zip(piped, gathered):
            assert gx.dtype == x.dtype and gy.dtype == y.dtype
            assert np.array_equal(gx.numpy(), x.numpy()) and np.array_equal(gy.numpy(), y.numpy())


@pytest.mark.parametrize("model", [
    "{name: context_module, channels: 16, hidden: [64]}", "{name: allconv9, width: 0.25}",
    "{name: allcnn_c, width: 0.25, batch_norm: true}", "{name: resnet_v2, variant: cifar, depth: 11}",
])
def test_every_model_family_evaluates_bit_equal_in_pieces(model):
    """The layer groups of every model family give each image the same output in any piece of its batch (so
    only the head needs whole batches): random images, 300 in one batch, pieces of 37 and 38 side by side."""
    from dilbench.training.step import TrainingStep

    shape = (28, 28, 1) if "context" in model else (32, 32, 3)
    config = load_config(QUICKSTART, [f"model={model}", "precision=bfloat16"])
    step = TrainingStep.build(config, shape, 10)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (300, *shape), dtype=np.uint8), rng.integers(0, 10, 300)
    step.train(tf.constant(x[:64]), tf.constant(y[:64]))  # away from the initialisation (and batch-norm statistics)
    pieces = [tf.constant(x[a:b]) for a, b in eval_pieces(0, 300, 40)]
    loss, hits = step.evaluate([tuple(pieces[i:i + 2]) for i in range(0, len(pieces), 2)], tf.constant(y))
    whole_loss, whole_hits = step.evaluate([(tf.constant(x),)], tf.constant(y))
    logits = step.model(tf.cast(x, tf.float32) / 255.0, training=False)  # the model called whole, outside any step
    reference = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=tf.cast(logits, tf.float32))
    assert int(whole_hits) == int(np.sum(np.argmax(logits.numpy(), -1) == y))
    assert abs(float(whole_loss) - float(tf.reduce_mean(reference)) * 300) < 1e-3 * 300
    assert float(loss) == float(whole_loss) and int(hits) == int(whole_hits)
