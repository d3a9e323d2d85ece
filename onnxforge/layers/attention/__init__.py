"""Attention layers: ``MultiHeadAttention``, ``Attention``, ``AdditiveAttention``."""
from __future__ import annotations

from .dot_attention import AdditiveAttention, Attention
from .multi_head_attention import MultiHeadAttention

__all__ = ["MultiHeadAttention", "Attention", "AdditiveAttention"]
