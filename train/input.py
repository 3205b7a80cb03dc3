"""Training input: a tf.data stream of Training faces, shuffled, class-balanced if asked and augmented on the fly
in whole batches; evaluation sets padded to whole batches."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from edge.contract import NUM_CLASSES, PIXEL_OFFSET, PIXEL_SCALE, scale_pixels
from train.config import TrainConfig


def augment_batch(images: tf.Tensor, config: TrainConfig, seed: tf.Tensor) -> tf.Tensor:
    """Random flip, rotation, zoom and shift in one projective transform per image, then brightness
    and contrast; uint8 (B, 48, 48, 1) in, float32 model input out. All ops work on the whole batch."""
    batch = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 7)

    def uniform(index, low, high):
        return tf.random.stateless_uniform([batch], seeds[index], low, high)

    flip = tf.where(uniform(0, 0.0, 1.0) < 0.5, -1.0, 1.0) if config.flip else tf.ones([batch])
    angle = uniform(1, -1.0, 1.0) * config.rotation_degrees * math.pi / 180
    zoom = uniform(2, 1 - config.zoom_fraction, 1 + config.zoom_fraction)
    shift_x = uniform(3, -1.0, 1.0) * config.shift_fraction * size
    shift_y = uniform(4, -1.0, 1.0) * config.shift_fraction * size
    center = (size - 1) / 2
    # Output pixel p maps to input pixel zoom * R(angle) * Flip * (p - c) + c + shift.
    a0, a1 = zoom * tf.cos(angle) * flip, -zoom * tf.sin(angle)
    b0, b1 = zoom * tf.sin(angle) * flip, zoom * tf.cos(angle)
    a2 = center + shift_x - (a0 + a1) * center
    b2 = center + shift_y - (b0 + b1) * center
    zeros = tf.zeros([batch])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    pixels = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32),
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    mean = tf.reduce_mean(pixels, axis=[1, 2, 3], keepdims=True)
    contrast = tf.reshape(uniform(5, 1 - config.contrast, 1 + config.contrast), [-1, 1, 1, 1])
    brightness = tf.reshape(uniform(6, -config.brightness, config.brightness) * 255.0, [-1, 1, 1, 1])
    pixels = tf.clip_by_value((pixels - mean) * contrast + mean + brightness, 0.0, 255.0)
    pixels = other_cameras(pixels, config, tf.random.experimental.stateless_split(seeds[0], 4))  # own seeds: the draws above stay as they were
    return pixels * PIXEL_SCALE + PIXEL_OFFSET


GAUSSIAN_5 = np.outer(*[np.array([1, 4, 6, 4, 1], np.float32) / 16] * 2)  # binomial approximation of a Gaussian, sigma about 1


def other_cameras(pixels: tf.Tensor, config: TrainConfig, seeds: tf.Tensor) -> tf.Tensor:
    """Blur, gamma, JPEG re-encoding and sensor noise, each only when its setting is above 0: what makes a face
    from another camera or lab look unlike FER2013's. float32 grey levels (B, 48, 48, 1) in [0, 255], and out."""
    batch = tf.shape(pixels)[0]

    def per_face(index, low, high):
        return tf.reshape(tf.random.stateless_uniform([batch], seeds[index], low, high), [-1, 1, 1, 1])

    if config.blur:
        blurred = tf.nn.conv2d(pixels, GAUSSIAN_5[:, :, None, None], strides=1, padding="SAME")
        edge = tf.nn.conv2d(tf.ones_like(pixels), GAUSSIAN_5[:, :, None, None], strides=1, padding="SAME")  # renormalise the border
        share = per_face(0, 0.0, config.blur)
        pixels = (1 - share) * pixels + share * blurred / edge
    if config.gamma:
        exponent = tf.exp(per_face(1, -1.0, 1.0) * math.log1p(config.gamma))  # log-uniform in [1/(1+G), 1+G]
        pixels = 255.0 * tf.pow(tf.clip_by_value(pixels / 255.0, 0.0, 1.0), exponent)
    if config.jpeg_quality:
        qualities = tf.random.stateless_uniform([batch], seeds[2], config.jpeg_quality, 101, dtype=tf.int32)
        pixels = tf.map_fn(
            lambda face: tf.cast(tf.image.adjust_jpeg_quality(tf.cast(tf.round(face[0]), tf.uint8), face[1]), tf.float32),
            (pixels, qualities), fn_output_signature=tf.float32,
        )
    if config.noise:
        sigma = per_face(3, 0.0, config.noise * 255.0)
        pixels = pixels + sigma * tf.random.stateless_normal(tf.shape(pixels), seeds[3])
    return tf.clip_by_value(pixels, 0.0, 255.0)


def make_train_dataset(images: np.ndarray, targets: np.ndarray, config: TrainConfig) -> tf.data.Dataset:
    """Shuffled each epoch, augmented, and every batch full-sized (drop_remainder): oneDNN in
    TensorFlow 2.21 segfaults in a training step when the batch shape changes. Reshuffling means the
    dropped remainder differs each epoch, so no image is left out for good. With class-balanced
    sampling the stream is endless (each class repeats on its own): fit() counts steps per epoch."""
    if len(images) < config.batch_size:
        raise ValueError(f"Training split has {len(images)} images, fewer than batch size {config.batch_size}")
    images, targets = images[..., np.newaxis], targets.astype(np.float32)
    if config.balanced_sampling:
        weights = class_sampling_weights(targets, config.balanced_sampling)
        classes = targets.argmax(axis=1)
        per_class = [
            tf.data.Dataset.from_tensor_slices((images[classes == c], targets[classes == c]))
            .shuffle(int((classes == c).sum()), seed=config.seed + c, reshuffle_each_iteration=True)
            .repeat()
            for c in range(NUM_CLASSES)
            if weights[c] > 0
        ]
        dataset = tf.data.Dataset.sample_from_datasets(per_class, [float(w) for w in weights if w > 0], seed=config.seed)
    else:
        dataset = tf.data.Dataset.from_tensor_slices((images, targets))
        dataset = dataset.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size, drop_remainder=True)
    seeds = tf.data.Dataset.random(seed=config.seed).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds)).map(
        lambda batch, seed: (augment_batch(batch[0], config, seed), batch[1]), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def class_sampling_weights(targets: np.ndarray, power: float) -> np.ndarray:
    """How often each class (a face's class: its target's top) is drawn: count^(1 - power), normalised;
    power 0 keeps the data's mix, 1 draws every class present equally often."""
    counts = np.bincount(np.asarray(targets).argmax(axis=1), minlength=NUM_CLASSES).astype(np.float64)
    weights = np.where(counts > 0, np.power(np.maximum(counts, 1), 1.0 - power), 0.0)
    return weights / weights.sum()


def make_eval_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Padded to whole batches; the padding has sample weight 0 so metrics ignore it."""
    pad = -len(images) % batch_size
    inputs = scale_pixels(np.concatenate([images, np.zeros((pad, *images.shape[1:]), np.uint8)]))
    targets = np.eye(NUM_CLASSES, dtype=np.float32)[np.concatenate([labels, np.zeros(pad, labels.dtype)])]
    weights = np.concatenate([np.ones(len(images), np.float32), np.zeros(pad, np.float32)])
    return tf.data.Dataset.from_tensor_slices((inputs, targets, weights)).batch(batch_size, drop_remainder=True)
