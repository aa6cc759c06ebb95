"""torchvision's `googlenet`, reproduced in plain PyTorch (torchvision is not installable here).

A module-for-module copy of ``torchvision/models/googlenet.py`` (torchvision
0.3 and later): the same modules, the same forward pass and the same
state-dict key names (``conv1.conv.weight``, ``inception3a.branch2.1.bn.running_var``,
``aux1.fc1.weight``, ``fc.bias``, ...), so a state dict of this model is a
state dict of torchvision's and the other way round. The weight-parity tests
compare `keras_googlenet` against it, and the benchmarks time it as the
PyTorch reference. The inception filter counts come from
`keras_googlenet.model.architecture.INCEPTION_BLOCKS`; everything that differs from
the paper is torchvision's, and commented where it does.
"""

import collections

import torch
import torch.nn.functional as F
from torch import nn

from keras_googlenet.model import architecture

# torchvision returns this named tuple in training mode with aux_logits=True.
GoogLeNetOutputs = collections.namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])

# ImageNet mean and std, which torchvision's transform_input undoes channel by channel.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicConv2d(nn.Module):
    """Conv without bias, BN with eps 1e-3 (TF-slim's), ReLU."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """An inception module, torchvision layout: branch1 .. branch4 concatenated."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            # torchvision: "kernel_size=3 instead of kernel_size=5 is a known bug"
            # (pytorch/vision#906), kept because the TF-slim weights have 3x3 here.
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """torchvision's auxiliary head: an adaptive 4x4 average pool, not the paper's 5x5/3 pool."""

    def __init__(self, in_channels, num_classes, dropout=0.7):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        # aux1: N x 512 x 14 x 14, aux2: N x 528 x 14 x 14 at 224 px
        x = F.adaptive_avg_pool2d(x, (4, 4))
        x = self.conv(x)
        # Flattened in NCHW order: fc1's 2048 inputs are channel-major.
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x), inplace=True)
        x = self.dropout(x)
        return self.fc2(x)


class GoogLeNet(nn.Module):
    """torchvision's ``GoogLeNet`` class: the same attributes, forward pass and outputs."""

    def __init__(self, num_classes=1000, aux_logits=True, transform_input=False, init_weights=True,
                 dropout=0.2, dropout_aux=0.7):
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input

        self.conv1 = BasicConv2d(3, architecture.STEM_CONV1_FILTERS, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(architecture.STEM_CONV1_FILTERS, architecture.STEM_CONV2_REDUCE_FILTERS, kernel_size=1)
        self.conv3 = BasicConv2d(
            architecture.STEM_CONV2_REDUCE_FILTERS, architecture.STEM_CONV2_FILTERS, kernel_size=3, padding=1
        )
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        channels = architecture.STEM_CONV2_FILTERS
        aux_channels = {}
        for block in architecture.INCEPTION_BLOCKS:
            setattr(self, f"inception{block.name}", Inception(
                channels, block.filters_1x1, block.filters_3x3_reduce, block.filters_3x3,
                block.filters_5x5_reduce, block.filters_5x5, block.pool_proj,
            ))
            channels = block.output_channels
            if block.name in architecture.AUX_HEAD_AFTER:
                aux_channels[architecture.AUX_HEAD_AFTER[block.name]] = channels
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        # torchvision's pool after 4e is 2x2 (TF-slim's), the paper's is 3x3.
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        if aux_logits:
            self.aux1 = InceptionAux(aux_channels["aux1"], num_classes, dropout=dropout_aux)
            self.aux2 = InceptionAux(aux_channels["aux2"], num_classes, dropout=dropout_aux)
        else:
            self.aux1 = None
            self.aux2 = None

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels, num_classes)

        if init_weights:
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2, b=2)
                elif isinstance(module, nn.BatchNorm2d):
                    nn.init.constant_(module.weight, 1)
                    nn.init.constant_(module.bias, 0)

    def _transform_input(self, x):
        # Maps ImageNet-normalised inputs back to the [-1, 1] scaling that the
        # TF-slim weights were trained with: x * std / 0.5 + (mean - 0.5) / 0.5.
        if not self.transform_input:
            return x
        return torch.cat([
            torch.unsqueeze(x[:, c], 1) * (IMAGENET_STD[c] / 0.5) + (IMAGENET_MEAN[c] - 0.5) / 0.5
            for c in range(3)
        ], 1)

    def _forward(self, x):
        # N x 3 x 224 x 224
        x = self.maxpool1(self.conv1(x))
        # N x 64 x 56 x 56
        x = self.maxpool2(self.conv3(self.conv2(x)))
        # N x 192 x 28 x 28
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        # N x 480 x 14 x 14
        x = self.inception4a(x)
        # torchvision runs the auxiliary heads in training mode only.
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        # N x 832 x 7 x 7
        x = self.inception5b(self.inception5a(x))
        # N x 1024 x 7 x 7
        x = torch.flatten(self.avgpool(x), 1)
        x = self.fc(self.dropout(x))
        # N x num_classes
        return x, aux2, aux1

    def forward(self, x):
        x, aux2, aux1 = self._forward(self._transform_input(x))
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def torchvision_googlenet(num_classes=1000, aux_logits=True, transform_input=False):
    """A torchvision ``googlenet(weights=None, ...)`` equivalent, in eval mode it returns logits.

    torchvision's own ``googlenet(weights=IMAGENET1K_V1)`` builds this with
    ``aux_logits=True`` to load the file (which holds ``aux1.*`` and ``aux2.*``
    keys), then drops the auxiliary heads, and sets ``transform_input=True``.
    """
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, transform_input=transform_input)
