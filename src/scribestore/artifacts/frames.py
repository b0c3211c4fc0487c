"""The ``dataframe`` handler: a pandas DataFrame as a Parquet file.

Needs pandas and pyarrow: ``pip install "scribestore[pandas]"``. The bytes are
a standard Parquet file (pyarrow engine), so other tools read the exported
version too; the index and column types survive a round trip.
"""

from __future__ import annotations

import importlib
from typing import IO, Any, ClassVar

from scribestore.artifacts.base import ArtifactHandler

__all__ = ["DataFrameHandler"]


def _pandas() -> Any:
    try:
        importlib.import_module("pyarrow")  # the Parquet engine
        return importlib.import_module("pandas")
    except ImportError:
        raise ImportError(
            "the 'dataframe' handler needs pandas and pyarrow: pip install \"scribestore[pandas]\""
        ) from None


class DataFrameHandler(ArtifactHandler):
    """A ``pandas.DataFrame``, stored as Parquet.

    Write params go to ``DataFrame.to_parquet`` (``compression=``, ...);
    read params to ``pandas.read_parquet`` (``columns=``, ...).
    """

    alias: ClassVar[str] = "dataframe"
    suffix: ClassVar[str] = "parquet"

    def environment(self) -> dict[str, str]:
        return {}

    def check_value(self, value: Any, **params: Any) -> None:
        """Refuse what is not a DataFrame (or when pandas/pyarrow are missing)."""
        pandas = _pandas()
        if not isinstance(value, pandas.DataFrame):
            raise TypeError(
                f"the 'dataframe' handler takes a pandas.DataFrame, not {type(value).__name__}"
            )
        names = list(value.columns)
        if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ValueError("Parquet needs unique string column names; rename the columns")
        if "engine" in params or "path" in params:
            raise TypeError("the 'dataframe' handler sets path= and engine='pyarrow' itself")

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        """Write ``value`` as Parquet into ``buf``."""
        self.check_value(value, **params)
        value.to_parquet(buf, engine="pyarrow", **params)

    def read(self, buf: IO[bytes], **params: Any) -> Any:
        """The DataFrame read from the Parquet bytes in ``buf``."""
        return _pandas().read_parquet(buf, engine="pyarrow", **params)
