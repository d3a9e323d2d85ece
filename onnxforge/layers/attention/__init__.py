"""Attention layers: ``MultiHeadAttention``, ``GroupQueryAttention``, ``Attention``, ``AdditiveAttention``."""
from __future__ import annotations

from .dot_attention import AdditiveAttention, Attention
from .grouped_query_attention import GroupedQueryAttention, GroupQueryAttention
from .multi_head_attention import MultiHeadAttention

__all__ = ["MultiHeadAttention", "GroupQueryAttention", "GroupedQueryAttention", "Attention", "AdditiveAttention"]
