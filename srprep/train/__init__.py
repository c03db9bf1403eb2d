"""srprep's lean trainer: YAML config -> paired patches from stores -> a registry network -> checkpoints.

The pieces, one job each: :mod:`.config` (dataclasses, overrides), :mod:`.data` (stores, sampler, prefetch),
:mod:`.augment` (paired batch augmentation), :mod:`.eco` (ECO's centroid schedule), :mod:`.losses`,
:mod:`.optim` (Adam/AdamW/Lamb, schedules, EMA), :mod:`.validate`, :mod:`.checkpoint`, :mod:`.logs`,
:mod:`.distributed` (torchrun) and :mod:`.loop` (the loop itself). ``srprep train --help`` shows how to run it.
"""
from srprep.train.config import Config as Config
from srprep.train.config import ConfigError as ConfigError
from srprep.train.config import load_config as load_config
from srprep.train.config import save_config as save_config
from srprep.train.eco import eco_alpha as eco_alpha
from srprep.train.eco import eco_schedule_plot as eco_schedule_plot
from srprep.train.loop import TrainResult as TrainResult
from srprep.train.loop import train as train

__all__ = ["Config", "ConfigError", "TrainResult", "eco_alpha", "eco_schedule_plot", "load_config", "save_config",
           "train"]
