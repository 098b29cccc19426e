"""Checkpoints live in rnngen.checkpoint (models load them too); re-exported here, where they were."""

from ..checkpoint import FORMAT, VERSION, CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["FORMAT", "VERSION", "CheckpointError", "load_checkpoint", "save_checkpoint"]
