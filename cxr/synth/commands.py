"""`cxr synth`: the command-line face of `cxr.synth.synthesize`."""

from __future__ import annotations

from pathlib import Path

from cxr.synth.synthesize import synthesize


def synth(
    out_dir: Path,
    patients: int = 20,
    seed: int = 0,
    size: int = 512,
    lateral_fraction: float = 0.35,
    compressed_fraction: float = 0.3,
    workers: int = 2,
    overwrite: bool = False,
) -> int:
    """Writes phantom DICOM studies with ground-truth reports.jsonl and labels.csv (tube/line,
    change and the 14 CheXpert observation labels).

    Args:
        out_dir: Folder to write (created; must be empty unless --overwrite).
        patients: Number of phantom patients (each has 1-4 serial studies).
        seed: Seed; the same seed and options give the same bytes, and IDs differ between seeds.
        size: Image rows and columns in pixels.
        lateral_fraction: Probability that a study also has a lateral view.
        compressed_fraction: Probability that an image is stored losslessly compressed.
        workers: Processes rendering patients in parallel (does not change the output).
        overwrite: Write into a non-empty folder.
    """
    summary = synthesize(
        Path(out_dir),
        patients,
        seed,
        size=size,
        workers=workers,
        lateral_fraction=lateral_fraction,
        compressed_fraction=compressed_fraction,
        overwrite=overwrite,
    )
    print(
        f"{summary.studies} studies ({summary.images} images, {summary.compressed_images} "
        f"compressed) for {summary.patients} patients in {summary.seconds:.1f} s -> {summary.out_dir}"
    )
    return 0
