"""STOW-RS pieces (PS3.18 §10.5): examining an uploaded instance, and the
Store Instances Response it is answered with.

The HTTP side, receiving the parts into files and committing them, lives in
``dicomhub.services.stow``.
"""
