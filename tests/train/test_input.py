"""train/input.py: the training stream's batches and its augmentation, and the padded evaluation set."""

import numpy as np
import pytest
import tensorflow as tf

from edge import contract
from train.config import TrainConfig
from train.input import augment_batch, make_eval_dataset, make_train_dataset

# needs TensorFlow: make check leaves these to make test
pytestmark = pytest.mark.tf


def test_every_training_batch_has_the_same_shape(small_dataset):
    images, labels, _ = small_dataset  # 140 images, batch 32: 4 full batches, remainder 12 dropped
    config = TrainConfig(data="", batch_size=32)
    shapes = {tuple(x.shape) for x, _ in make_train_dataset(images, labels, config)}
    assert shapes == {(32, 48, 48, 1)}
    eval_shapes = {tuple(x.shape) for x, _, _ in make_eval_dataset(images, labels, 32)}
    assert eval_shapes == {(32, 48, 48, 1)}
    weights = np.concatenate([w.numpy() for _, _, w in make_eval_dataset(images, labels, 32)])
    assert weights.sum() == 140 and len(weights) == 160


def test_augmentation_off_is_exactly_the_contract(small_dataset):
    images = small_dataset[0][:8]
    config = TrainConfig(data="", flip=False, rotation_degrees=0, shift_fraction=0, zoom_fraction=0, brightness=0, contrast=0)
    augmented = augment_batch(tf.constant(images[..., None]), config, tf.constant([1, 2], tf.int64)).numpy()
    np.testing.assert_allclose(augmented, contract.scale_pixels(images), atol=1e-5)
    eval_inputs = next(iter(make_eval_dataset(images, np.zeros(8, np.int64), 8)))[0].numpy()
    np.testing.assert_allclose(eval_inputs, contract.scale_pixels(images), atol=1e-6)


def test_augmentation_flip_mirrors_the_face(small_dataset):
    images = small_dataset[0][:64]
    config = TrainConfig(data="", rotation_degrees=0, shift_fraction=0, zoom_fraction=0, brightness=0, contrast=0)
    augmented = augment_batch(tf.constant(images[..., None]), config, tf.constant([3, 4], tf.int64)).numpy()
    plain, mirrored = contract.scale_pixels(images), contract.scale_pixels(images[:, :, ::-1])
    same = [np.allclose(a, p, atol=1e-4) for a, p in zip(augmented, plain, strict=True)]
    flipped = [np.allclose(a, m, atol=1e-4) for a, m in zip(augmented, mirrored, strict=True)]
    assert all(s or f for s, f in zip(same, flipped, strict=True))
    assert 10 < sum(flipped) < 54
