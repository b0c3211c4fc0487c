"""The served pages over HTTP: what each shows, errors as pages, nothing writable."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from scribestore import Project, Repository
from scribestore.ui.catalog import Catalog
from support.webview import serving


def _text(html: str) -> str:
    body = html.split("<main>", 1)[1].split("</main>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def _id(catalog: Catalog, kind: str) -> str:
    return next(e.id for e in catalog.entries if e.kind == kind)


def test_the_index_links_every_manifest(base_url: str, catalog: Catalog) -> None:
    page = httpx.get(base_url + "/")
    assert page.status_code == 200
    for entry in catalog.entries:
        assert f'href="{base_url}/{entry.kind}/{entry.id}"' in page.text
        assert entry.url in page.text


def test_the_repository_page_lists_artifacts_with_sizes(base_url: str, catalog: Catalog) -> None:
    repo = catalog.repository(_id(catalog, "repository"))
    text = _text(httpx.get(f"{base_url}/repository/{_id(catalog, 'repository')}").text)
    assert "config json 2 1" in text
    assert "model file 2 1 12.0 MiB" in text
    assert "@production" in text
    assert f"{sum(m['size'] for m in repo) / 2**20:.1f} MiB" in text


def test_the_timeline_shows_each_versions_cost_and_alias(base_url: str, catalog: Catalog) -> None:
    rid = _id(catalog, "repository")
    versions = catalog.repository(rid).saved_versions()["model"]
    page = httpx.get(f"{base_url}/repository/{rid}/artifact", params={"name": "model"})
    assert page.status_code == 200
    for v in versions:
        assert f'title="{v.hash}"' in page.text
    savings = re.findall(r'class="num saving">([0-9.]+) %', page.text)
    assert float(savings[0]) < 10 and float(savings[1]) > 90


def test_a_text_artifact_links_diffs_that_show_the_change(base_url: str, catalog: Catalog) -> None:
    rid = _id(catalog, "repository")
    timeline = httpx.get(f"{base_url}/repository/{rid}/artifact", params={"name": "config"}).text
    (link,) = re.findall(r'<a class="diff" href="([^"]+)"', timeline)
    diff = httpx.get(link.replace("&amp;", "&"))
    assert diff.status_code == 200
    assert '<span class="removed">-{&#34;lr&#34;: 0.1' in diff.text
    assert '<span class="added">+{&#34;lr&#34;: 0.01' in diff.text


def test_the_project_page_sorts_and_charts(base_url: str, catalog: Catalog) -> None:
    pid = _id(catalog, "project")
    page = httpx.get(
        f"{base_url}/project/{pid}", params={"sort": "metric:accuracy", "order": "desc"}
    )
    rows = re.findall(r"\?slug=(run-\d)-", page.text)
    assert rows == ["run-1", "run-2", "run-0"]
    assert len(re.findall(r'<circle class="point"', page.text)) == 3
    loss = httpx.get(f"{base_url}/project/{pid}", params={"chart": "loss"}).text
    values = [float(v) for v in re.findall(r'data-value="([^"]+)"', loss)]
    assert values == [0.29, 0.07, 0.15]


def test_the_experiment_page_shows_metrics_tests_and_artifacts(
    base_url: str, catalog: Catalog
) -> None:
    pid = _id(catalog, "project")
    slug = catalog.project(pid).experiments[0].slug
    text = _text(httpx.get(f"{base_url}/project/{pid}/experiment", params={"slug": slug}).text)
    assert "accuracy 0.71" in text and "lr 0.1" in text
    assert "Test holdout a held-out split" in text and "accuracy 0.66" in text
    assert "notes text" in text


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/repository/000000000000", 404, "no manifest with id"),
        ("/repository/{rid}/artifact?name=nope", 404, "nope"),
        ("/repository/{rid}/artifact", 400, "name="),
        ("/repository/{rid}/diff?name=config&old=0&new=x", 400, "version number"),
        ("/repository/{rid}/diff?name=config&old=0&new=9", 404, "no saved version 9"),
        ("/repository/{rid}/diff?name=model&old=0&new=1", 400, "at most"),
        ("/project/{pid}?sort=metric:nope", 400, "no column"),
        ("/project/{rid}", 404, "is a repository"),
        ("/nowhere", 404, "Not Found"),
    ],
)
def test_errors_are_pages_with_their_status(
    base_url: str, catalog: Catalog, path: str, status: int, says: str
) -> None:
    url = base_url + path.format(rid=_id(catalog, "repository"), pid=_id(catalog, "project"))
    page = httpx.get(url)
    assert page.status_code == status
    assert says in page.text.replace("&#39;", "'")


def test_nothing_can_be_written_through_the_view(
    base_url: str, catalog: Catalog, store: Path
) -> None:
    before = (store / "repository.json").read_bytes()
    for path in ("/", f"/repository/{_id(catalog, 'repository')}"):
        for method in ("POST", "PUT", "DELETE"):
            assert httpx.request(method, base_url + path).status_code == 405
    assert (store / "repository.json").read_bytes() == before


def test_values_are_escaped(tmp_path: Path) -> None:
    project = Project(tmp_path / "project.json", mode="w")
    with project.log("xss") as exp:
        exp.log_parameter("note", "<script>alert(1)</script>")
    project.save()
    catalog = Catalog(str(tmp_path), storage_options={})
    with serving(catalog) as url:
        page = httpx.get(f"{url}/project/{catalog.entries[0].id}").text
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_page_reads_the_store_as_it_is_now(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("notes", "one", handler="text")
    repo.save()
    catalog = Catalog(str(tmp_path), storage_options={})
    with serving(catalog) as url:
        page = f"{url}/repository/{catalog.entries[0].id}/artifact"
        assert httpx.get(page, params={"name": "notes"}).text.count('data-version="') == 1
        more = Repository(tmp_path / "repository.json", mode="a")
        more.log_artifact("notes", "two", handler="text")
        more.save()
        assert httpx.get(page, params={"name": "notes"}).text.count('data-version="') == 2


def test_a_manifest_damaged_after_the_start_is_a_500_that_says_so(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("notes", "one", handler="text")
    repo.save()
    catalog = Catalog(str(tmp_path), storage_options={})
    with serving(catalog) as url:
        (tmp_path / "repository.json").write_text("garbage{")
        page = httpx.get(f"{url}/repository/{catalog.entries[0].id}")
        assert page.status_code == 500
        assert "repository.json" in _text(page.text)
        index = httpx.get(url + "/")  # the index still answers
        assert index.status_code == 200


def test_a_damaged_manifest_is_listed_with_its_problem(tmp_path: Path) -> None:
    (tmp_path / "repository.json").write_text("[]")  # a lazyscribe manifest, say
    project = Project(tmp_path / "project.json", mode="w")
    project.save()
    catalog = Catalog(str(tmp_path), storage_options={})
    with serving(catalog) as url:
        text = _text(httpx.get(url + "/").text)
    assert "not a scribestore manifest" in text and "import-lazyscribe" in text


def test_requests_for_other_host_names_are_refused(base_url: str) -> None:
    assert httpx.get(base_url + "/", headers={"Host": "attacker.example"}).status_code == 400
    assert httpx.get(base_url.replace("127.0.0.1", "localhost") + "/").status_code == 200


@pytest.mark.parametrize("bad", ["\uff11", "\u00b2", "1" * 5000, "-1", "1.0"])
def test_versions_are_ascii_numbers(base_url: str, catalog: Catalog, bad: str) -> None:
    url = f"{base_url}/repository/{_id(catalog, 'repository')}/diff"
    page = httpx.get(url, params={"name": "config", "old": "0", "new": bad})
    assert page.status_code == 400
    assert "must be a version number" in page.text
    assert "400: " not in page.text  # the message once, without the status again
