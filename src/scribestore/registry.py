"""A registry of projects by name, as lazyscribe's ``registry`` module has it.

Code written for lazyscribe adds projects to the module-level
:data:`registry` so experiments in one project can name experiments in
another (``"<project name>|<slug>"``).
"""

from __future__ import annotations

import os
from typing import Protocol

# Typed by what the registry uses of a project (this module is imported by the
# experiment module, which the project module imports: no import back).


class Project(Protocol):
    """A project, as the registry sees it: where its manifest is."""

    @property
    def url(self) -> str: ...

    def __getitem__(self, slug: str) -> object: ...


__all__ = ["Registry", "registry"]


class Registry:
    """Projects by name.

    Args:
        projects: the initial projects, by name (copied).
    """

    def __init__(self, projects: dict[str, Project] | None = None) -> None:
        self.projects: dict[str, Project] = dict(projects or {})

    def add_project(self, name: str, project: Project) -> None:
        """Register ``project`` as ``name`` (replacing any project of that name)."""
        self.projects[name] = project

    def search(self, fpath: str | os.PathLike[str]) -> str | None:
        """The name of the registered project whose manifest is ``fpath``, or None."""
        wanted = os.fspath(fpath)
        for name, project in self.projects.items():
            if os.fspath(project.url) == wanted:
                return name
        return None

    def __getitem__(self, name: str) -> Project:
        """The project registered as ``name``.

        Raises:
            KeyError: no project has that name.
        """
        try:
            return self.projects[name]
        except KeyError:
            known = ", ".join(repr(n) for n in sorted(self.projects)) or "none"
            raise KeyError(
                f"no project named {name!r} in the registry (registered: {known})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.projects

    def __repr__(self) -> str:
        return f"Registry(projects={sorted(self.projects)!r})"


#: The registry lazyscribe code uses: ``from scribestore.registry import registry``.
registry = Registry()
