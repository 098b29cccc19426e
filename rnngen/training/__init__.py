"""Training: the loop (``trainer``) and checkpoints that load safely (``checkpoint``)."""

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .trainer import TrainSettings, evaluate, train

__all__ = ["TrainSettings", "train", "evaluate", "CheckpointError", "load_checkpoint", "save_checkpoint"]
