"""Independent Keras builds of the networks in specs/, to count against.

Each function transcribes the seed's own code (the course's class code in seed
000, the notes' listings in 002, the book's listings in 004) or uses
keras.applications, with Keras 3 imports and nothing from archc. Only what a
listing leaves open is filled in, as the spec file says (input size, classes).
The course's subclassed models are built by calling them on an input.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
from keras import Model, layers
from keras.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    MaxPool2D,
)


def _built(model: Model, shape) -> Model:
    model(keras.ops.zeros((1, *shape)))
    return model


# ---------------------------------------------------------------------------
# The course (seed 000): its class code, verbatim up to imports
# ---------------------------------------------------------------------------


class Baseline(Model):
    def __init__(self, units=120):
        super().__init__()
        self.c1 = Conv2D(filters=6, kernel_size=(5, 5), padding="same")
        self.b1 = BatchNormalization()
        self.a1 = Activation("relu")
        self.p1 = MaxPool2D(pool_size=(2, 2), strides=2, padding="same")
        self.d1 = Dropout(0.2)
        self.flatten = Flatten()
        self.f1 = Dense(units, activation="relu")
        self.d2 = Dropout(0.2)
        self.f2 = Dense(10, activation="softmax")

    def call(self, x):
        x = self.d1(self.p1(self.a1(self.b1(self.c1(x)))))
        x = self.d2(self.f1(self.flatten(x)))
        return self.f2(x)


class LeNet5(Model):
    def __init__(self):
        super().__init__()
        self.c1 = Conv2D(filters=6, kernel_size=(5, 5), activation="sigmoid")
        self.p1 = MaxPool2D(pool_size=(2, 2), strides=2)
        self.c2 = Conv2D(filters=16, kernel_size=(5, 5), activation="sigmoid")
        self.p2 = MaxPool2D(pool_size=(2, 2), strides=2)
        self.flatten = Flatten()
        self.f1 = Dense(120, activation="sigmoid")
        self.f2 = Dense(84, activation="sigmoid")
        self.f3 = Dense(10, activation="softmax")

    def call(self, x):
        x = self.p1(self.c1(x))
        x = self.p2(self.c2(x))
        return self.f3(self.f2(self.f1(self.flatten(x))))


class AlexNet8(Model):
    def __init__(self):
        super().__init__()
        self.c1 = Conv2D(filters=96, kernel_size=(3, 3))
        self.b1 = BatchNormalization()
        self.a1 = Activation("relu")
        self.p1 = MaxPool2D(pool_size=(3, 3), strides=2)
        self.c2 = Conv2D(filters=256, kernel_size=(3, 3))
        self.b2 = BatchNormalization()
        self.a2 = Activation("relu")
        self.p2 = MaxPool2D(pool_size=(3, 3), strides=2)
        self.c3 = Conv2D(filters=384, kernel_size=(3, 3), padding="same", activation="relu")
        self.c4 = Conv2D(filters=384, kernel_size=(3, 3), padding="same", activation="relu")
        self.c5 = Conv2D(filters=256, kernel_size=(3, 3), padding="same", activation="relu")
        self.p3 = MaxPool2D(pool_size=(3, 3), strides=2)
        self.flatten = Flatten()
        self.f1 = Dense(2048, activation="relu")
        self.d1 = Dropout(0.5)
        self.f2 = Dense(2048, activation="relu")
        self.d2 = Dropout(0.5)
        self.f3 = Dense(10, activation="softmax")

    def call(self, x):
        x = self.p1(self.a1(self.b1(self.c1(x))))
        x = self.p2(self.a2(self.b2(self.c2(x))))
        x = self.p3(self.c5(self.c4(self.c3(x))))
        x = self.d1(self.f1(self.flatten(x)))
        x = self.d2(self.f2(x))
        return self.f3(x)


class VGG16(Model):
    def __init__(self):
        super().__init__()
        self.seq = keras.Sequential()
        for filters, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
            for _ in range(convs):
                self.seq.add(Conv2D(filters=filters, kernel_size=(3, 3), padding="same"))
                self.seq.add(BatchNormalization())
                self.seq.add(Activation("relu"))
            self.seq.add(MaxPool2D(pool_size=(2, 2), strides=2, padding="same"))
            self.seq.add(Dropout(0.2))
        self.flatten = Flatten()
        self.f1 = Dense(512, activation="relu")
        self.d6 = Dropout(0.2)
        self.f2 = Dense(512, activation="relu")
        self.d7 = Dropout(0.2)
        self.f3 = Dense(10, activation="softmax")

    def call(self, x):
        x = self.flatten(self.seq(x))
        return self.f3(self.d7(self.f2(self.d6(self.f1(x)))))


class ConvBNRelu(Model):
    def __init__(self, ch, kernelsz=3, strides=1, padding="same"):
        super().__init__()
        self.model = keras.Sequential(
            [
                Conv2D(ch, kernelsz, strides=strides, padding=padding),
                BatchNormalization(),
                Activation("relu"),
            ]
        )

    def call(self, x):
        return self.model(x)


class InceptionBlk(Model):
    def __init__(self, ch, strides=1):
        super().__init__()
        self.c1 = ConvBNRelu(ch, kernelsz=1, strides=strides)
        self.c2_1 = ConvBNRelu(ch, kernelsz=1, strides=strides)
        self.c2_2 = ConvBNRelu(ch, kernelsz=3, strides=1)
        self.c3_1 = ConvBNRelu(ch, kernelsz=1, strides=strides)
        self.c3_2 = ConvBNRelu(ch, kernelsz=5, strides=1)
        self.p4_1 = MaxPool2D(3, strides=1, padding="same")
        self.c4_2 = ConvBNRelu(ch, kernelsz=1, strides=strides)

    def call(self, x):
        x1 = self.c1(x)
        x2 = self.c2_2(self.c2_1(x))
        x3 = self.c3_2(self.c3_1(x))
        x4 = self.c4_2(self.p4_1(x))
        return keras.ops.concatenate([x1, x2, x3, x4], axis=3)


class Inception10(Model):
    def __init__(self, num_blocks, num_classes, init_ch=16):
        super().__init__()
        self.out_channels = init_ch
        self.c1 = ConvBNRelu(init_ch)
        self.blocks = keras.Sequential()
        for block_id in range(num_blocks):
            for layer_id in range(2):
                strides = 2 if layer_id == 0 else 1
                self.blocks.add(InceptionBlk(self.out_channels, strides=strides))
            self.out_channels *= 2
        self.p1 = GlobalAveragePooling2D()
        self.f1 = Dense(num_classes, activation="softmax")

    def call(self, x):
        return self.f1(self.p1(self.blocks(self.c1(x))))


class ResnetBlock(Model):
    def __init__(self, filters, strides=1, residual_path=False):
        super().__init__()
        self.residual_path = residual_path
        self.c1 = Conv2D(filters, (3, 3), strides=strides, padding="same", use_bias=False)
        self.b1 = BatchNormalization()
        self.a1 = Activation("relu")
        self.c2 = Conv2D(filters, (3, 3), strides=1, padding="same", use_bias=False)
        self.b2 = BatchNormalization()
        if residual_path:
            self.down_c1 = Conv2D(filters, (1, 1), strides=strides, padding="same", use_bias=False)
            self.down_b1 = BatchNormalization()
        self.a2 = Activation("relu")

    def call(self, inputs):
        residual = inputs
        x = self.a1(self.b1(self.c1(inputs)))
        y = self.b2(self.c2(x))
        if self.residual_path:
            residual = self.down_b1(self.down_c1(inputs))
        return self.a2(y + residual)


class ResNet18(Model):
    def __init__(self, block_list, initial_filters=64):
        super().__init__()
        self.out_filters = initial_filters
        self.c1 = Conv2D(
            self.out_filters,
            (3, 3),
            strides=1,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
        )
        self.b1 = BatchNormalization()
        self.a1 = Activation("relu")
        self.blocks = keras.Sequential()
        for block_id in range(len(block_list)):
            for layer_id in range(block_list[block_id]):
                if block_id != 0 and layer_id == 0:
                    block = ResnetBlock(self.out_filters, strides=2, residual_path=True)
                else:
                    block = ResnetBlock(self.out_filters, residual_path=False)
                self.blocks.add(block)
            self.out_filters *= 2
        self.p1 = GlobalAveragePooling2D()
        self.f1 = Dense(10)

    def call(self, inputs):
        x = self.a1(self.b1(self.c1(inputs)))
        return self.f1(self.p1(self.blocks(x)))


# ---------------------------------------------------------------------------
# Sequential listings (notes 002, book 004, textbook 001)
# ---------------------------------------------------------------------------


def seq(shape, *layer_list) -> Model:
    return keras.Sequential([keras.Input(shape), *layer_list])


def notes_lenet5():
    return seq(
        (28, 28, 1),
        Conv2D(filters=6, kernel_size=(5, 5), padding="same", activation="tanh"),
        MaxPool2D(pool_size=(2, 2), strides=2),
        Conv2D(filters=16, kernel_size=(5, 5), padding="valid", activation="tanh"),
        MaxPool2D(pool_size=(2, 2), strides=2),
        Flatten(),
        Dense(120, activation="tanh"),
        Dense(84, activation="tanh"),
        Dense(10, activation="softmax"),
    )


def notes_lenet_d2l():
    return seq(
        (32, 32, 1),
        Conv2D(filters=6, kernel_size=5, activation="sigmoid", padding="valid"),
        AveragePooling2D(pool_size=2, strides=2),
        Conv2D(filters=16, kernel_size=5, activation="sigmoid"),
        AveragePooling2D(pool_size=2, strides=2),
        Flatten(),
        Dense(120, activation="sigmoid"),
        Dense(84, activation="sigmoid"),
        Dense(10),
    )


def notes_alexnet():
    return seq(
        (227, 227, 3),
        Conv2D(strides=4, filters=96, kernel_size=(11, 11), padding="valid", activation="relu"),
        BatchNormalization(),
        MaxPool2D(pool_size=(3, 3), strides=2),
        Conv2D(filters=256, kernel_size=(5, 5), padding="same", activation="relu"),
        BatchNormalization(),
        MaxPool2D(pool_size=(3, 3), strides=2),
        Conv2D(filters=384, kernel_size=(3, 3), padding="same", activation="relu"),
        BatchNormalization(),
        Conv2D(filters=384, kernel_size=(3, 3), padding="same", activation="relu"),
        BatchNormalization(),
        Conv2D(filters=256, kernel_size=(3, 3), padding="same", activation="relu"),
        BatchNormalization(),
        MaxPool2D(pool_size=(2, 2), strides=2),
        Flatten(),
        Dense(4096, activation="tanh"),
        Dropout(0.5),
        Dense(4096, activation="tanh"),
        Dropout(0.5),
        Dense(10, activation="softmax"),
    )


def book_lenet5():
    return seq(
        (28, 28, 1),
        Conv2D(filters=6, kernel_size=5, strides=1, activation="tanh", padding="same"),
        AveragePooling2D(pool_size=2, strides=2, padding="valid"),
        Conv2D(filters=16, kernel_size=5, strides=1, activation="tanh", padding="valid"),
        AveragePooling2D(pool_size=2, strides=2, padding="valid"),
        Conv2D(filters=120, kernel_size=5, strides=1, activation="tanh", padding="valid"),
        Flatten(),
        Dense(units=84, activation="tanh"),
        Dense(units=10, activation="softmax"),
    )


def book_alexnet(lrn: bool = False):
    """The book's listing; with lrn=True the BN layers are dropped (the paper's
    LRN has no parameters, and Keras 3 has no LRN layer)."""
    bn = (list) if lrn else (lambda: [BatchNormalization()])
    return seq(
        (227, 227, 3),
        Conv2D(filters=96, kernel_size=(11, 11), strides=(4, 4), padding="valid"),
        Activation("relu"),
        MaxPool2D(pool_size=(3, 3), strides=(2, 2)),
        *bn(),
        Conv2D(filters=256, kernel_size=(5, 5), strides=(1, 1), padding="same"),
        Activation("relu"),
        MaxPool2D(pool_size=(3, 3), strides=(2, 2)),
        *bn(),
        Conv2D(filters=384, kernel_size=(3, 3), strides=(1, 1), padding="same"),
        Activation("relu"),
        *bn(),
        Conv2D(filters=384, kernel_size=(3, 3), strides=(1, 1), padding="same"),
        Activation("relu"),
        *bn(),
        Conv2D(filters=256, kernel_size=(3, 3), strides=(1, 1), padding="same"),
        Activation("relu"),
        *bn(),
        MaxPool2D(pool_size=(3, 3), strides=(2, 2)),
        Flatten(),
        Dense(units=4096, activation="relu"),
        Dropout(0.5),
        Dense(units=4096, activation="relu"),
        Dropout(0.5),
        Dense(units=1000, activation="softmax"),
    )


def vgg_config(blocks, one_by_one=False, dropout=0.0):
    """VGG configurations A-E (paper table 1) the way the book's VGG16 listing
    writes D: 3x3 same convs with ReLU, 2x2 pools, 4096-4096-1000."""
    out = []
    for i, (ch, n) in enumerate(blocks):
        for j in range(n):
            k = 1 if (one_by_one and i >= 2 and j == n - 1) else 3
            out.append(Conv2D(ch, (k, k), padding="same", activation="relu"))
        out.append(MaxPool2D((2, 2), strides=(2, 2)))
    out += [Flatten(), Dense(4096, activation="relu")]
    out += [Dropout(dropout)] if dropout else []
    out += [Dense(4096, activation="relu")]
    out += [Dropout(dropout)] if dropout else []
    out += [Dense(1000, activation="softmax")]
    return seq((224, 224, 3), *out)


def _inception_module(x, f1, f3r, f3, f5r, f5, fp, bias=0.0):
    bi = keras.initializers.Constant(bias)
    c1 = Conv2D(f1, (1, 1), padding="same", activation="relu", bias_initializer=bi)(x)
    c3 = Conv2D(f3r, (1, 1), padding="same", activation="relu", bias_initializer=bi)(x)
    c3 = Conv2D(f3, (3, 3), padding="same", activation="relu", bias_initializer=bi)(c3)
    c5 = Conv2D(f5r, (1, 1), padding="same", activation="relu", bias_initializer=bi)(x)
    c5 = Conv2D(f5, (5, 5), padding="same", activation="relu", bias_initializer=bi)(c5)
    pp = MaxPool2D((3, 3), strides=(1, 1), padding="same")(x)
    pp = Conv2D(fp, (1, 1), padding="same", activation="relu", bias_initializer=bi)(pp)
    return layers.concatenate([c1, c3, c5, pp], axis=3)


GOOGLENET_TABLE = [
    (64, 96, 128, 16, 32, 32),
    (128, 128, 192, 32, 96, 64),
    "pool",
    (192, 96, 208, 16, 48, 64),
    (160, 112, 224, 24, 64, 64),
    (128, 128, 256, 24, 64, 64),
    (112, 144, 288, 32, 64, 64),
    (256, 160, 320, 32, 128, 128),
    "pool",
    (256, 160, 320, 32, 128, 128),
    (384, 192, 384, 48, 128, 128),
]


def book_googlenet(classes=10, bn=True):
    """The book's parts A, B, C (with Flatten before the Dense: see the spec)."""
    inp = keras.Input((224, 224, 3))
    x = Conv2D(
        64,
        (7, 7),
        padding="same",
        strides=(2, 2),
        activation="relu",
        bias_initializer=keras.initializers.Constant(0.2),
    )(inp)
    x = MaxPool2D((3, 3), padding="same", strides=(2, 2))(x)
    if bn:
        x = BatchNormalization()(x)
    x = Conv2D(64, (1, 1), padding="same", strides=(1, 1), activation="relu")(x)
    x = Conv2D(192, (3, 3), padding="same", strides=(1, 1), activation="relu")(x)
    if bn:
        x = BatchNormalization()(x)
    x = MaxPool2D((3, 3), padding="same", strides=(2, 2))(x)
    for row in GOOGLENET_TABLE:
        if row == "pool":
            x = MaxPool2D((3, 3), padding="same", strides=(2, 2))(x)
        else:
            x = _inception_module(x, *row, bias=0.2)
    x = AveragePooling2D(pool_size=(7, 7), strides=1, padding="valid")(x)
    x = Dropout(0.4)(x)
    x = Flatten()(x)
    x = Dense(classes, activation="softmax")(x)
    return Model(inp, x)


