"""Turns dataset items into the model's batch: stacked images, tokenized prompt and report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase


class ReportCollator:
    """Collates `StudyDataset` items.

    The prompt is `bos + prompt tokens`, left-padded so that generation continues every row
    from the same position; the report is `report tokens + eos`, right-padded, and all padding
    when the study has no report (its mask is then zero and it adds no language-model loss).
    Labels are stacked as they come: `tube_line` [B, 11] and `observations` [B, 14] float32
    (NaN unknown), `change` [B, 5] int64 (-1 unknown).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        max_prompt_tokens: int = 256,
        max_report_tokens: int = 192,
    ) -> None:
        self.tokenizer = tokenizer
        self.max_prompt_tokens = max_prompt_tokens
        self.max_report_tokens = max_report_tokens

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def prompt_ids(self, prompts: Sequence[str]) -> list[list[int]]:
        bos = self.tokenizer.bos_token_id
        return [[bos, *ids][: self.max_prompt_tokens] for ids in self._encode(prompts)]

    def report_ids(self, reports: Sequence[str | None]) -> list[list[int]]:
        eos = self.tokenizer.eos_token_id
        encoded = self._encode([report or "" for report in reports])
        return [
            [*ids[: self.max_report_tokens - 1], eos] if report else []
            for ids, report in zip(encoded, reports, strict=True)
        ]

    def _pad(self, rows: list[list[int]], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(1, max(len(row) for row in rows))
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if not row:
                continue
            span = slice(width - len(row), width) if left else slice(0, len(row))
            ids[i, span] = torch.tensor(row, dtype=torch.long)
            mask[i, span] = 1
        return ids, mask

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        prompt_ids, prompt_mask = self._pad(
            self.prompt_ids([i["prompt"] for i in items]), left=True
        )
        report_ids, report_mask = self._pad(
            self.report_ids([i["report"] for i in items]), left=False
        )
        return {
            "study_id": [item["study_id"] for item in items],
            "images": torch.stack([item["images"] for item in items]),
            "image_present": torch.stack([item["image_present"] for item in items]),
            "image_errors": [item["image_errors"] for item in items],
            "prompt_ids": prompt_ids,
            "prompt_mask": prompt_mask,
            "report_ids": report_ids,
            "report_mask": report_mask,
            "tube_line": torch.stack([item["tube_line"] for item in items]),
            "change": torch.stack([item["change"] for item in items]),
            "observations": torch.stack([item["observations"] for item in items]),
        }
