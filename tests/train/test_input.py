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


PLAIN = dict(data="", flip=False, rotation_degrees=0, shift_fraction=0, zoom_fraction=0, brightness=0, contrast=0)


def grey_levels(images, seed, **other_cameras):
    """augment_batch with only the other-camera augmentations asked for, back in grey levels (0..255)."""
    inputs = augment_batch(tf.constant(images[..., None]), TrainConfig(**PLAIN, **other_cameras), tf.constant(seed, tf.int64)).numpy()
    return ((inputs - contract.PIXEL_OFFSET) / contract.PIXEL_SCALE)[..., 0]


@pytest.mark.parametrize("setting", [dict(blur=1.0), dict(gamma=1.0), dict(jpeg_quality=10), dict(noise=0.1)])
def test_each_other_camera_augmentation_changes_faces_within_the_grey_range_and_repeats_with_its_seed(small_dataset, setting):
    images = small_dataset[0][:16]
    first, again, other = (grey_levels(images, seed, **setting) for seed in ([5, 6], [5, 6], [7, 8]))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert first.min() >= -1e-3 and first.max() <= 255 + 1e-3
    changed = np.abs(first - images).mean(axis=(1, 2))
    assert (changed > 0.5).sum() >= 8, changed  # most faces moved (each draws its own strength, some near 0)


def test_blur_removes_fine_detail_and_gamma_keeps_each_faces_order_of_grey_levels(small_dataset):
    images = small_dataset[0][:16]
    detail = lambda faces: np.abs(np.diff(faces.astype(np.float64), axis=2)).mean()  # noqa: E731
    assert detail(grey_levels(images, [1, 1], blur=1.0)) < 0.9 * detail(images)
    gamma = grey_levels(images, [2, 2], gamma=1.0)
    for before, after in zip(images, gamma, strict=True):
        order = np.argsort(before.ravel(), kind="stable")
        assert np.all(np.diff(after.ravel()[order]) >= -1e-3)  # a power of the grey level: monotonic
    assert np.abs(gamma - images).mean() > 2


def test_noise_and_jpeg_strength_follow_their_settings(small_dataset):
    images = small_dataset[0][:32]
    weak, strong = (np.abs(grey_levels(images, [3, 3], noise=level) - images).mean() for level in (0.01, 0.2))
    assert weak < 2 < strong
    mild, harsh = (np.abs(grey_levels(images, [4, 4], jpeg_quality=quality) - images).mean() for quality in (95, 5))
    assert mild < harsh


def test_other_camera_settings_are_bounded():
    for name, bad in (("gamma", -0.1), ("blur", 1.5), ("noise", 0.9), ("jpeg_quality", 3)):
        with pytest.raises(ValueError, match=name.replace("_", "[-_]")):
            TrainConfig(data="", **{name: bad})