def _book_bottleneck(x, kernel_size, filters, reduce=False, s=2):
    f1, f2, f3 = filters
    shortcut = x
    if reduce:
        shortcut = Conv2D(filters=f3, kernel_size=(1, 1), strides=(s, s))(shortcut)
        shortcut = BatchNormalization(axis=3)(shortcut)
        x = Conv2D(filters=f1, kernel_size=(1, 1), strides=(s, s), padding="valid")(x)
    else:
        x = Conv2D(filters=f1, kernel_size=(1, 1), strides=(1, 1), padding="valid")(x)
    x = Activation("relu")(BatchNormalization(axis=3)(x))
    x = Conv2D(filters=f2, kernel_size=kernel_size, strides=(1, 1), padding="same")(x)
    x = Activation("relu")(BatchNormalization(axis=3)(x))
    x = Conv2D(filters=f3, kernel_size=(1, 1), strides=(1, 1), padding="valid")(x)
    x = BatchNormalization(axis=3)(x)
    return Activation("relu")(layers.Add()([x, shortcut]))


def book_resnet50(input_shape=(224, 224, 3), classes=1000):
    x_input = keras.Input(input_shape)
    x = Conv2D(64, (7, 7), strides=(2, 2))(x_input)
    x = Activation("relu")(BatchNormalization(axis=3)(x))
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    for filters, n, s in (
        ([64, 64, 256], 3, 1),
        ([128, 128, 512], 4, 2),
        ([256, 256, 1024], 6, 2),
        ([512, 512, 2048], 3, 2),
    ):
        x = _book_bottleneck(x, 3, filters, reduce=True, s=s)
        for _ in range(n - 1):
            x = _book_bottleneck(x, 3, filters)
    x = AveragePooling2D((1, 1))(x)
    x = Flatten()(x)
    x = Dense(classes, activation="softmax")(x)
    return Model(x_input, x)


