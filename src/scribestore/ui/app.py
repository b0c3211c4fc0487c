"""The web view's pages: a read-only Starlette app over a :class:`Catalog`.

Every page reads the manifests as they are at the request (nothing is
cached between requests) and answers GET only: the view cannot change a
store. Errors are pages too: a missing manifest, artifact or version is a
404, a bad query a 400, damaged bytes a 500 that says what was damaged.
"""

from __future__ import annotations

import datetime as dt
import re
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from scribestore import __version__
from scribestore.cli.app import human
from scribestore.exception import (
    CorruptManifestError,
    IntegrityError,
    ScribeStoreError,
    UnsupportedFormatError,
)
from scribestore.ui.charts import line_chart
from scribestore.ui.diffs import text_diff
from scribestore.ui.views import (
    Order,
    artifact_view,
    experiment_view,
    metric_series,
    number,
    project_view,
    repository_view,
)

if TYPE_CHECKING:
    from starlette.requests import Request

    from scribestore.ui.catalog import Catalog

__all__ = ["create_app"]

_PACKAGE = files("scribestore.ui")
_NUMBER = re.compile(r"[0-9]{1,18}")


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("scribestore.ui", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["human"] = human
    env.filters["short"] = lambda digest: digest[:12]
    env.filters["cell"] = _cell
    return Jinja2Templates(env=env)


def _cell(value: Any) -> str:
    found = number(value)
    if found is not None and not isinstance(value, int):
        return f"{found:.6g}"
    return "-" if value is None else str(value)


def create_app(catalog: Catalog) -> Starlette:
    """The read-only web view of ``catalog``'s manifests."""
    templates = _templates()

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.update(catalog=catalog, version=__version__, now=dt.datetime.now(dt.timezone.utc))
        return templates.TemplateResponse(request, name, context, status_code=status)

    def index(request: Request) -> HTMLResponse:
        return page(request, "index.html", entries=catalog.entries)

    def repository(request: Request) -> HTMLResponse:
        entry = catalog.entry(request.path_params["id"])
        view = repository_view(catalog.repository(entry.id))
        return page(request, "repository.html", entry=entry, view=view)

    def artifact(request: Request) -> HTMLResponse:
        entry = catalog.entry(request.path_params["id"])
        view = artifact_view(catalog.repository(entry.id), _query(request, "name"))
        return page(request, "artifact.html", entry=entry, view=view)

    def diff(request: Request) -> HTMLResponse:
        entry = catalog.entry(request.path_params["id"])
        name = _query(request, "name")
        old, new = _int_query(request, "old"), _int_query(request, "new")
        view = text_diff(catalog.repository(entry.id), name, min(old, new), max(old, new))
        return page(request, "diff.html", entry=entry, view=view)

    def project(request: Request) -> HTMLResponse:
        entry = catalog.entry(request.path_params["id"])
        opened = catalog.project(entry.id)
        order: Order = "desc" if request.query_params.get("order") == "desc" else "asc"
        view = project_view(
            opened, sort=request.query_params.get("sort", "created_at"), order=order
        )
        metric = request.query_params.get("chart") or (view.metric_names or ("",))[0]
        chart = line_chart(metric, metric_series(opened, metric)) if metric else None
        return page(request, "project.html", entry=entry, view=view, chart=chart)

    def experiment(request: Request) -> HTMLResponse:
        entry = catalog.entry(request.path_params["id"])
        view = experiment_view(catalog.project(entry.id), _query(request, "slug"))
        return page(request, "experiment.html", entry=entry, view=view)

    def failure(request: Request, exc: Exception) -> HTMLResponse:
        status = _status(exc)
        message = str(exc.detail) if isinstance(exc, HTTPException) else str(exc)
        return page(request, "error.html", status, status_code=status, message=message)

    routes = [
        Route("/", index),
        Route("/repository/{id}", repository),
        Route("/repository/{id}/artifact", artifact),
        Route("/repository/{id}/diff", diff),
        Route("/project/{id}", project),
        Route("/project/{id}/experiment", experiment),
        Mount("/static", StaticFiles(directory=str(_PACKAGE / "static")), name="static"),
    ]
    # The library's errors and the built-in ones it raises are pages; anything
    # else is a bug and goes to Starlette's own 500 handling and the log.
    handled = (HTTPException, ScribeStoreError, LookupError, ValueError, OSError)
    # Only requests addressed to this machine by name: a page elsewhere that
    # rebinds its own host name to 127.0.0.1 cannot read the store.
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=dict.fromkeys(handled, failure),
    )


def _status(exc: Exception) -> int:
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, (IntegrityError, CorruptManifestError, UnsupportedFormatError)):
        return 500  # damaged or unreadable bytes: not the request's fault
    if isinstance(exc, (LookupError, FileNotFoundError)):
        return 404
    if isinstance(exc, ValueError):
        return 400
    return 500


def _query(request: Request, key: str) -> str:
    value = request.query_params.get(key)
    if not value:
        raise HTTPException(400, f"the query needs {key}=...")
    return value


def _int_query(request: Request, key: str) -> int:
    text = _query(request, key)
    if not _NUMBER.fullmatch(text):
        raise HTTPException(400, f"{key} must be a version number, not {text[:40]!r}")
    return int(text)
