"""torchvision's models, transcribed in plain PyTorch (torchvision itself does not
install beside the CPU torch wheel), each checked against the parameter count
torchvision publishes for it (`num_params` in its weights' metadata):

- ResNet18/34/50 and ResNeXt50 (32x4d), as torchvision/models/resnet.py: BasicBlock,
  Bottleneck (stride on the 3x3; ResNeXt: the 3x3 grouped, width planes * 4/64 * 32),
  downsample = 1x1 conv + BN when the stride or the width changes;
- SqueezeNet 1.0 and 1.1 (squeezenet.py): Fire modules, ceil-mode max pooling;
- ShuffleNet V2 x1.0 (shufflenetv2.py): channel split, depthwise 3x3, channel shuffle;
- MobileNetV2 (mobilenetv2.py): inverted residuals with ReLU6, depthwise 3x3.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4
    groups, base_width = 1, 64  # ResNeXt50_32x4d: 32, 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        width = int(planes * (self.base_width / 64.0)) * self.groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=self.groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


class ResNeXtBottleneck(Bottleneck):
    groups, base_width = 32, 4


class Fire(nn.Module):
    def __init__(self, inplanes, squeeze, expand1x1, expand3x3):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.squeeze(x))
        return torch.cat([self.relu(self.expand1x1(x)), self.relu(self.expand3x3(x))], 1)


def squeezenet(version: str, num_classes: int = 1000) -> nn.Module:
    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)
    if version == "1_0":
        features = [
            nn.Conv2d(3, 96, 7, 2), nn.ReLU(), pool(),
            Fire(96, 16, 64, 64), Fire(128, 16, 64, 64), Fire(128, 32, 128, 128), pool(),
            Fire(256, 32, 128, 128), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256), pool(),
            Fire(512, 64, 256, 256),
        ]  # fmt: skip
    else:
        features = [
            nn.Conv2d(3, 64, 3, 2), nn.ReLU(), pool(),
            Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), pool(),
            Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool(),
            Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256), Fire(512, 64, 256, 256),
        ]  # fmt: skip
    return nn.Sequential(
        *features,
        nn.Dropout(0.5),
        nn.Conv2d(512, num_classes, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )


def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        half = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, half, 1, bias=False),
                nn.BatchNorm2d(half),
                nn.ReLU(),
            )
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else half, half, 1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False),
            nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(),
        )

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


def shufflenet_v2(repeats=(4, 8, 4), channels=(24, 116, 232, 464, 1024), num_classes=1000):
    layers = [
        nn.Conv2d(3, channels[0], 3, 2, 1, bias=False),
        nn.BatchNorm2d(channels[0]),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
    ]
    inp = channels[0]
    for n, out in zip(repeats, channels[1:4]):
        layers += [ShuffleUnit(inp, out, 2)] + [ShuffleUnit(out, out, 1) for _ in range(n - 1)]
        inp = out
    layers += [
        nn.Conv2d(inp, channels[4], 1, bias=False),
        nn.BatchNorm2d(channels[4]),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(channels[4], num_classes),
    ]
    return nn.Sequential(*layers)


def conv_bn_relu6(inp, oup, kernel=3, stride=1, groups=1):
    return [
        nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(),
    ]


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers = conv_bn_relu6(inp, hidden, 1) if expand_ratio != 1 else []
        layers += conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden)
        layers += [nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def mobilenet_v2(num_classes=1000):
    setting = [  # t, c, n, s
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    layers = conv_bn_relu6(3, 32, 3, 2)
    inp = 32
    for t, c, n, s in setting:
        for i in range(n):
            layers.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
            inp = c
    layers += conv_bn_relu6(inp, 1280, 1)
    layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.2)]
    layers.append(nn.Linear(1280, num_classes))
    return nn.Sequential(*layers)


REFERENCES = {
    "resnet18_torchvision.cnn": lambda: ResNet(BasicBlock, [2, 2, 2, 2]),
    "resnet34_torchvision.cnn": lambda: ResNet(BasicBlock, [3, 4, 6, 3]),
    "resnet50_torchvision.cnn": lambda: ResNet(Bottleneck, [3, 4, 6, 3]),
    "resnext50_32x4d.cnn": lambda: ResNet(ResNeXtBottleneck, [3, 4, 6, 3]),
    "squeezenet1_0.cnn": lambda: squeezenet("1_0"),
    "squeezenet1_1.cnn": lambda: squeezenet("1_1"),
    "shufflenet_v2_x1_0.cnn": shufflenet_v2,
    "mobilenet_v2_torchvision.cnn": mobilenet_v2,
}

# torchvision's published parameter counts (`num_params` in each model's weights
# metadata): the transcriptions above must reproduce them.
PUBLISHED = {
    "resnet18_torchvision.cnn": 11_689_512,
    "resnet34_torchvision.cnn": 21_797_672,
    "resnet50_torchvision.cnn": 25_557_032,
    "resnext50_32x4d.cnn": 25_028_904,
    "squeezenet1_0.cnn": 1_248_424,
    "squeezenet1_1.cnn": 1_235_496,
    "shufflenet_v2_x1_0.cnn": 2_278_604,
    "mobilenet_v2_torchvision.cnn": 3_504_872,
}


def kind_of(module: nn.Module) -> str | None:
    """The archc kind of a module with tensors (None: a module without its own)."""
    if isinstance(module, nn.Conv2d):
        # torchvision writes a depthwise convolution as a Conv2d with one group per
        # input channel; archc as `DW` (other grouped convolutions are `C(groups: g)`)
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return "depthwise" if depthwise else "conv"
    if isinstance(module, nn.Linear):
        return "dense"
    if isinstance(module, nn.BatchNorm2d):
        return "batchnorm"
    return None


def counts(model: nn.Module) -> tuple[int, int]:
    """(parameters, BN running-statistics elements), as torch holds them."""
    params = sum(p.numel() for p in model.parameters())
    stats = sum(
        b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))
    )
    return params, stats