def textbook_net(shape, conv1, conv1_pad, conv2, classes):
    return seq(
        shape,
        Conv2D(conv1[0], conv1[1], padding=conv1_pad),
        Activation("relu"),
        MaxPool2D(2, 2),
        Conv2D(conv2[0], conv2[1]),
        Activation("relu"),
        MaxPool2D(2, 2),
        Flatten(),
        Dense(32),
        BatchNormalization(),
        Activation("relu"),
        Dense(classes, activation="softmax"),
    )


def keras_cifar10_cnn():
    """Keras 2's examples/cifar10_cnn.py, the textbook's two-stage net."""
    return seq(
        (32, 32, 3),
        Conv2D(32, (3, 3), padding="same"),
        Activation("relu"),
        Conv2D(32, (3, 3)),
        Activation("relu"),
        MaxPool2D(pool_size=(2, 2)),
        Dropout(0.25),
        Conv2D(64, (3, 3), padding="same"),
        Activation("relu"),
        Conv2D(64, (3, 3)),
        Activation("relu"),
        MaxPool2D(pool_size=(2, 2)),
        Dropout(0.25),
        Flatten(),
        Dense(512),
        Activation("relu"),
        Dropout(0.5),
        Dense(10),
        Activation("softmax"),
    )


def zfnet():
    """ZFNet from the paper's figure 3, explicit padding as ZeroPadding2D."""
    return seq(
        (224, 224, 3),
        layers.ZeroPadding2D(1),
        Conv2D(96, 7, strides=2, activation="relu"),
        layers.ZeroPadding2D(1),
        MaxPool2D(3, 2),
        Conv2D(256, 5, strides=2, activation="relu"),
        layers.ZeroPadding2D(1),
        MaxPool2D(3, 2),
        Conv2D(384, 3, padding="same", activation="relu"),
        Conv2D(384, 3, padding="same", activation="relu"),
        Conv2D(256, 3, padding="same", activation="relu"),
        MaxPool2D(3, 2),
        Flatten(),
        Dense(4096, activation="relu"),
        Dropout(0.5),
        Dense(4096, activation="relu"),
        Dropout(0.5),
        Dense(1000, activation="softmax"),
    )


