"""The DICOMweb transactions: STOW-RS, WADO-RS, QIDO-RS and DELETE."""
