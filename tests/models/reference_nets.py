"""Other programs' networks, written out independently from their sources, for interop tests.

Each class uses that program's own module names (so its ``state_dict`` keys are that program's) and its own
forward pass, including how it scales and shifts the input:

* :class:`BasicsrEDSR`, :class:`BasicsrRCAN`: BasicSR ``basicsr/archs/edsr_arch.py``, ``rcan_arch.py`` and
  ``arch_util.py`` (``ResidualBlockNoBN``, ``Upsample``): the mean is an attribute, not a tensor of the file;
  ``x = (x - mean) * img_range`` in, ``x / img_range + mean`` out.
* :class:`ReflashSRResNet`: the Reflash Dropout repository's ``MSRResNet_details`` (``body1`` .. ``body16``, each a
  one-block ``make_layer``).
* :class:`EdsrPytorchEDSR`, :class:`EdsrPytorchRCAN`: EDSR-PyTorch ``src/model/edsr.py``, ``rcan.py`` and
  ``common.py``: ``MeanShift`` is a 1x1 ``Conv2d`` with frozen parameters; the network takes images in
  [0, rgb_range].

:func:`basicsr_load` and :func:`edsr_pytorch_load` state how those programs read a file.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

MEAN = (0.4488, 0.4371, 0.4040)


def _upsample(scale, nf):
    m = []
    if scale & (scale - 1) == 0:
        for _ in range(int(math.log2(scale))):
            m += [nn.Conv2d(nf, 4 * nf, 3, 1, 1), nn.PixelShuffle(2)]
    else:
        m += [nn.Conv2d(nf, 9 * nf, 3, 1, 1), nn.PixelShuffle(3)]
    return nn.Sequential(*m)


class _ResNoBN(nn.Module):
    def __init__(self, nf, res_scale=1.0):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x))) * self.res_scale


class BasicsrEDSR(nn.Module):
    def __init__(self, num_feat, num_block, upscale, res_scale=1.0, img_range=255.0):
        super().__init__()
        self.img_range = img_range
        self.mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        self.conv_first = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[_ResNoBN(num_feat, res_scale) for _ in range(num_block)])
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = _upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def forward(self, x):
        x = (x - self.mean) * self.img_range
        x = self.conv_first(x)
        res = self.conv_after_body(self.body(x)) + x
        return self.conv_last(self.upsample(res)) / self.img_range + self.mean


class _Attention(nn.Module):
    def __init__(self, nf, squeeze):
        super().__init__()
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(nf, nf // squeeze, 1), nn.ReLU(),
                                       nn.Conv2d(nf // squeeze, nf, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.attention(x)


class _RCAB(nn.Module):
    def __init__(self, nf, squeeze):
        super().__init__()
        self.rcab = nn.Sequential(nn.Conv2d(nf, nf, 3, 1, 1), nn.ReLU(), nn.Conv2d(nf, nf, 3, 1, 1),
                                  _Attention(nf, squeeze))

    def forward(self, x):
        return self.rcab(x) + x


class _Group(nn.Module):
    def __init__(self, nf, num_block, squeeze):
        super().__init__()
        self.residual_group = nn.Sequential(*[_RCAB(nf, squeeze) for _ in range(num_block)])
        self.conv = nn.Conv2d(nf, nf, 3, 1, 1)

    def forward(self, x):
        return self.conv(self.residual_group(x)) + x


class BasicsrRCAN(nn.Module):
    def __init__(self, num_feat, num_group, num_block, squeeze_factor, upscale, img_range=255.0):
        super().__init__()
        self.img_range = img_range
        self.mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        self.conv_first = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[_Group(num_feat, num_block, squeeze_factor) for _ in range(num_group)])
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = _upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def forward(self, x):
        x = (x - self.mean) * self.img_range
        x = self.conv_first(x)
        res = self.conv_after_body(self.body(x)) + x
        return self.conv_last(self.upsample(res)) / self.img_range + self.mean


class ReflashSRResNet(nn.Module):
    def __init__(self, num_feat=64, upscale=4, num_block=16):
        super().__init__()
        self.upscale = upscale
        self.conv_first = nn.Conv2d(3, num_feat, 3, 1, 1)
        for i in range(1, num_block + 1):
            setattr(self, f"body{i}", nn.Sequential(_ResNoBN(num_feat)))
        self.num_block = num_block
        if upscale == 4:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        else:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * upscale * upscale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(upscale)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def forward(self, x):
        feat = F.leaky_relu(self.conv_first(x), 0.1)
        for i in range(1, self.num_block + 1):
            feat = getattr(self, f"body{i}")(feat)
        out = F.leaky_relu(self.pixel_shuffle(self.upconv1(feat)), 0.1)
        if self.upscale == 4:
            out = F.leaky_relu(self.pixel_shuffle(self.upconv2(out)), 0.1)
        out = self.conv_last(F.leaky_relu(self.conv_hr(out), 0.1))
        return out + F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)


class _MeanShift(nn.Conv2d):
    def __init__(self, rgb_range, sign):
        super().__init__(3, 3, 1)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.bias.data = sign * rgb_range * torch.tensor(MEAN)
        for p in self.parameters():
            p.requires_grad = False


class _ResBlock(nn.Module):
    def __init__(self, nf, res_scale):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), nn.ReLU(), nn.Conv2d(nf, nf, 3, padding=1))
        self.res_scale = res_scale

    def forward(self, x):
        return self.body(x).mul(self.res_scale) + x


class EdsrPytorchEDSR(nn.Module):
    def __init__(self, n_resblocks, n_feats, scale, res_scale=1.0, rgb_range=255):
        super().__init__()
        self.sub_mean = _MeanShift(rgb_range, -1)
        self.add_mean = _MeanShift(rgb_range, 1)
        self.head = nn.Sequential(nn.Conv2d(3, n_feats, 3, padding=1))
        self.body = nn.Sequential(*[_ResBlock(n_feats, res_scale) for _ in range(n_resblocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.tail = nn.Sequential(_upsample(scale, n_feats), nn.Conv2d(n_feats, 3, 3, padding=1))

    def forward(self, x):  # x in [0, rgb_range]
        x = self.head(self.sub_mean(x))
        res = self.body(x) + x
        return self.add_mean(self.tail(res))


class _CALayer(nn.Module):
    def __init__(self, nf, reduction):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(nn.Conv2d(nf, nf // reduction, 1), nn.ReLU(), nn.Conv2d(nf // reduction, nf, 1),
                                     nn.Sigmoid())

    def forward(self, x):
        return x * self.conv_du(self.avg_pool(x))


class _RCABe(nn.Module):
    def __init__(self, nf, reduction):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), nn.ReLU(), nn.Conv2d(nf, nf, 3, padding=1),
                                  _CALayer(nf, reduction))

    def forward(self, x):
        return self.body(x) + x


class _RGe(nn.Module):
    def __init__(self, nf, reduction, n_resblocks):
        super().__init__()
        self.body = nn.Sequential(*[_RCABe(nf, reduction) for _ in range(n_resblocks)],
                                  nn.Conv2d(nf, nf, 3, padding=1))

    def forward(self, x):
        return self.body(x) + x


class EdsrPytorchRCAN(nn.Module):
    def __init__(self, n_resgroups, n_resblocks, n_feats, reduction, scale, rgb_range=255):
        super().__init__()
        self.sub_mean = _MeanShift(rgb_range, -1)
        self.head = nn.Sequential(nn.Conv2d(3, n_feats, 3, padding=1))
        self.body = nn.Sequential(*[_RGe(n_feats, reduction, n_resblocks) for _ in range(n_resgroups)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.tail = nn.Sequential(_upsample(scale, n_feats), nn.Conv2d(n_feats, 3, 3, padding=1))
        self.add_mean = _MeanShift(rgb_range, 1)

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        res = self.body(x) + x
        return self.add_mean(self.tail(res))


def basicsr_load(net, path):
    """BasicSR ``BaseModel.load_network`` with the defaults: ``torch.load``, ``[param_key='params']``, strip
    ``module.``, ``load_state_dict(strict=True)``."""
    state = torch.load(path, map_location="cpu", weights_only=True)["params"]
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    net.load_state_dict(state, strict=True)
    return net.eval()


def edsr_pytorch_load(net, path):
    """EDSR-PyTorch ``Model.load(pre_train=...)``: ``torch.load`` of a plain state dict into the network; strict
    here, so a file with other keys fails instead of changing nothing."""
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()
