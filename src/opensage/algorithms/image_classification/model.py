"""ResNet (He et al., v2 pre-activation as MXNet's image classification symbol builds it) in
PyTorch. Images of 32 pixels or less use the CIFAR-style net (3 stages of 16/32/64 filters,
(depth-2)/6 basic blocks each: depths 20, 32, 44, 56, 110); larger ones the ImageNet nets
(7x7 stem, 4 stages; 18/34 basic blocks, 50/101/152/200 bottlenecks)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

IMAGENET = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
            50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)),
            152: ("bottleneck", (3, 8, 36, 3)), 200: ("bottleneck", (3, 24, 36, 3))}
SMALL_MAX_SIDE = 32


def architecture(num_layers: int, height: int) -> tuple[str, str, tuple[int, ...]]:
    """(``small``/``imagenet``, block kind, blocks per stage); ValueError names valid depths."""
    if height <= SMALL_MAX_SIDE:
        if (num_layers - 2) % 6 == 0 and num_layers < 164:
            n = (num_layers - 2) // 6
            return "small", "basic", (n, n, n)
        raise ValueError(f"num_layers {num_layers} has no ResNet for images of {height} pixels "
                         f"(32 or less): use 20, 32, 44, 56 or 110")
    if num_layers in IMAGENET:
        kind, stages = IMAGENET[num_layers]
        return "imagenet", kind, stages
    raise ValueError(f"num_layers {num_layers} has no ResNet for images of {height} pixels: "
                     f"use 18, 34, 50, 101, 152 or 200")


class Block(nn.Module):
    def __init__(self, kind: str, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inputs)
        if kind == "basic":
            self.body = nn.Sequential(
                nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs),
                nn.ReLU(inplace=True), nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False))
        else:
            mid = outputs // 4
            self.body = nn.Sequential(
                nn.Conv2d(inputs, mid, 1, 1, 0, bias=False), nn.BatchNorm2d(mid),
                nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, stride, 1, bias=False),
                nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                nn.Conv2d(mid, outputs, 1, 1, 0, bias=False))
        self.shortcut = (nn.Conv2d(inputs, outputs, 1, stride, bias=False)
                         if stride != 1 or inputs != outputs else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = torch.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(act)
        return self.body(act) + shortcut


class ResNet(nn.Module):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        style, kind, stages = architecture(config["num_layers"], config["height"])
        channels = config["channels"]
        if style == "small":
            widths = [16, 32, 64]
            self.stem = nn.Sequential(nn.BatchNorm2d(channels),
                                      nn.Conv2d(channels, 16, 3, 1, 1, bias=False))
            inputs = 16
        else:
            widths = [64, 128, 256, 512] if kind == "basic" else [256, 512, 1024, 2048]
            self.stem = nn.Sequential(
                nn.BatchNorm2d(channels), nn.Conv2d(channels, 64, 7, 2, 3, bias=False),
                nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
            inputs = 64
        blocks: list[nn.Module] = []
        for stage, (count, width) in enumerate(zip(stages, widths, strict=True)):
            for i in range(count):
                stride = 2 if i == 0 and stage > 0 else 1
                blocks.append(Block(kind, inputs, width, stride))
                inputs = width
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(inputs)
        self.fc = nn.Linear(inputs, config["num_classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