def googlenet_paper():
    """Table 1 of the paper with LRN (no parameters) omitted."""
    inp = keras.Input((224, 224, 3))
    x = Conv2D(64, 7, strides=2, padding="same", activation="relu")(inp)
    x = MaxPool2D(3, 2, padding="same")(x)
    x = Conv2D(64, 1, activation="relu")(x)
    x = Conv2D(192, 3, padding="same", activation="relu")(x)
    x = MaxPool2D(3, 2, padding="same")(x)
    for row in GOOGLENET_TABLE:
        x = MaxPool2D(3, 2, padding="same")(x) if row == "pool" else _inception_module(x, *row)
    x = AveragePooling2D(7, 1)(x)
    x = Flatten()(Dropout(0.4)(x))
    return Model(inp, Dense(1000, activation="softmax")(x))


def mnist_fc():
    return seq(
        (28, 28, 1), Flatten(), Dense(128, activation="relu"), Dense(10, activation="softmax")
    )


def digits_cnn():
    """archc's digits net, written as a Keras listing."""
    return seq(
        (8, 8, 1),
        Conv2D(16, 3, padding="same"),
        BatchNormalization(),
        Activation("relu"),
        Conv2D(32, 3, padding="same"),
        BatchNormalization(),
        Activation("relu"),
        MaxPool2D(2, 2),
        Flatten(),
        Dense(64, activation="relu"),
        Dropout(0.2),
        Dense(10, activation="softmax"),
    )


