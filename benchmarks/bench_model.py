"""Training throughput of the report model: causal_lm vs the cross-attention baseline.

Both models share the default tiny encoder, connector and decoder size (the cross-attention
decoder has the same layers plus a cross-attention block in each). A step is forward +
backward + AdamW step on a batch of studies with all three images present, a short prompt
and a report of realistic length. Prints images/s for each and their ratio.

    .venv/bin/python benchmarks/bench_model.py            # default sizes, ~1-2 minutes
    .venv/bin/python benchmarks/bench_model.py --quick    # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from cxr.data.tokenizer import train_report_tokenizer
from cxr.models import (
    ConnectorConfig,
    ConnectorKind,
    DecoderConfig,
    DecoderKind,
    EncoderConfig,
    HeadsConfig,
    ReportModel,
)
from cxr.training.losses import change_loss, tube_line_loss

SENTENCES = [
    "Endotracheal tube tip 4 cm above the carina.",
    "Nasogastric tube courses below the diaphragm, tip in the stomach.",
    "Right internal jugular central venous catheter tip in the mid SVC.",
    "No pneumothorax. Small left pleural effusion.",
    "Heart size is normal. Lungs are clear.",
    "Worsening right lower lobe consolidation.",
    "Improving pulmonary edema. Stable cardiomegaly.",
]


def make_batch(
    tokenizer: object, batch_size: int, image_size: int, prompt_tokens: int, report_tokens: int
) -> dict[str, torch.Tensor]:
    vocab = len(tokenizer)  # type: ignore[arg-type]
    return {
        "images": torch.rand(batch_size, 3, 1, image_size, image_size),
        "image_present": torch.ones(batch_size, 3, dtype=torch.bool),
        "prompt_ids": torch.randint(4, vocab, (batch_size, prompt_tokens)),
        "prompt_mask": torch.ones(batch_size, prompt_tokens, dtype=torch.long),
        "report_ids": torch.randint(4, vocab, (batch_size, report_tokens)),
        "report_mask": torch.ones(batch_size, report_tokens, dtype=torch.long),
        "tube_line": torch.randint(0, 2, (batch_size, 11)).float(),
        "change": torch.randint(0, 3, (batch_size, 5)),
    }


class Trainer:
    """One model with its optimizer; `step()` times forward + backward + AdamW step."""

    def __init__(self, model: ReportModel, batch: dict[str, torch.Tensor]) -> None:
        self.model = model.train()
        self.batch = batch
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=1e-4
        )
        self.seconds: list[float] = []

    def step(self) -> None:
        start = time.perf_counter()
        output = self.model(self.batch)
        loss = (
            output.lm_loss
            + tube_line_loss(output.tube_line_logits, self.batch["tube_line"])
            + change_loss(output.change_logits, self.batch["change"], output.change_available)
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.seconds.append(time.perf_counter() - start)

    def images_per_second(self, warmup: int) -> float:
        """From the median step time, robust to other processes sharing the CPU."""
        return int(self.batch["image_present"].sum()) / statistics.median(self.seconds[warmup:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run of a few seconds")
    parser.add_argument("--encoder", default=EncoderConfig().name, help="timm encoder name")
    parser.add_argument(
        "--connector",
        default=ConnectorConfig().kind.value,
        choices=[k.value for k in ConnectorKind],
    )
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    if args.quick:
        args.image_size, args.batch_size, args.steps = 64, 2, 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = train_report_tokenizer(SENTENCES * 20, vocab_size=1024)
    batch = make_batch(
        tokenizer, args.batch_size, args.image_size, prompt_tokens=24, report_tokens=80
    )
    encoder = EncoderConfig(name=args.encoder, image_size=args.image_size)
    connector = ConnectorConfig(kind=ConnectorKind(args.connector))
    trainers = {
        kind: Trainer(
            ReportModel(encoder, connector, DecoderConfig(kind=kind), HeadsConfig(), tokenizer),
            batch,
        )
        for kind in (DecoderKind.cross_attention, DecoderKind.causal_lm)
    }
    # Steps alternate between the two models so that load from other processes hits both alike.
    # The first steps are several times slower (allocator and kernel warm-up): not counted.
    warmup = 2
    for _ in range(warmup + args.steps):
        for trainer in trainers.values():
            trainer.step()
    results = {kind: trainer.images_per_second(warmup) for kind, trainer in trainers.items()}
    for kind, trainer in trainers.items():
        parameters = sum(p.numel() for p in trainer.model.parameters()) / 1e6
        print(f"{kind.value:16s} {parameters:6.1f}M parameters  {results[kind]:7.1f} images/s")
    ratio = results[DecoderKind.causal_lm] / results[DecoderKind.cross_attention]
    print(
        f"causal_lm / cross_attention throughput: {ratio:.2f}x "
        f"({args.encoder}, {args.connector}, {args.image_size} px, batch {args.batch_size} studies x 3 images, "
        f"{args.threads} threads)"
    )


if __name__ == "__main__":
    main()
