"""dicomhub: a self-hosted DICOMweb server (PS3.18) with Azure-style CORS settings."""

__version__ = "0.1.0"