def unet(input_shape=(572, 572, 1), classes=2):
    """The original U-Net (Ronneberger, Fischer and Brox 2015, figure 1), written by
    hand: unpadded 3x3 convolutions with ReLU, 2x2 max pooling; on the way up a 2x2
    up-convolution that halves the channels, the encoder's map centre-cropped to
    its size and concatenated before it, two 3x3 convolutions; a 1x1 convolution
    to the classes. 572x572 in, 388x388 out."""
    inputs = keras.Input(shape=input_shape)
    x, skips = inputs, []
    for ch in (64, 128, 256, 512):
        x = Conv2D(ch, 3, activation="relu")(x)
        x = Conv2D(ch, 3, activation="relu")(x)
        skips.append(x)
        x = MaxPool2D(2)(x)
    x = Conv2D(1024, 3, activation="relu")(x)
    x = Conv2D(1024, 3, activation="relu")(x)
    for ch, skip in zip((512, 256, 128, 64), reversed(skips)):
        x = layers.Conv2DTranspose(ch, 2, strides=2)(x)
        crop = (skip.shape[1] - x.shape[1]) // 2
        x = layers.Concatenate()([layers.Cropping2D(crop)(skip), x])
        x = Conv2D(ch, 3, activation="relu")(x)
        x = Conv2D(ch, 3, activation="relu")(x)
    return Model(inputs, Conv2D(classes, 1)(x))


