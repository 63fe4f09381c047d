#!/usr/bin/env python
"""The `inference.py` of a cxr submission to ReXrank: runs `cxr rexrank`.

ReXrank runs it as either of (its example_files/submission_tutorial.md and
submission_tutorial_round2.md):

    python inference.py IN.json OUT.json IMG_ROOT
    python inference.py --input_json_file IN.json --save_json_file OUT.json --img_root_dir IMG_ROOT

Settings, each an option or else an environment variable:
    --model DIR      $CXR_REXRANK_MODEL, else the folder `model` beside this script: the model
                     folder `cxr export` wrote.
    --track T        $CXR_REXRANK_TRACK: findings or findings_impression (the default).
    --device D       $CXR_REXRANK_DEVICE, else cuda when torch sees a GPU, else cpu.
    --batch-size N   $CXR_REXRANK_BATCH_SIZE, else 8.
Reports, errors.jsonl and the resumable state go to `<OUT stem>.cxr/` beside OUT.json.

cxr is imported from the installed package, else from the repository this script sits in
(scripts/ of it, or its top folder when copied there as inference.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _make_cxr_importable() -> None:
    try:
        import cxr  # noqa: F401
    except ImportError:
        for folder in (HERE, HERE.parent):
            if (folder / "cxr" / "__init__.py").is_file():
                sys.path.insert(0, str(folder))
                return


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input_json", nargs="?", help="ReXrank input JSON")
    parser.add_argument("output_json", nargs="?", help="output JSON to write")
    parser.add_argument("img_root", nargs="?", help="folder the image paths are relative to")
    parser.add_argument("--input_json_file", help="ReXrank input JSON (round 2 spelling)")
    parser.add_argument("--save_json_file", help="output JSON (round 2 spelling)")
    parser.add_argument("--img_root_dir", help="image folder (round 2 spelling)")
    parser.add_argument("--model", default=os.environ.get("CXR_REXRANK_MODEL", str(HERE / "model")))
    parser.add_argument(
        "--track", default=os.environ.get("CXR_REXRANK_TRACK", "findings_impression")
    )
    parser.add_argument("--device", default=os.environ.get("CXR_REXRANK_DEVICE"))
    parser.add_argument(
        "--batch-size", default=os.environ.get("CXR_REXRANK_BATCH_SIZE", "8"), dest="batch_size"
    )
    args = parser.parse_args(argv)
    args.input_json = args.input_json_file or args.input_json
    args.output_json = args.save_json_file or args.output_json
    args.img_root = args.img_root_dir or args.img_root
    if not (args.input_json and args.output_json and args.img_root):
        parser.error(
            "give IN.json OUT.json IMG_ROOT (or --input_json_file, --save_json_file, --img_root_dir)"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    _make_cxr_importable()
    from cxr.cli import main as cxr_main

    return cxr_main(
        [
            "rexrank", args.input_json, args.output_json, args.img_root,
            "--model", args.model, "--track", args.track,
            "--device", args.device or _default_device(), "--batch-size", str(args.batch_size),
        ]
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
