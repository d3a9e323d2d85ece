"""``TerminateOnNaN``: stop training when the loss becomes NaN or infinite."""
from __future__ import annotations

__all__ = ["TerminateOnNaN"]

import numpy as np

from .callback import Callback


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite.

    Args:
        raise_error: raise a ``RuntimeError`` at once instead of stopping after the batch (the other callbacks'
            ``on_train_end`` then does not run: a backup is not overwritten by a failed run).

    Example:
        >>> model = type("M", (), {"stop_training": False})()
        >>> cb = TerminateOnNaN(); cb.set_model(model)
        >>> cb.on_batch_end(3, {"loss": float("nan")})
        Batch 3: Invalid loss, terminating training
        >>> model.stop_training
        True
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.all(np.isfinite(loss)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                                   f"Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
