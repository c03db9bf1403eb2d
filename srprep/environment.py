"""What ``srprep doctor`` checks: the PIL build, the compiled kernel, torch and CUDA, the optional extras,
and what a data folder holds and needs.

Why the PIL build matters: srprep is meant to run on pillow-simd (SIMD resizing, JPEG through
libjpeg-turbo). pillow-simd and plain Pillow install the same ``PIL`` package, so any later
``pip install`` of a package that requires ``pillow`` (matplotlib, tensorboard, torchvision...) silently
puts plain Pillow over it; ``scripts/setup.sh`` puts pillow-simd back. Plain Pillow works, but PIL
resizing is slower and its resampling may differ in the last bit (``degrade --recipe reflash`` uses PIL's
bicubic), so every command warns once when it finds it.
"""
from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

__all__ = ["PilBuild", "pil_build", "plain_pil_warning", "OPTIONAL", "optional_packages", "torch_report",
           "kernel_report", "DataReport", "data_report"]

REPAIR = ("bash scripts/setup.sh (or: pip uninstall -y pillow && pip install --force-reinstall --no-deps "
          "--no-binary pillow-simd pillow-simd)")


def _version(distribution: str) -> Optional[str]:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class PilBuild:
    """Which distribution the importable ``PIL`` came from.

    build: "pillow-simd", "pillow" (plain) or "unknown"; version: ``PIL.__version__``; libjpeg_turbo / zlib:
    the library versions PIL was compiled against (None where absent); stale_metadata: the other
    distribution's metadata is installed too (its files were overwritten), which makes pip believe it is there.
    """

    build: str
    version: str
    libjpeg_turbo: Optional[str]
    zlib: Optional[str]
    stale_metadata: Optional[str] = None

    @property
    def simd(self) -> bool:
        return self.build == "pillow-simd"


def pil_build() -> PilBuild:
    """Tell pillow-simd from plain Pillow by matching ``PIL.__version__`` to the installed distributions."""
    import PIL
    from PIL import features

    simd, plain = _version("pillow-simd"), _version("pillow")
    if simd is not None and PIL.__version__ == simd:
        build, other = "pillow-simd", plain and f"pillow {plain}"
    elif plain is not None and PIL.__version__ == plain:
        build, other = "pillow", simd and f"pillow-simd {simd}"
    else:
        build, other = "unknown", None
    return PilBuild(build, PIL.__version__, features.version("libjpeg_turbo"), features.version("zlib"), other)


def plain_pil_warning(found: PilBuild | None = None) -> Optional[str]:
    """The one-line warning every command prints when PIL is not pillow-simd (None when it is)."""
    found = found or pil_build()
    if found.simd:
        return None
    what = "plain Pillow" if found.build == "pillow" else "not the pillow-simd build"
    return (f"warning: PIL {found.version} is {what}: PIL resizing is slower and may differ in the last bit from "
            f"pillow-simd (degrade --recipe reflash); a package that requires 'pillow' replaced it. Restore it "
            f"with: {REPAIR}")


#: (extra, distribution, import name, what srprep uses it for)
OPTIONAL = (
    ("plots", "matplotlib", "matplotlib", "figures: training curves, pairs-check histogram, contact-sheet text"),
    ("tensorboard", "tensorboard", "tensorboard", "TensorBoard events of training runs (RUN/tb)"),
    ("models", "spandrel", "spandrel", "checkpoints of architectures srprep has no code for (SwinIR, HAT...)"),
    ("safetensors", "safetensors", "safetensors", ".safetensors checkpoints"),
    ("cluster", "dask", "distributed", "--scheduler: data steps on a Dask cluster"),
)


def optional_packages() -> list[tuple[str, str, Optional[str], str]]:
    """(extra, distribution, installed version or None, purpose) for each optional extra, plus Graphviz ``dot``
    (not a Python package: ``pipeline --graph-png/--graph-svg`` render with it; extra "-")."""
    rows = [(extra, dist, _version(dist), purpose) for extra, dist, _, purpose in OPTIONAL]
    dot = shutil.which("dot")
    rows.append(("-", "graphviz (dot)", dot, "rendering pipeline graphs (srprep run --graph-png/--graph-svg)"))
    return rows


