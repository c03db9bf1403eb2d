"""The drawn parameters of one second-order degradation: a plain record that round-trips through JSON.

A :class:`DegradationParams` holds every random value the pipeline uses for one image (kernels as their
generating parameters *and* the sampled kernel, resize types/scales/modes and sizes, noise types and
strengths, JPEG qualities, the order of the last step) plus the seed of the noise stream; applying it is
deterministic. Everything is a Python ``int``, ``float``, ``bool``, ``str``, ``None`` or list of those, so
``json.dumps(params.to_dict())`` works and :meth:`DegradationParams.from_dict` restores an equal record
(floats round-trip exactly through Python's JSON).

>>> p = StageParams(resize_type="keep", resize_scale=1.0, resize_mode="area", size=[64, 64],
...                 noise_type="gaussian", noise_sigma=5.0, gray_noise=False)
>>> StageParams.from_dict(p.to_dict()) == p
True
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Iterable

import numpy as np

from .kernels import KernelSpec, kernel_from_spec

#: Version of the record layout; bumped when fields change meaning.
PARAMS_VERSION = 1


@dataclass
class BlurParams:
    """One blur: its generating parameters and the sampled (size, size) kernel as nested lists."""

    spec: KernelSpec
    kernel: list

    @classmethod
    def from_spec(cls, spec: KernelSpec) -> "BlurParams":
        return cls(spec, kernel_from_spec(spec).tolist())

    def array(self) -> np.ndarray:
        """The kernel as float64 (size, size)."""
        return np.asarray(self.kernel, dtype=np.float64)

    def is_identity(self) -> bool:
        return self.spec.type == "pulse"

    def to_dict(self) -> dict:
        return {"spec": self.spec.to_dict(), "kernel": self.kernel}

    @classmethod
    def from_dict(cls, d: dict) -> "BlurParams":
        spec = KernelSpec.from_dict(d["spec"])
        kernel = d.get("kernel")
        # A record may omit the sampled kernel to stay small: it is rebuilt from its parameters.
        return cls(spec, kernel if kernel is not None else kernel_from_spec(spec).tolist())


@dataclass
class StageParams:
    """One degradation stage after its blur: resize, then noise (and JPEG for the first stage).

    ``resize_type``: "up", "down" or "keep"; ``resize_scale``: the drawn factor; ``size``: [h, w] after
    the resize. ``noise_type``: "gaussian" (``noise_sigma`` on the 0-255 scale) or "poisson"
    (``poisson_scale``); ``gray_noise``: one noise plane for all channels. ``jpeg_quality``: integer
    1..100, or None where the stage has no JPEG (the second stage's JPEG belongs to :class:`FinalParams`).
    """

    resize_type: str
    resize_scale: float
    resize_mode: str
    size: list
    noise_type: str
    gray_noise: bool
    noise_sigma: float | None = None
    poisson_scale: float | None = None
    jpeg_quality: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StageParams":
        return cls(**d)


@dataclass
class FinalParams:
    """The last step: resize to the LR size + sinc filter, and JPEG, in the order ``jpeg_first`` says."""

    sinc: BlurParams
    jpeg_first: bool
    resize_mode: str
    size: list
    jpeg_quality: int

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sinc"] = self.sinc.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FinalParams":
        d = dict(d)
        d["sinc"] = BlurParams.from_dict(d["sinc"])
        return cls(**d)


@dataclass
class DegradationParams:
    """Everything drawn for one image; see the module doc. ``gt_size`` is the [h, w] the params were drawn
    for (the input must have it); ``blur2`` is None when the second blur was skipped."""

    gt_size: list
    scale: int
    gt_usm: bool
    antialias: bool
    jpeg_backend: str
    noise_seed: int
    blur1: BlurParams
    stage1: StageParams
    blur2: BlurParams | None
    stage2: StageParams
    final: FinalParams
    version: int = field(default=PARAMS_VERSION)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("blur1", "stage1", "stage2", "final"):
            d[name] = d[name].to_dict()
        d["blur2"] = None if self.blur2 is None else self.blur2.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DegradationParams":
        d = dict(d)
        version = d.get("version", PARAMS_VERSION)
        if version != PARAMS_VERSION:
            raise ValueError(f"unsupported degradation params version {version} (expected {PARAMS_VERSION})")
        d["blur1"] = BlurParams.from_dict(d["blur1"])
        d["blur2"] = None if d.get("blur2") is None else BlurParams.from_dict(d["blur2"])
        d["stage1"] = StageParams.from_dict(d["stage1"])
        d["stage2"] = StageParams.from_dict(d["stage2"])
        d["final"] = FinalParams.from_dict(d["final"])
        return cls(**d)

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> "DegradationParams":
        return cls.from_dict(json.loads(text))


def _blur_text(b: BlurParams | None) -> str:
    if b is None:
        return "no blur"
    k = b.spec
    if k.type == "pulse":
        return "no blur"
    if k.type == "sinc":
        return f"sinc {k.size}px cutoff {k.cutoff:.2f}"
    shape = f" beta {k.beta:.1f}" if k.beta is not None else ""
    if k.sigma_y is not None and k.sigma_y != k.sigma_x:
        rot = f" rot {math.degrees(k.theta):.0f}deg" if k.theta else ""
        return f"{k.type} {k.size}px sigma {k.sigma_x:.2f}/{k.sigma_y:.2f}{rot}{shape}"
    return f"{k.type} {k.size}px sigma {k.sigma_x:.2f}{shape}"


def _stage_text(s: StageParams) -> str:
    resize = "no resize" if s.resize_type == "keep" else f"{s.resize_type} x{s.resize_scale:.2f} {s.resize_mode}"
    if s.noise_type == "gaussian":
        noise = f"gauss noise {s.noise_sigma:.1f}"
    else:
        noise = f"poisson noise {s.poisson_scale:.2f}"
    noise += " gray" if s.gray_noise else ""
    jpeg = f", JPEG {s.jpeg_quality}" if s.jpeg_quality is not None else ""
    return f"{resize}, {noise}{jpeg}"


def describe_params(params: DegradationParams) -> str:
    """What was drawn for one image, in three short lines (for contact sheets): each stage's blur, resize,
    noise and JPEG, and the final sinc/JPEG order. Sigmas in px, noise on the 0-255 scale.

    >>> from .kernels import KernelSpec
    >>> blur = BlurParams(KernelSpec("iso", 7, 1.5, 1.5, 0.0), [])
    >>> st = StageParams("down", 0.5, "area", [8, 8], "gaussian", True, noise_sigma=3.0, jpeg_quality=80)
    >>> fin = FinalParams(BlurParams(KernelSpec("pulse", 21), []), False, "bicubic", [4, 4], 70)
    >>> print(describe_params(DegradationParams([16, 16], 4, False, True, "cv2", 0, blur, st, None, st, fin)))
    1: iso 7px sigma 1.50; down x0.50 area, gauss noise 3.0 gray, JPEG 80
    2: no blur; down x0.50 area, gauss noise 3.0 gray, JPEG 80
    3: bicubic to 4x4, JPEG 70 (no sinc)
    """
    f = params.final
    if f.sinc.is_identity():
        order = f"JPEG {f.jpeg_quality} (no sinc)"
    elif f.jpeg_first:
        order = f"JPEG {f.jpeg_quality} then {_blur_text(f.sinc)}"
    else:
        order = f"{_blur_text(f.sinc)} then JPEG {f.jpeg_quality}"
    return "\n".join([f"1: {_blur_text(params.blur1)}; {_stage_text(params.stage1)}",
                      f"2: {_blur_text(params.blur2)}; {_stage_text(params.stage2)}",
                      f"3: {f.resize_mode} to {f.size[0]}x{f.size[1]}, {order}"])


def save_params(path: str | os.PathLike, params: DegradationParams | Iterable[DegradationParams]) -> None:
    """Write one record (a JSON object) or several (a JSON list) to ``path``."""
    if isinstance(params, DegradationParams):
        obj = params.to_dict()
    else:
        obj = [p.to_dict() for p in params]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)


def load_params(path: str | os.PathLike) -> DegradationParams | list[DegradationParams]:
    """Read what :func:`save_params` wrote: one record, or a list of records."""
    with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    if isinstance(obj, list):
        return [DegradationParams.from_dict(d) for d in obj]
    return DegradationParams.from_dict(obj)
