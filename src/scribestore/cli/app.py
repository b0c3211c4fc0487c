"""The ``scribestore`` command group, shared options, output and exit codes.

Every failure ends the same way: one line ``scribestore: error: ...`` on
stderr and an exit code from :data:`EXIT_CODES`, never a traceback (set
``SCRIBESTORE_DEBUG=1`` to get one when reporting a bug).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import sys
from typing import TYPE_CHECKING, Any, TypeVar

import click

from scribestore import __version__
from scribestore.exception import CorruptManifestError, IntegrityError, ReadOnlyError
from scribestore.progress import Progress, terminal_progress
from scribestore.storage import NotRegularFileError, join_url, open_storage, split_file_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "EXIT_CODES",
    "EXIT_ERROR",
    "EXIT_INTEGRITY",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_PERMISSION",
    "EXIT_USAGE",
    "CliError",
    "Settings",
    "cli",
    "emit",
    "exit_code_for",
    "human",
    "main",
    "manifest_kind",
    "output_options",
    "parse_option_value",
    "parse_ref",
    "settings",
    "store_options",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INTEGRITY = 4
EXIT_PERMISSION = 5

#: Exit code -> meaning; the table printed by ``scribestore --help`` and the docs.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_ERROR: "any other error (storage failure, environment mismatch, ...)",
    EXIT_USAGE: "bad usage or input: unknown option, malformed version or name, unknown handler",
    EXIT_NOT_FOUND: "not found: manifest, artifact, version, experiment or object",
    EXIT_INTEGRITY: "integrity: stored bytes do not match their hash, or a manifest is corrupt",
    EXIT_PERMISSION: "read-only or permission denied",
}

F = TypeVar("F", bound="Callable[..., Any]")


class CliError(Exception):
    """A failure the CLI itself detects, with the exit code it ends with."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exit_code_for(exc: BaseException) -> int:
    """The exit code for ``exc``: the first specific class along its ``__cause__`` chain.

    IntegrityError and CorruptManifestError give 4; ReadOnlyError and
    PermissionError 5; LookupError (not-found errors) and FileNotFoundError 3;
    ValueError (bad input) 2; anything else 1.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (CliError, click.ClickException)):
            return current.exit_code
        if isinstance(current, (IntegrityError, CorruptManifestError)):
            return EXIT_INTEGRITY
        if isinstance(current, (ReadOnlyError, PermissionError)):
            return EXIT_PERMISSION
        # Not-found errors are also ValueErrors for lazyscribe compatibility:
        # test LookupError first.
        if isinstance(current, (LookupError, FileNotFoundError)):
            return EXIT_NOT_FOUND
        if isinstance(current, ValueError):
            return EXIT_USAGE
        current = current.__cause__
    return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, click.ClickException):
        text = exc.format_message()
    elif type(exc) is KeyError and exc.args:
        text = str(exc.args[0])  # str(KeyError) would quote the message
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _report(message: str) -> None:
    click.echo(f"scribestore: error: {message}", err=True)


class _Group(click.Group):
    """A group whose every failure is one line on stderr and a documented exit code."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        names = ("args", "prog_name", "complete_var", "standalone_mode")
        kwargs.update(zip(names, args, strict=False))
        standalone = bool(kwargs.pop("standalone_mode", True))
        kwargs.setdefault("prog_name", "scribestore")
        code = EXIT_OK
        try:
            result = super().main(standalone_mode=False, **kwargs)
            code = result if isinstance(result, int) else EXIT_OK
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            code = exc.exit_code
        except click.exceptions.Abort:
            _report("interrupted")
            code = 130
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _report(_one_line(exc) + hint)
            code = exc.exit_code
        except Exception as exc:
            if os.environ.get("SCRIBESTORE_DEBUG"):
                raise
            _report(_one_line(exc))
            code = exit_code_for(exc)
        if standalone:
            sys.exit(code)
        return code


_EPILOG = "\b\nExit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


@click.group(
    name="scribestore",
    cls=_Group,
    epilog=_EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="scribestore")
