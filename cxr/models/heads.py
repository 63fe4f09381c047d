"""Label heads: tube/line placement and findings from the current study, change against the prior.

* `TubeLineHead`: 11 RANZCR CLiP logits from the current frontal image's tokens.
* `FindingsHead`: 14 CheXpert observation logits; one learned query per observation attends
  to the tokens of the frontal and lateral images, so each observation looks where it is.
* `ChangeHead` (`ChangeHeadKind.compare`): compares the two studies token by token. Each
  current frontal token attends to the prior frontal's tokens (patients are not positioned
  identically twice, so a token's counterpart is found by attention, not by position); the
  current token, its prior counterpart and their difference are mixed into one "change token"
  per position, and one learned query per MS-CXR-T finding attends to the change tokens. So
  the head sees where something changed, not only that the images' averages moved.
  `PooledChangeHead` (`ChangeHeadKind.pooled`) is the earlier design kept for ablation: each
  image pooled to one vector, then current, prior and their difference classified.
"""

from __future__ import annotations

import torch
from torch import nn

from cxr.models.config import ChangeHeadKind, HeadPool, HeadsConfig
from cxr.types import CHANGE_FINDINGS, OBSERVATIONS, TUBE_LINE_LABELS, Change


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


class QueryPool(nn.Module):
    """`count` learned queries attend to tokens [B, T, C] and give [B, count, C]."""

    def __init__(self, count: int, dim: int, num_heads: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.queries = nn.Parameter(torch.randn(count, dim) * 0.02)
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        keys = self.norm(tokens)
        queries = self.queries.unsqueeze(0).expand(len(tokens), -1, -1).to(keys.dtype)
        pooled, _ = self.attention(queries, keys, keys, need_weights=False)
        return pooled


class PerQueryOutput(nn.Module):
    """Each query's own output layer: [B, Q, C] -> [B, Q, outputs] through a shared hidden layer."""

    def __init__(self, count: int, dim: int, config: HeadsConfig, outputs: int) -> None:
        super().__init__()
        self.hidden = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, config.hidden), nn.GELU(), nn.Dropout(config.dropout)
        )
        self.weight = nn.Parameter(torch.randn(count, config.hidden, outputs) * 0.02)
        self.bias = nn.Parameter(torch.zeros(count, outputs))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden(pooled)
        return torch.einsum("bqh,qho->bqo", hidden, self.weight.to(hidden.dtype)) + self.bias


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


class FindingsHead(nn.Module):
    """14 logits in OBSERVATIONS order from the frontal and lateral images' tokens [B, T, C]."""

    def __init__(self, config: HeadsConfig, feature_dim: int) -> None:
        super().__init__()
        self.pool = QueryPool(len(OBSERVATIONS), feature_dim, config.num_heads)
        self.classify = PerQueryOutput(len(OBSERVATIONS), feature_dim, config, 1)

    def forward(self, study_tokens: torch.Tensor) -> torch.Tensor:
        return self.classify(self.pool(study_tokens)).squeeze(-1)


class ChangeHead(nn.Module):
    """Logits [B, 5, 3] (CHANGE_FINDINGS x Change) comparing current and prior tokens [B, T, C]
    (see the module docstring)."""

    def __init__(self, config: HeadsConfig, feature_dim: int) -> None:
        super().__init__()
        self.current_norm = nn.LayerNorm(feature_dim)
        self.prior_norm = nn.LayerNorm(feature_dim)
        self.align = nn.MultiheadAttention(feature_dim, config.num_heads, batch_first=True)
        self.mix = nn.Sequential(nn.Linear(3 * feature_dim, feature_dim), nn.GELU())
        self.pool = QueryPool(len(CHANGE_FINDINGS), feature_dim, config.num_heads)
        self.classify = PerQueryOutput(len(CHANGE_FINDINGS), feature_dim, config, len(Change))

    def forward(self, current_tokens: torch.Tensor, prior_tokens: torch.Tensor) -> torch.Tensor:
        current = self.current_norm(current_tokens)
        prior = self.prior_norm(prior_tokens)
        counterpart, _ = self.align(current, prior, prior, need_weights=False)
        change_tokens = self.mix(torch.cat([current, counterpart, current - counterpart], dim=-1))
        return self.classify(self.pool(change_tokens))


class PooledChangeHead(nn.Module):
    """Logits [B, 5, 3] from the pooled current, the pooled prior and their difference."""

    def __init__(self, config: HeadsConfig, feature_dim: int) -> None:
        super().__init__()
        self.pool = TokenPool(config.pool, feature_dim)
        self.classify = _mlp(3 * feature_dim, config, len(CHANGE_FINDINGS) * len(Change))

    def forward(self, current_tokens: torch.Tensor, prior_tokens: torch.Tensor) -> torch.Tensor:
        current = self.pool(current_tokens)
        prior = self.pool(prior_tokens)
        logits = self.classify(torch.cat([current, prior, current - prior], dim=-1))
        return logits.view(-1, len(CHANGE_FINDINGS), len(Change))


def build_change_head(config: HeadsConfig, feature_dim: int) -> nn.Module:
    """The change head `config.change` names."""
    if config.change == ChangeHeadKind.pooled:
        return PooledChangeHead(config, feature_dim)
    return ChangeHead(config, feature_dim)