A = keras.applications
# spec file -> (builder, note)
REFERENCES = {
    "course_baseline.cnn": lambda: _built(Baseline(units=128), (32, 32, 3)),
    "course_baseline_listing.cnn": lambda: _built(Baseline(units=120), (32, 32, 3)),
    "course_lenet5.cnn": lambda: _built(LeNet5(), (32, 32, 3)),
    "course_alexnet8.cnn": lambda: _built(AlexNet8(), (32, 32, 3)),
    "course_vgg16.cnn": lambda: _built(VGG16(), (32, 32, 3)),
    "course_inception10.cnn": lambda: _built(
        Inception10(num_blocks=2, num_classes=10), (32, 32, 3)
    ),
    "resnet18.cnn": lambda: _built(ResNet18([2, 2, 2, 2]), (32, 32, 3)),
    "notes_lenet5.cnn": notes_lenet5,
    "notes_lenet_d2l.cnn": notes_lenet_d2l,
    "notes_alexnet.cnn": notes_alexnet,
    "book_lenet5.cnn": book_lenet5,
    "book_alexnet.cnn": book_alexnet,
    "alexnet_original.cnn": lambda: book_alexnet(lrn=True),
    "book_vgg16.cnn": lambda: vgg_config(
        [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], dropout=0.5
    ),
    "vgg11.cnn": lambda: vgg_config([(64, 1), (128, 1), (256, 2), (512, 2), (512, 2)]),
    "vgg11_lrn.cnn": lambda: vgg_config([(64, 1), (128, 1), (256, 2), (512, 2), (512, 2)]),
    "vgg13.cnn": lambda: vgg_config([(64, 2), (128, 2), (256, 2), (512, 2), (512, 2)]),
    "vgg16_c.cnn": lambda: vgg_config(
        [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], one_by_one=True
    ),
    "vgg16.cnn": lambda: A.VGG16(weights=None),
    "vgg19.cnn": lambda: A.VGG19(weights=None),
    "book_googlenet.cnn": book_googlenet,
    "googlenet.cnn": googlenet_paper,
    "book_resnet50.cnn": book_resnet50,
    "resnet50.cnn": lambda: A.ResNet50(weights=None),
    "resnet101.cnn": lambda: A.ResNet101(weights=None),
    "resnet152.cnn": lambda: A.ResNet152(weights=None),
    "densenet121.cnn": lambda: A.DenseNet121(weights=None),
    "inception_v3.cnn": lambda: A.InceptionV3(weights=None),
    "unet.cnn": unet,
    "xception.cnn": lambda: A.Xception(weights=None),
    "textbook_mnist_cnn.cnn": lambda: textbook_net((28, 28, 1), (8, 5), "valid", (16, 5), 10),
    "textbook_color.cnn": lambda: textbook_net((28, 28, 3), (2, 1), "valid", (3, 3), 6),
    "textbook_shape.cnn": lambda: textbook_net((28, 28, 1), (8, 3), "same", (16, 3), 5),
    "textbook_cifar10.cnn": keras_cifar10_cnn,
    "mnist_fc.cnn": mnist_fc,
    "digits_cnn.cnn": digits_cnn,
    "zfnet.cnn": zfnet,
}


def counts(model: Model) -> tuple[int, int, int]:
    trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    nontrainable = sum(int(keras.ops.size(w)) for w in model.non_trainable_weights)
    return model.count_params(), trainable, nontrainable
