"""Connectors map image tokens to decoder-width visual tokens."""

from __future__ import annotations

import pytest
import torch

from cxr.models import ConnectorConfig, ConnectorKind
from cxr.models.connectors import Connector


@pytest.mark.parametrize(
    ("kind", "visual_tokens"), [("linear", 12), ("mlp", 12), ("attention_pool", 5)]
)
def test_connector_output_shape(kind: str, visual_tokens: int) -> None:
    connector = Connector(
        ConnectorConfig(kind=ConnectorKind(kind), num_queries=5, num_heads=2), 16, 32
    )

    output = connector(torch.randn(3, 12, 16))

    assert output.shape == (3, visual_tokens, 32)
    assert connector.num_visual_tokens(12) == visual_tokens


def test_attention_pool_sees_every_token() -> None:
    connector = Connector(
        ConnectorConfig(kind=ConnectorKind.attention_pool, num_queries=4, num_heads=2), 8, 8
    )
    tokens = torch.randn(1, 6, 8)
    changed = tokens.clone()
    changed[0, 5] = torch.randn(8)

    assert not torch.allclose(connector(tokens), connector(changed))


def test_mlp_is_token_wise() -> None:
    connector = Connector(ConnectorConfig(kind=ConnectorKind.mlp), 8, 8)
    tokens = torch.randn(1, 6, 8)
    changed = tokens.clone()
    changed[0, 5] = torch.randn(8)

    assert torch.equal(connector(tokens)[0, :5], connector(changed)[0, :5])
