"""Training: configs, the jitted step, sharding, checkpoints and the loop (``fit``)."""
from pluralrm.train.config import TrainConfig, load_config
from pluralrm.train.trainer import TrainingStopped, TrainResult, fit

__all__ = ["TrainConfig", "TrainResult", "TrainingStopped", "fit", "load_config"]