def cli() -> None:
    """Versioned, content-addressed ML artifacts: inspect, export, verify and import.

    Most commands take the path or URL of a manifest (repository.json or
    project.json): a local path, memory://..., s3://bucket/prefix/... and any
    other fsspec URL. VERSION is a version number (0, 1, ...) or a timestamp
    (2026-01-02T03:04:05, optionally with microseconds and an offset);
    NAME@VERSION selects one version, NAME alone the newest unexpired one.
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    return int(cli.main(args=argv, prog_name="scribestore", standalone_mode=False))


# --- shared options ------------------------------------------------------------


@dataclasses.dataclass
class Settings:
    """Options shared by the subcommands, collected as they are parsed."""

    storage_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    objects: str | None = None
    json: bool = False
    quiet: bool = False

    def progress(self, unit: str = "B") -> Progress:
        """Bars on stderr only for a person at a terminal: never with --json or --quiet."""
        return terminal_progress(enabled=not (self.json or self.quiet), unit=unit)

    def say(self, message: str) -> None:
        """Print an informational line (to stderr under --json; not at all under --quiet)."""
        if not self.quiet:
            click.echo(message, err=self.json)


def settings() -> Settings:
    """The :class:`Settings` of the running command."""
    return click.get_current_context().ensure_object(Settings)


def parse_option_value(text: str) -> Any:
    # JSON where it parses (true, 3, {"region_name": "x"}), else the plain string.
    try:
        return json.loads(text)
    except ValueError:
        return text


def _set_storage_options(ctx: click.Context, _: click.Parameter, values: Iterable[str]) -> None:
    opts = ctx.ensure_object(Settings).storage_options
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        opts[key.strip()] = parse_option_value(value)


def _setter(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def set_value(ctx: click.Context, _: click.Parameter, value: Any) -> None:
        if value is not None:
            setattr(ctx.ensure_object(Settings), attr, value)

    return set_value


def store_options(func: F) -> F:
    """``--storage-option KEY=VALUE`` (repeatable) and ``--objects URL``."""
    func = click.option(
        "--objects",
        metavar="URL",
        expose_value=False,
        callback=_setter("objects"),
        help="Object store URL (default: objects/ beside the manifest).",
    )(func)
    return click.option(
        "-o",
        "--storage-option",
        "storage_options",
        metavar="KEY=VALUE",
        multiple=True,
        expose_value=False,
        callback=_set_storage_options,
        help="fsspec option for the store, e.g. endpoint_url=http://127.0.0.1:9000 "
        "(values are parsed as JSON when they can be). Repeatable.",
    )(func)


def output_options(func: F) -> F:
    """``--json`` and ``--quiet``."""
    func = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        default=None,
        expose_value=False,
        callback=_setter("quiet"),
        help="Print only results and errors; no progress bars.",
    )(func)
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        default=None,
        expose_value=False,
        callback=_setter("json"),
        help="Machine-readable JSON on stdout.",
    )(func)


# --- helpers ------------------------------------------------------------------

_INT = re.compile(r"[0-9]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_version(text: str | None) -> int | str | None:
    """A version argument: an int for digits, a timestamp string for text that
    starts with a date, else an alias (``production`` gives ``"@production"``)."""
    if text is None or text == "":
        return None
    if _INT.fullmatch(text):
        return int(text)
    if text.startswith("@") or _DATE.match(text):
        return text
    return "@" + text


def parse_ref(ref: str) -> tuple[str, int | str | None]:
    """``NAME[@VERSION]`` -> (name, version). The last ``@`` splits, so names may
    hold ``@``; VERSION is a number, a timestamp or an alias (aliases never look
    like the other two)."""
    name, sep, version = ref.rpartition("@")
    if not sep:
        return ref, None
    if not name:
        raise CliError(f"{ref!r} has no artifact name before '@'", EXIT_USAGE)
    return name, parse_version(version)


def manifest_kind(url: str, storage_options: dict[str, Any]) -> str:
    """``"repository"`` or ``"project"``: the ``format`` of the manifest at ``url``.

    Raises:
        CliError: (exit 3) there is no manifest at ``url``.
        CorruptManifestError: it is not a scribestore manifest.
    """
    directory, name = split_file_url(url)
    try:
        data = open_storage(directory, **dict(storage_options)).read_bytes(name)
    except (FileNotFoundError, NotRegularFileError) as exc:
        inside = _manifests_inside(url, storage_options)
        if inside:
            raise CliError(
                f"{url} is a directory, not a manifest; did you mean {inside[0]}?", EXIT_USAGE
            ) from None
        if isinstance(exc, NotRegularFileError):
            raise CliError(
                f"{url} is not a manifest file; pass the repository.json or project.json "
                "of a store",
                EXIT_USAGE,
            ) from None
        raise CliError(f"no manifest at {url}; check the path or URL", EXIT_NOT_FOUND) from None
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if fmt == "scribestore.repository":
        return "repository"
    if fmt == "scribestore.project":
        return "project"
    hint = (
        "; it looks like a lazyscribe manifest: import it with 'scribestore import-lazyscribe'"
        if isinstance(doc, list)
        else ""
    )
    raise CorruptManifestError(f"{url} is not a scribestore manifest{hint}")


def _manifests_inside(url: str, storage_options: dict[str, Any]) -> list[str]:
    """The manifests directly inside ``url``, if it names a directory that holds any."""
    try:
        storage = open_storage(url, **dict(storage_options))
        return [
            join_url(url, name)
            for name in ("repository.json", "project.json")
            if storage.exists(name)
        ]
    except (OSError, ValueError):
        return []


def human(n: int | None) -> str:
    """``n`` bytes in binary units (``1.5 MiB``); ``-`` for None."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _json_default(value: object) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def emit(data: Any, text: Callable[[], Iterable[str]], *, report: bool = False) -> None:
    """Print ``data`` as JSON under --json, else the lines ``text()`` yields.

    ``report`` marks text that only reports what was done (log, get,
    promote, import): --quiet drops it.
    """
    s = settings()
    if s.json:
        click.echo(json.dumps(data, indent=2, default=_json_default))
        return
    if report and s.quiet:
        return
    for line in text():
        click.echo(line)


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    """Left-aligned text columns; numbers (cells starting with a digit) right-aligned."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def fmt(row: Sequence[str]) -> str:
        cells = [
            c.rjust(w) if c[:1].isdigit() and i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [fmt(header), *(fmt(r) for r in rows)]
