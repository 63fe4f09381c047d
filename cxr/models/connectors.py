"""Connectors: encoder tokens of all image slots -> visual tokens at the decoder's width."""

from __future__ import annotations

import torch
from torch import nn

from cxr.models.config import ConnectorConfig, ConnectorKind


class Connector(nn.Module):
    """Maps tokens [B, T, C] to visual tokens [B, V, D].

    linear and mlp keep one visual token per image token (V = T); attention_pool lets
    `num_queries` learned queries attend to all image tokens (V = num_queries).
    """

    def __init__(self, config: ConnectorConfig, input_dim: int, output_dim: int) -> None:
        super().__init__()
        self.config = config
        self.norm = nn.LayerNorm(input_dim)
        self.queries: nn.Parameter | None = None
        if config.kind == ConnectorKind.linear:
            self.project: nn.Module = nn.Linear(input_dim, output_dim)
        elif config.kind == ConnectorKind.mlp:
            self.project = nn.Sequential(
                nn.Linear(input_dim, output_dim), nn.GELU(), nn.Linear(output_dim, output_dim)
            )
        else:
            self.project = nn.Linear(input_dim, output_dim)
            self.queries = nn.Parameter(torch.randn(config.num_queries, output_dim) * 0.02)
            self.attention = nn.MultiheadAttention(output_dim, config.num_heads, batch_first=True)
            self.output_norm = nn.LayerNorm(output_dim)
        self.dropout = nn.Dropout(config.dropout)

    def num_visual_tokens(self, num_image_tokens: int) -> int:
        """How many visual tokens come out for `num_image_tokens` tokens in."""
        return self.config.num_queries if self.queries is not None else num_image_tokens

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        projected = self.project(self.norm(tokens))
        if self.queries is not None:
            queries = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)
            pooled, _ = self.attention(queries, projected, projected, need_weights=False)
            projected = self.output_norm(pooled + queries)
        return self.dropout(projected)
