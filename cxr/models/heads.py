"""Label heads: tube/line placement from the current frontal image, change against the prior."""

from __future__ import annotations

import torch
from torch import nn

from cxr.models.config import HeadPool, HeadsConfig
from cxr.types import CHANGE_FINDINGS, TUBE_LINE_LABELS, Change


class TokenPool(nn.Module):
    """Pools one image's tokens [B, T, C] into [B, C]: mean, or attention with a learned query."""

    def __init__(self, kind: HeadPool, dim: int) -> None:
        super().__init__()
        self.kind = kind
        self.norm = nn.LayerNorm(dim)
        if kind == HeadPool.attention:
            self.query = nn.Parameter(torch.randn(dim) * 0.02)
            self.key = nn.Linear(dim, dim, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = self.norm(tokens)
        if self.kind == HeadPool.mean:
            return tokens.mean(dim=1)
        scores = self.key(tokens) @ self.query / tokens.shape[-1] ** 0.5
        weights = scores.softmax(dim=1).unsqueeze(-1)
        return (weights * tokens).sum(dim=1)


def _mlp(input_dim: int, config: HeadsConfig, output_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(input_dim, config.hidden),
        nn.GELU(),
        nn.Dropout(config.dropout),
        nn.Linear(config.hidden, output_dim),
    )


class TubeLineHead(nn.Module):
    """11 logits in TUBE_LINE_LABELS order from the current frontal image's tokens."""

    def __init__(self, config: HeadsConfig, feature_dim: int) -> None:
        super().__init__()
        self.pool = TokenPool(config.pool, feature_dim)
        self.classify = _mlp(feature_dim, config, len(TUBE_LINE_LABELS))

    def forward(self, frontal_tokens: torch.Tensor) -> torch.Tensor:
        return self.classify(self.pool(frontal_tokens))


class ChangeHead(nn.Module):
    """Logits [B, 5, 3] (CHANGE_FINDINGS x Change) from current, prior and their difference."""

    def __init__(self, config: HeadsConfig, feature_dim: int) -> None:
        super().__init__()
        self.pool = TokenPool(config.pool, feature_dim)
        self.classify = _mlp(3 * feature_dim, config, len(CHANGE_FINDINGS) * len(Change))

    def forward(self, current_tokens: torch.Tensor, prior_tokens: torch.Tensor) -> torch.Tensor:
        current = self.pool(current_tokens)
        prior = self.pool(prior_tokens)
        logits = self.classify(torch.cat([current, prior, current - prior], dim=-1))
        return logits.view(-1, len(CHANGE_FINDINGS), len(Change))
