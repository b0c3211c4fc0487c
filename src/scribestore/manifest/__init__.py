"""Manifests: the schema of ``repository.json`` and ``project.json``, names, versions.

Pure data: encoding, decoding and validation, no storage access.
"""
