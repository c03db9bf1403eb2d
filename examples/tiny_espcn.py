"""A network of your own for srprep: a tiny ESPCN (Shi et al., CVPR 2016) on top of bilinear upsampling.

srprep's contract for a network (the same as for its own): ``TinyESPCN(scale=s, **kwargs)`` is an
``nn.Module`` that maps float NCHW RGB in [0, 1], shape (N, 3, H, W), to float (N, 3, s*H, s*W) in about
[0, 1]. Train, evaluate and serve it by naming it (this file is imported, that is, run):

    srprep train -c tiny_cpu model.name=examples/tiny_espcn.py:TinyESPCN "model.kwargs={features: 16}" \
        --run-dir runs/tiny_espcn
    srprep eval -m runs/tiny_espcn/best.pt --arch examples/tiny_espcn.py:TinyESPCN -d benchmark/Set5
    srprep centroids DATA -m runs/tiny_espcn/best.pt --arch examples/tiny_espcn.py:TinyESPCN
"""
import torch
import torch.nn.functional as F
from torch import nn


class TinyESPCN(nn.Module):
    """conv5x5-tanh, conv3x3-tanh, conv3x3 to 3*s*s channels, pixel shuffle; added to bilinear(x)."""

    def __init__(self, scale: int = 2, features: int = 32):
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(3, features, 5, padding=2), nn.Tanh(),
            nn.Conv2d(features, features // 2, 3, padding=1), nn.Tanh(),
            nn.Conv2d(features // 2, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale),
        )
        nn.init.zeros_(self.body[4].weight)  # starts as bilinear upsampling and learns the residual
        nn.init.zeros_(self.body[4].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return base + self.body(x)