def torch_report() -> list[str]:
    """torch version, threads, and each CUDA device (or why there is none)."""
    try:
        import torch
    except ImportError:
        return ["torch: not installed (bash scripts/setup.sh installs a pinned CPU build)"]
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            lines.append(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}")
        lines.append(f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    else:
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU build"
        lines.append(f"CUDA: no device visible ({built}); --device cuda is not available")
    return lines


def kernel_report() -> str:
    """Whether the compiled MATLAB-bicubic kernel was built, and where it lives."""
    from .ops import imresize

    if imresize.native_available():
        return "compiled bicubic kernel: built (MATLAB-exact downscaling at full speed)"
    return ("compiled bicubic kernel: NOT built (no C compiler at install time?): downsampling uses the "
            "OpenCV/numpy path, same bytes, 4-13x slower; reinstall with a compiler: bash scripts/setup.sh")


@dataclass
class DataReport:
    """What a data folder is to srprep, how big its pixels are, and what would come next."""

    path: Path
    kind: str  # "images", "dataset", "packed", "missing", "unreadable"
    fields: list[tuple[str, int, Optional[float]]] = field(default_factory=list)  # (name, items, scale)
    pixel_bytes: int = 0  # uint8 RGB pixels of every item (what a raw pack without --crop stores)
    free_bytes: int = 0  # free space on the folder's file system
    next_steps: list[str] = field(default_factory=list)
    problem: str = ""

    def lines(self) -> list[str]:
        if self.problem:
            return [f"{self.path}: {self.problem}"]
        desc = ", ".join(f"{n} {c} items" + (f" (x{s:g})" if s and s > 1 else "") for n, c, s in self.fields)
        out = [f"{self.path}: {self.kind}: {desc}",
               f"  pixels {_gib(self.pixel_bytes)} (a raw pack stores this; --crop --size 480 --step 240 about "
               f"4x); free space there {_gib(self.free_bytes)}"]
        return out + [f"  next: {s}" for s in self.next_steps]


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def data_report(path: str | os.PathLike) -> DataReport:
    """Look at ``path`` the way srprep's steps would (:func:`srprep.stages.inspect.open_fields`); no pixels
    are decoded (shapes come from file headers or store metadata)."""
    from .errors import SrprepError
    from .stages.inspect import open_fields

    path = Path(path)
    if not path.exists():
        return DataReport(path, "missing", problem="does not exist")
    report = DataReport(path, "images", free_bytes=shutil.disk_usage(path if path.is_dir() else path.parent).free)
    try:
        fields = open_fields(path)
        for f in fields:
            keys = f.store.keys()
            report.fields.append((f.name, len(keys), f.scale))
            report.pixel_bytes += sum(_pixels(f.store.shape(k)) for k in keys)
    except (SrprepError, OSError) as exc:
        report.kind, report.problem = "unreadable", " ".join(str(exc).split())
        return report
    packed = any(p.suffix in (".lmdb", ".h5") for p in ([path] + list(path.iterdir()) if path.is_dir() else [path]))
    scales = [s for _, _, s in report.fields if s and s > 1]
    if packed:
        report.kind = "packed"
        report.next_steps.append(f"srprep train -c tiny_cpu data.root={path}")
    elif scales:
        report.kind = "dataset"
        report.next_steps.append(f"srprep pack {path} OUT --crop --size 480 --step 240   (sub-images into LMDBs)")
        if not any(n == "sr_pretrained" for n, _, _ in report.fields):
            report.next_steps.append(f"srprep centroids {path} --model TEACHER.pth   (ECO centroid pairs)")
    else:
        report.next_steps.append(f"srprep downsample {path} DATA --scale 2   (MATLAB-exact LR: DATA/HR, DATA/X2)")
    return report


def _pixels(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n if len(shape) == 3 else n * 3


def summary_lines(data: list[str | os.PathLike] = ()) -> list[str]:
    """Everything ``srprep doctor`` prints, line by line."""
    from . import __version__

    pil = pil_build()
    lines = [f"srprep {__version__}, Python {platform.python_version()} ({sys.executable})"]
    state = "pillow-simd (SIMD resize, ok)" if pil.simd else f"{pil.build} -- NOT pillow-simd"
    lines.append(f"PIL {pil.version}: {state}; libjpeg-turbo {pil.libjpeg_turbo or 'absent'}, zlib {pil.zlib}")
    if pil.stale_metadata:
        lines.append(f"  ({pil.stale_metadata} is also recorded as installed, but its files were replaced; pip "
                     f"check may name it)")
    if not pil.simd:
        lines.append(f"  restore it: {REPAIR}")
    lines.append(kernel_report())
    lines += torch_report()
    try:
        import cv2

        lines.append(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads")
    except ImportError:
        lines.append("OpenCV: not installed")
    lines.append("optional extras (pip install 'srprep[EXTRA]'; bash scripts/setup.sh installs plots, tensorboard):")
    for extra, dist, version, purpose in optional_packages():
        have = version if version else "not installed"
        lines.append(f"  {extra:<11} {dist:<15} {have:<14} {purpose}")
    for p in data:
        lines += data_report(p).lines()
    return lines
