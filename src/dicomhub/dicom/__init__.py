"""DICOM-specific pieces: levels of the information model, DICOM JSON, pixel data."""
