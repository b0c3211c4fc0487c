"""The ``safetensors`` handler: a dict of named arrays in the safetensors format.

The value is a ``dict`` of ``str`` to numpy arrays, or to torch tensors where
torch is installed; the bytes are a standard ``.safetensors`` file, readable
by any safetensors reader (and with ``open_artifact``, one tensor at a time).
Needs the ``safetensors`` package: ``pip install "scribestore[safetensors]"``.
"""

from __future__ import annotations

import importlib
from typing import IO, Any, ClassVar

from scribestore.artifacts.base import ArtifactHandler

__all__ = ["SafetensorsHandler"]

_FRAMEWORKS = ("numpy", "torch")
#: numpy dtype kinds safetensors holds: bool, signed, unsigned, float.
_NUMPY_KINDS = frozenset("biuf")


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(
            f"the 'safetensors' handler needs {name.split('.')[0]!r}: "
            'pip install "scribestore[safetensors]"'
        ) from None


def _framework(value: Any) -> str:
    """``"numpy"`` or ``"torch"``: what every tensor of ``value`` is.

    Raises:
        TypeError: not a dict of str to arrays of one framework.
        ValueError: an object array, which safetensors cannot hold.
    """
    if not isinstance(value, dict) or not value:
        raise TypeError("the 'safetensors' handler takes a non-empty dict of name -> array")
    kinds = set()
    for key, tensor in value.items():
        if not isinstance(key, str):
            raise TypeError(f"tensor names must be str, not {key!r}")
        module = type(tensor).__module__.split(".")[0]
        if module not in _FRAMEWORKS or not hasattr(tensor, "shape"):
            raise TypeError(f"tensor {key!r} is a {type(tensor).__name__}, not an array")
        if module == "numpy" and (
            type(tensor).__name__ != "ndarray" or tensor.dtype.kind not in _NUMPY_KINDS
        ):
            raise ValueError(
                f"tensor {key!r} is a {type(tensor).__name__} of {tensor.dtype}; safetensors "
                "holds arrays of booleans, integers and floats"
            )
        kinds.add(module)
    if len(kinds) > 1:
        raise TypeError("mix of numpy arrays and torch tensors; use one kind per artifact")
    return kinds.pop()


class SafetensorsHandler(ArtifactHandler):
    """A dict of named arrays (numpy, or torch) as a ``.safetensors`` file.

    Write params: ``metadata`` (a dict of str to str, stored in the file's
    header). Read params: ``framework`` (``"numpy"``, default, or
    ``"torch"``) for the type of the tensors loaded.
    """

    alias: ClassVar[str] = "safetensors"
    suffix: ClassVar[str] = "safetensors"

    def check_value(self, value: Any, **params: Any) -> None:
        """Refuse what is not a dict of arrays of one framework, or bad params."""
        _module(f"safetensors.{_framework(value)}")
        unknown = set(params) - {"metadata"}
        if unknown:
            raise TypeError(f"the 'safetensors' handler's write takes metadata=, not {unknown}")

    def environment_for(self, value: Any, **params: Any) -> dict[str, str]:
        return {"tensor_framework": _framework(value)}

    def check_environment(self, recorded: Any) -> str | None:
        return None  # any framework reads the file; read(framework=) chooses

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        """Write ``value`` as a safetensors file into ``buf``."""
        self.check_value(value, **params)
        framework = _framework(value)
        save = _module(f"safetensors.{framework}").save
        # safetensors writes an array's memory as laid out: a transposed or
        # strided view must be made contiguous, or its values come back wrong.
        if framework == "numpy":
            numpy = _module("numpy")
            tensors = {k: numpy.ascontiguousarray(v) for k, v in value.items()}
        else:
            tensors = {k: v.contiguous() for k, v in value.items()}
        buf.write(save(tensors, metadata=params.get("metadata")))

    def read(self, buf: IO[bytes], **params: Any) -> dict[str, Any]:
        """The dict of tensors, as numpy arrays or (``framework="torch"``) tensors.

        Raises:
            ValueError: an unknown ``framework``, or bytes that are not safetensors.
        """
        framework = params.pop("framework", "numpy")
        if framework not in _FRAMEWORKS or params:
            raise ValueError(
                f"read takes framework='numpy' or 'torch', got {framework!r} {sorted(params)}"
            )
        loaded: dict[str, Any] = _module(f"safetensors.{framework}").load(buf.read())
        return loaded
