"""Super-resolution networks, their registry and pretrained-checkpoint loading.

Importing this package registers every architecture (the modules below are imported explicitly):

========================  ================================================================
name                      network
========================  ================================================================
``edsr``                  EDSR (defaults = baseline 16x64); ``edsr_baseline``, ``edsr_paper``
``msrresnet``             BasicSR's modified SRResNet (alias ``srresnet``)
``rrdbnet``               ESRGAN generator (alias ``esrgan``)
``imdn``                  IMDN
``rcan``                  RCAN
``carn``                  CARN; ``carn_m`` CARN-M (official multi-scale files: one network, ``--scale`` picks)
``pan``                   PAN
``fsrcnn``, ``srcnn``     Y-channel networks (RGB in and out; CbCr enlarged by Pillow's bicubic, as their authors)
========================  ================================================================

All networks take float NCHW RGB in [0, 1] and return [0, 1]-range output (not clamped).
"""
from srprep.models.registry import (
    ModelEntry,
    count_parameters,
    create_model,
    get_entry,
    list_models,
    register_model,
)

# Architecture modules: imported for their @register_model side effect.
from srprep.models.carn import CARN
from srprep.models.edsr import EDSR
from srprep.models.imdn import IMDN
from srprep.models.msrresnet import MSRResNet
from srprep.models.pan import PAN
from srprep.models.rcan import RCAN
from srprep.models.rrdbnet import RRDBNet
from srprep.models.ychannel import FSRCNN, SRCNN

from srprep.models.pretrained import PretrainedInfo, infer_architecture, load_pretrained, save_checkpoint

__all__ = [
    "CARN",
    "EDSR",
    "FSRCNN",
    "IMDN",
    "MSRResNet",
    "PAN",
    "ModelEntry",
    "PretrainedInfo",
    "RCAN",
    "RRDBNet",
    "SRCNN",
    "count_parameters",
    "create_model",
    "get_entry",
    "infer_architecture",
    "list_models",
    "load_pretrained",
    "register_model",
    "save_checkpoint",
]
