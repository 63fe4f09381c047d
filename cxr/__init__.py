"""cxr: chest X-ray report generation from DICOM."""
