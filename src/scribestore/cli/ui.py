"""scribestore ui: serve the read-only web view on 127.0.0.1."""

from __future__ import annotations

import socket

import click

from scribestore.cli.app import EXIT_ERROR, CliError, cli, settings, store_options


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port`` (0: a free port).

    Raises:
        CliError: the port is taken or cannot be bound.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
    sock.listen(64)
    return sock


@cli.command()
@click.argument("target")
@click.option(
    "-p",
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@store_options
def ui(target: str, port: int) -> None:
    """Serve a read-only web view of TARGET on 127.0.0.1 until interrupted.

    TARGET is a manifest (repository.json or project.json) or a store's
    directory: the view then shows the manifests in it and every manifest
    registered with its object store. Needs the ui extra
    (pip install 'scribestore[ui]').
    """
    try:
        import uvicorn

        from scribestore.ui.app import create_app
    except ImportError as exc:
        raise CliError(
            f"the web view needs the ui extra ({exc.name} is not installed): "
            "pip install 'scribestore[ui]'",
            EXIT_ERROR,
        ) from exc
    from scribestore.ui.catalog import Catalog

    s = settings()
    app = create_app(Catalog(target, objects=s.objects, storage_options=s.storage_options))
    sock = bind(port)
    host, bound = sock.getsockname()[:2]
    click.echo(f"scribestore ui: serving {target} at http://{host}:{bound}/ (Ctrl-C stops)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl-C it shut down on; for a server that is
        # the normal way to stop, not an error.
        pass
    finally:
        sock.close()
    click.echo("scribestore ui: stopped")
