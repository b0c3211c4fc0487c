"""Build the optional C accelerator for byte planes; everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and
scribestore uses the numpy fallback (same bytes, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "scribestore.store._planes",
            ["src/scribestore/store/_planes.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
