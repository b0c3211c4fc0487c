"""What the pages claim, computed without a browser: sizes, costs, order, charts, diffs."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scribestore import Project, Repository
from scribestore.exception import (
    ArtifactNotFoundError,
    BinaryArtifactError,
    ExperimentNotFoundError,
    UnknownHandlerError,
    VersionNotFoundError,
)
from scribestore.store.layout import object_path
from scribestore.ui import diffs, views
from scribestore.ui.charts import line_chart
from scribestore.ui.diffs import text_diff
from scribestore.ui.views import (
    artifact_view,
    experiment_view,
    metric_series,
    project_view,
    repository_view,
)
from support.webview import MODEL_BYTES, RUNS


def test_repository_totals_are_the_stores_own_figures(store: Path) -> None:
    repo = Repository(store / "repository.json", mode="r")
    view = repository_view(repo)
    hashes = {m["hash"] for m in repo}
    assert view.logical_bytes == sum(m["size"] for m in repo)
    assert view.stored_bytes == repo.objects.stored_bytes(hashes)
    assert view.missing_objects == 0
    assert [(a.name, a.versions, a.latest) for a in view.artifacts] == [
        ("config", 2, 1),
        ("model", 2, 1),
    ]
    model = view.artifacts[1]
    assert model.latest_size == MODEL_BYTES
    assert model.aliases == ("production",)


def test_a_fine_tune_costs_only_its_changed_chunks(store: Path) -> None:
    repo = Repository(store / "repository.json", mode="r")
    view = artifact_view(repo, "model")
    base, tuned = view.versions
    assert base.added_bytes is not None and tuned.added_bytes is not None
    assert base.added_bytes > MODEL_BYTES * 0.9  # random bytes: stored about in full
    assert tuned.added_bytes < MODEL_BYTES * 0.05  # one changed region's chunks
    assert view.stored_bytes == repo.objects.stored_bytes([base.hash, tuned.hash])
    assert base.aliases == ("production",) and tuned.aliases == ()
    assert [a.alias for a in view.aliases] == ["production"]
    assert view.text is False


def test_the_same_content_twice_costs_nothing_the_second_time(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    for text in ("a", "b", "a"):
        repo.log_artifact("notes", text, handler="text")
        repo.save()
    costs = [v.added_bytes for v in artifact_view(repo, "notes").versions]
    assert costs[0] and costs[1] and costs[2] == 0


def test_a_missing_object_is_shown_missing_not_an_error(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    for text in ("first", "second"):
        repo.log_artifact("notes", text, handler="text")
        repo.save()
    gone = repo.saved_versions()["notes"][0].hash
    (tmp_path / "objects" / object_path(gone)).unlink()
    reopened = Repository(tmp_path / "repository.json", mode="r")
    assert [v.added_bytes is None for v in artifact_view(reopened, "notes").versions] == [
        True,
        False,
    ]
    assert repository_view(reopened).missing_objects == 1


def test_versions_whose_chunks_are_gone_are_missing_not_free(store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    for pack in (copy / "objects" / "packs").rglob("*"):
        if pack.is_file():
            pack.unlink()
    repo = Repository(copy / "repository.json", mode="r")
    assert [v.added_bytes for v in artifact_view(repo, "model").versions] == [None, None]
    view = repository_view(repo)
    assert view.missing_objects == 2  # both model versions; the small configs are loose
    assert view.stored_bytes < 64 * 1024


def test_content_another_artifact_holds_costs_nothing(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(6 << 20))
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("model", model, handler="file")
    repo.save()
    repo.log_artifact("model_copy", model, handler="file")
    repo.save()
    (copied,) = artifact_view(repo, "model_copy").versions
    assert copied.added_bytes == 0


def test_a_handler_this_process_lacks_still_shows_its_timeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("notes", "one", handler="text")
    repo.save()

    def unknown(alias: str) -> object:
        raise UnknownHandlerError(f"no artifact handler named {alias!r}")

    # As for a store written with a plugin handler the viewing process lacks.
    monkeypatch.setattr(views, "get_handler", unknown)
    view = artifact_view(Repository(tmp_path / "repository.json", mode="r"), "notes")
    assert view.handler == "text" and view.text is False
    assert view.versions[0].added_bytes is not None


def test_a_metric_beyond_any_float_is_shown_not_charted(tmp_path: Path) -> None:
    project = Project(tmp_path / "project.json", mode="w")
    for value in (10**400, 2):
        with project.log("big") as exp:
            exp.log_metric("m", value)
    project.save()
    view = project_view(project, sort="metric:m", order="desc")
    assert [e.metrics["m"] for e in view.experiments] == [2, 10**400]  # not a number: last
    assert metric_series(project, "m") == [(project.experiments[1].slug, 2.0)]


def test_an_unknown_artifact_is_not_found(store: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match="nope"):
        artifact_view(Repository(store / "repository.json", mode="r"), "nope")


def test_experiments_sort_by_a_metric_either_way(store: Path) -> None:
    project = Project(store / "project.json", mode="r")
    accuracies = sorted(a for a, _ in RUNS)
    down = project_view(project, sort="metric:accuracy", order="desc")
    assert [e.metrics["accuracy"] for e in down.experiments] == accuracies[::-1]
    up = project_view(project, sort="metric:accuracy", order="asc")
    assert [e.metrics["accuracy"] for e in up.experiments] == accuracies
    by_lr = project_view(project, sort="param:lr", order="asc")
    assert [e.parameters["lr"] for e in by_lr.experiments] == sorted(lr for _, lr in RUNS)
    assert down.metric_names == ("accuracy", "loss") and down.parameter_names == ("lr",)
    created = project_view(project)
    assert [e.name for e in created.experiments] == ["run-0", "run-1", "run-2"]


def test_experiments_without_the_metric_come_last(tmp_path: Path) -> None:
    project = Project(tmp_path / "project.json", mode="w")
    for name, value in (("none", None), ("low", 1), ("text", "n/a"), ("high", 3)):
        with project.log(name) as exp:
            if value is not None:
                exp.log_parameter("score", value)
    for order in ("asc", "desc"):
        names = [e.name for e in project_view(project, sort="param:score", order=order).experiments]
        assert names[-2:] == ["text", "none"]
        assert names[:2] == (["low", "high"] if order == "asc" else ["high", "low"])


@pytest.mark.parametrize(("sort", "order"), [("metric:nope", "asc"), ("created_at", "up")])
def test_an_unknown_column_or_order_is_refused(store: Path, sort: str, order: str) -> None:
    with pytest.raises(ValueError, match=r"nope|order"):
        project_view(Project(store / "project.json", mode="r"), sort=sort, order=order)  # type: ignore[arg-type]


def test_an_experiment_shows_its_tests_and_artifacts(store: Path) -> None:
    project = Project(store / "project.json", mode="r")
    slug = project.experiments[1].slug
    view = experiment_view(project, slug)
    assert view.row.metrics["accuracy"] == RUNS[1][0]
    assert [a.name for a in view.artifacts] == ["notes"]
    (test,) = view.tests
    assert (test.name, test.description) == ("holdout", "a held-out split")
    assert test.metrics == {"accuracy": round(RUNS[1][0] - 0.05, 4)}
    with pytest.raises(ExperimentNotFoundError):
        experiment_view(project, "no-such-slug")


def test_the_metric_series_is_in_logged_order(store: Path) -> None:
    project = Project(store / "project.json", mode="r")
    assert [v for _, v in metric_series(project, "accuracy")] == [a for a, _ in RUNS]
    assert metric_series(project, "not-a-metric") == []


# --- charts ----------------------------------------------------------------------


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=40))
def test_chart_points_are_in_order_inside_the_plot_and_higher_is_higher(
    values: list[float],
) -> None:
    chart = line_chart("m", [(str(i), v) for i, v in enumerate(values)])
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    for p in chart.points:
        assert chart.left <= p.x <= chart.width and 0 <= p.y <= chart.bottom + 1e-6
    for a in chart.points:
        for b in chart.points:
            if a.value > b.value:
                assert a.y <= b.y  # strictly above when the difference can be drawn
    top = max(chart.points, key=lambda p: p.value)
    bottom = min(chart.points, key=lambda p: p.value)
    if top.value - bottom.value > 1e-6 * max(abs(top.value), abs(bottom.value)):
        assert top.y < bottom.y
    assert chart.ticks and all(0 <= t.y <= chart.bottom + 1e-6 for t in chart.ticks)
    assert chart.path.count("L") == len(values) - 1


@pytest.mark.parametrize(
    "values",
    [[0.3, 0.1 + 0.2], [1e17], [2.0**63, 2.0**63], [1e308, -1e308], [0.0, 5e-324], [1.79e308]],
)
def test_extreme_and_nearly_equal_values_give_a_chart(values: list[float]) -> None:
    chart = line_chart("m", [(str(i), v) for i, v in enumerate(values)])
    assert all(math.isfinite(p.y) and 0 <= p.y <= chart.bottom for p in chart.points)
    assert all(math.isfinite(t.y) for t in chart.ticks) and len(chart.ticks) <= 7


def test_one_point_sits_in_the_middle() -> None:
    (point,) = line_chart("m", [("only", 2.0)]).points
    chart = line_chart("m", [("only", 2.0)])
    assert point.x == pytest.approx(chart.left + (chart.width - chart.left - 16) / 2)


# --- diffs -----------------------------------------------------------------------


def test_a_json_diff_shows_the_changed_line(store: Path) -> None:
    repo = Repository(store / "repository.json", mode="r")
    view = text_diff(repo, "config", 0, 1)
    assert (view.added, view.removed) == (1, 1)
    kinds = [line.kind for line in view.lines]
    assert kinds == ["header", "header", "hunk", "removed", "added"]
    assert '"lr": 0.01' in view.lines[-1].text
    assert text_diff(repo, "config", 1, 1).lines == ()


def test_a_removed_line_that_starts_with_dashes_is_not_a_header(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    for text in ("-- a comment\nkeep\n", "keep\n++ added\n"):
        repo.log_artifact("sql", text, handler="text")
        repo.save()
    view = text_diff(repo, "sql", 0, 1)
    assert [(line.kind, line.text) for line in view.lines[2:]] == [
        ("hunk", "@@ -1,2 +1,2 @@"),
        ("removed", "--- a comment"),
        ("same", " keep"),
        ("added", "+++ added"),
    ]


def test_binary_large_or_unknown_versions_are_refused(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repository(store / "repository.json", mode="r")
    with pytest.raises(ValueError, match="at most"):
        text_diff(repo, "model", 0, 1)
    with pytest.raises(VersionNotFoundError):
        text_diff(repo, "config", 0, 7)
    monkeypatch.setattr(diffs, "MAX_DIFF_BYTES", 10**9)
    with pytest.raises(BinaryArtifactError):
        text_diff(repo, "model", 0, 1)
    shutil.rmtree(tmp_path)
