"""Ingest: one faithful reader for DICOM/PNG/JPEG, the study index, and the preprocessed cache."""

from __future__ import annotations

from cxr.errors import UnreadableImage
from cxr.io.cache import ImageCache, preprocess
from cxr.io.dicom import DicomHeader, XrayImage, read_dataset, read_header, read_image
from cxr.io.studies import (
    IndexedImage,
    IndexedStudy,
    SkippedFile,
    StudyIndex,
    index_folder,
    read_study_index,
)

__all__ = [
    "DicomHeader",
    "ImageCache",
    "IndexedImage",
    "IndexedStudy",
    "SkippedFile",
    "StudyIndex",
    "UnreadableImage",
    "XrayImage",
    "index_folder",
    "preprocess",
    "read_dataset",
    "read_header",
    "read_image",
    "read_study_index",
]
