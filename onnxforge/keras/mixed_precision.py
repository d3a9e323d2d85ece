"""``keras.mixed_precision``: dtype policies and the loss-scale optimizer (re-exports only)."""
from __future__ import annotations

from ..dtype_policies import (DTypePolicy, Policy, dtype_policy, global_policy, set_dtype_policy,
                              set_global_policy)
from ..optimizers import LossScaleOptimizer

__all__ = ["DTypePolicy", "Policy", "dtype_policy", "global_policy", "set_dtype_policy", "set_global_policy",
           "LossScaleOptimizer"]
