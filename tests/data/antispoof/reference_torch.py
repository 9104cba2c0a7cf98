"""One-off reference run of the upstream MiniFASNet models in PyTorch (NOT run by the tests).

Run it in a throwaway venv that has torch, never in the project's venv::

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch==2.13.0 numpy opencv-python-headless
    /tmp/torchvenv/bin/python tests/data/antispoof/reference_torch.py \
        ../shared/data/antispoof boxes.json > tests/data/antispoof/reference.json

``boxes.json`` maps an image file name to a list of face boxes (x1, y1, x2, y2). The script
rebuilds the upstream architecture in torch (from minivision-ai/Silent-Face-Anti-Spoofing
src/model_lib/MiniFASNet.py, read not copied), loads the ``.pth`` with ``torch.load`` and a strict
``load_state_dict``, crops each box with the upstream CropImage convention (box scaled around
its centre, shifted inside the image, ``cv2.resize`` to 80x80, BGR 0..255) and prints the
softmax of each model and of their average. It shares no code with ``liveness``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

KEEP_V1 = [32, 32, 103, 103, 64, 13, 13, 64, 26, 26, 64, 13, 13, 64, 52, 52, 64, 231, 231, 128,
           154, 154, 128, 52, 52, 128, 26, 26, 128, 52, 52, 128, 26, 26, 128, 26, 26, 128, 308,
           308, 128, 26, 26, 128, 26, 26, 128, 512, 512]
KEEP_V2 = [32, 32, 103, 103, 64, 13, 13, 64, 13, 13, 64, 13, 13, 64, 13, 13, 64, 231, 231, 128,
           231, 231, 128, 52, 52, 128, 26, 26, 128, 77, 77, 128, 26, 26, 128, 26, 26, 128, 308,
           308, 128, 26, 26, 128, 26, 26, 128, 512, 512]


class ConvBN(nn.Module):
    def __init__(self, cin, cout, k=1, s=1, p=0, g=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, p, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        if act:
            self.prelu = nn.PReLU(cout)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.prelu(x) if self.act else x


class SE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c // r)
        self.fc2 = nn.Conv2d(c // r, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        z = x.mean(dim=(2, 3), keepdim=True)
        z = torch.relu(self.bn1(self.fc1(z)))
        return x * torch.sigmoid(self.bn2(self.fc2(z)))


class DW(nn.Module):
    def __init__(self, c1, c2, c3, s, residual, se=False):
        super().__init__()
        self.conv = ConvBN(c1[0], c1[1])
        self.conv_dw = ConvBN(c2[0], c2[1], 3, s, 1, g=c2[0])
        self.project = ConvBN(c3[0], c3[1], act=False)
        self.residual = residual
        if se:
            self.se_module = SE(c3[1], 4)
        self.se = se

    def forward(self, x):
        y = self.project(self.conv_dw(self.conv(x)))
        if not self.residual:
            return y
        if self.se:
            y = self.se_module(y)
        return x + y


class Stage(nn.Module):
    def __init__(self, k, first, n, se):
        super().__init__()
        blocks = []
        for i in range(n):
            j = first + 3 * i
            blocks.append(DW((k[j], k[j + 1]), (k[j + 1], k[j + 2]), (k[j + 2], k[j + 3]), 1, True,
                             se and i == n - 1))
        self.model = nn.Sequential(*blocks)

    def forward(self, x):
        return self.model(x)


class MiniFASNet(nn.Module):
    def __init__(self, k, se):
        super().__init__()
        self.conv1 = ConvBN(3, k[0], 3, 2, 1)
        self.conv2_dw = ConvBN(k[0], k[1], 3, 1, 1, g=k[1])
        self.conv_23 = DW((k[1], k[2]), (k[2], k[3]), (k[3], k[4]), 2, False)
        self.conv_3 = Stage(k, 4, 4, se)
        self.conv_34 = DW((k[16], k[17]), (k[17], k[18]), (k[18], k[19]), 2, False)
        self.conv_4 = Stage(k, 19, 6, se)
        self.conv_45 = DW((k[37], k[38]), (k[38], k[39]), (k[39], k[40]), 2, False)
        self.conv_5 = Stage(k, 40, 2, se)
        self.conv_6_sep = ConvBN(k[46], k[47])
        self.conv_6_dw = ConvBN(k[47], k[48], 5, 1, 0, g=k[48], act=False)
        self.linear = nn.Linear(512, 128, bias=False)
        self.bn = nn.BatchNorm1d(128)
        self.prob = nn.Linear(128, 3, bias=False)

    def forward(self, x):
        for m in (self.conv1, self.conv2_dw, self.conv_23, self.conv_3, self.conv_34, self.conv_4,
                  self.conv_45, self.conv_5, self.conv_6_sep, self.conv_6_dw):
            x = m(x)
        x = self.prob(self.bn(self.linear(x.flatten(1))))
        return torch.softmax(x, dim=1)


def crop(img, box, scale, size=80):
    """Upstream CropImage: (x, y, w, h) box scaled about its centre, moved inside the image."""
    h_img, w_img = img.shape[:2]
    x, y = box[0], box[1]
    bw, bh = box[2] - box[0], box[3] - box[1]
    scale = min((h_img - 1) / bh, (w_img - 1) / bw, scale)
    cx, cy = x + bw / 2, y + bh / 2
    x1, y1, x2, y2 = cx - bw * scale / 2, cy - bh * scale / 2, cx + bw * scale / 2, cy + bh * scale / 2
    if x1 < 0:
        x2 -= x1
        x1 = 0
    if y1 < 0:
        y2 -= y1
        y1 = 0
    if x2 > w_img - 1:
        x1 -= x2 - w_img + 1
        x2 = w_img - 1
    if y2 > h_img - 1:
        y1 -= y2 - h_img + 1
        y2 = h_img - 1
    x1, y1, x2, y2 = int(x1), int(y1), int(x2), int(y2)
    return cv2.resize(img[y1:y2 + 1, x1:x2 + 1], (size, size))


def load(path, keep, se):
    net = MiniFASNet(keep, se)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict({k.removeprefix("module."): v for k, v in sd.items()}, strict=True)
    return net.eval()


def main() -> None:
    root = Path(sys.argv[1])
    boxes = json.loads(Path(sys.argv[2]).read_text())
    models = {
        "antispoof_v2": (load(root / "2.7_80x80_MiniFASNetV2.pth", KEEP_V2, False), 2.7),
        "antispoof_v1se": (load(root / "4_0_0_80x80_MiniFASNetV1SE.pth", KEEP_V1, True), 4.0),
    }
    out = {"torch": torch.__version__, "images": {}}
    for name, box_list in boxes.items():
        img = cv2.imread(str(root / name))
        rows = []
        for box in box_list:
            row = {"box": box}
            probs = []
            for mname, (net, scale) in models.items():
                patch = crop(img, box, scale)
                x = torch.from_numpy(patch.transpose(2, 0, 1)[None].astype(np.float32))
                with torch.no_grad():
                    p = net(x)[0].numpy().astype(float)
                row[mname] = [round(v, 8) for v in p]
                probs.append(p)
            avg = np.mean(probs, axis=0)
            row["mean"] = [round(float(v), 8) for v in avg]
            row["live_score"] = round(float(avg[1]), 8)
            rows.append(row)
        out["images"][name] = rows
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
