"""The networks `--arch` picks: the 58,423-parameter mini-Xception student, and teachers of a few million
parameters known to do well on 48x48 faces (VGG13 as in FER+'s baseline, a ResNet-18 for small images).

Every network takes the contract's (48, 48, 1) input and ends in a float32 softmax named "predictions",
so mixed precision (float16 compute) never rounds the class probabilities.
"""

from __future__ import annotations

import keras
from keras import layers

from edge.contract import INPUT_SHAPE, NUM_CLASSES
from train.model import make_mini_xception

STUDENT = "mini_xception"


def make_vgg13(input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES, l2: float = 0.0, synchronized: bool = False) -> keras.Model:
    """VGG13 after Barsoum et al. 2016 (FER+): 3x3 convolutions in blocks of 2, 2, 3, 3 (64, 128, 256, 256)
    each followed by 2x2 max pooling and 25% dropout, then two 1024-unit dense layers with 50% dropout.
    Batch normalisation after each convolution (the paper trained without it, with SGD) so Adam and the
    student's schedule train it from scratch. 6.9M parameters at 48x48 (about 8.7M at the paper's 64x64)."""
    regularizer = keras.regularizers.l2(l2) if l2 else None
    inputs = keras.Input(input_shape, name="face")
    x = inputs
    for filters, convolutions in ((64, 2), (128, 2), (256, 3), (256, 3)):
        for _ in range(convolutions):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=regularizer)(x)
            x = layers.BatchNormalization(synchronized=synchronized)(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(1024, activation="relu", kernel_regularizer=regularizer)(x)
        x = layers.Dropout(0.5)(x)
    x = layers.Dense(num_classes)(x)
    outputs = layers.Activation("softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="vgg13")


def make_resnet18(input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES, l2: float = 0.0, synchronized: bool = False) -> keras.Model:
    """ResNet-18 (He et al. 2016) for small images as on CIFAR: a 3x3 stem with no pooling, four stages of
    two basic blocks (64, 128, 256, 512 filters; stride 2 from the second stage, 48 -> 6 pixels), global
    average pooling and a dense softmax. 11.2M parameters."""
    regularizer = keras.regularizers.l2(l2) if l2 else None

    def convolution(x, filters, size=3, strides=1):
        return layers.Conv2D(filters, size, strides=strides, padding="same", use_bias=False, kernel_regularizer=regularizer)(x)

    def normalised(x):
        return layers.BatchNormalization(synchronized=synchronized)(x)

    inputs = keras.Input(input_shape, name="face")
    x = layers.Activation("relu")(normalised(convolution(inputs, 64)))
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            strides = 2 if stage > 0 and block == 0 else 1
            shortcut = x
            if strides != 1 or x.shape[-1] != filters:
                shortcut = normalised(convolution(x, filters, 1, strides))
            y = layers.Activation("relu")(normalised(convolution(x, filters, strides=strides)))
            y = normalised(convolution(y, filters))
            x = layers.Activation("relu")(layers.add([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(num_classes)(x)
    outputs = layers.Activation("softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="resnet18")


ARCHITECTURES = {STUDENT: make_mini_xception, "vgg13": make_vgg13, "resnet18": make_resnet18}
# What each builds for 48x48x1 and 7 classes (tests/train/test_arch.py checks them).
PARAMETERS = {STUDENT: 58_423, "vgg13": 6_927_431, "resnet18": 11_180_871}


def make_model(arch: str, l2: float = 0.01, synchronized: bool = False) -> keras.Model:
    """The `arch` network. `synchronized`: batch normalisation over the global batch under a multi-replica
    strategy, so N replicas of B faces train as one device on N x B; it changes nothing at inference."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"--arch (train.arch) must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    return ARCHITECTURES[arch](l2=l2, synchronized=synchronized)


def model_file(arch: str) -> str:
    """The run folder's model: mini_xception.keras for the student (what convert ships), ARCH.keras otherwise."""
    return f"{arch}.keras"
