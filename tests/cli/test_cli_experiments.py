"""scribestore exp ls|show|compare|get on a project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scribestore import Project
from support.cli import error_line, invoke, invoke_json


@pytest.fixture
def project_path(tmp_path: Path) -> Path:
    fpath = tmp_path / "store" / "project.json"
    project = Project(fpath, mode="w", author="ana")
    for name, auc, lr in (("baseline", 0.81, 0.1), ("wider", 0.91, 0.05), ("deeper", 0.87, 0.01)):
        with project.log(name) as exp:
            exp.log_parameter("lr", lr)
            exp.log_metric("auc", auc)
            exp.tag("candidate") if auc > 0.85 else None
            exp.log_artifact("config", {"lr": lr}, handler="json")
            with exp.log_test("holdout", "last month") as test:
                test.log_metric("auc", auc - 0.02)
                test.log_artifact("preds", [auc] * 3, handler="json")
    project.save()
    return fpath


def test_list_experiments(project_path: Path) -> None:
    listed = invoke_json("exp", "ls", project_path)
    assert [e["name"] for e in listed] == ["baseline", "wider", "deeper"]
    assert listed[1]["tags"] == ["candidate"] and listed[0]["author"] == "ana"
    text = invoke("exp", "ls", project_path).stdout
    assert "EXPERIMENT" in text and listed[2]["slug"] in text


def test_show_an_experiment(project_path: Path) -> None:
    data = invoke_json("exp", "show", project_path, "wider")
    assert data["metrics"] == {"auc": 0.91} and data["parameters"] == {"lr": 0.05}
    assert data["tests"] == [
        {"name": "holdout", "description": "last month", "metrics": {"auc": 0.89}}
    ]
    assert [(a["in"], a["name"]) for a in data["artifacts"]] == [
        ("experiment", "config"),
        ("test holdout", "preds"),
    ]
    text = invoke("exp", "show", project_path, "wider").stdout
    assert "metric:" in text and "auc = 0.91" in text and "holdout" in text


def test_compare_experiments_sorted_by_a_metric(project_path: Path) -> None:
    data = invoke_json("exp", "compare", project_path, "--sort", "auc")
    assert [e["name"] for e in data["experiments"]] == ["wider", "deeper", "baseline"]
    assert data["metrics"] == ["auc"] and data["parameters"] == ["lr"]
    two = invoke_json("exp", "compare", project_path, "baseline", "deeper")
    assert [e["name"] for e in two["experiments"]] == ["baseline", "deeper"]
    text = invoke("exp", "compare", project_path).stdout.splitlines()
    assert text[0].split() == ["EXPERIMENT", "auc", "param:lr"]
    assert text[2].split()[1:] == ["0.91", "0.05"]


def test_get_an_experiment_or_test_artifact(project_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "config.json"
    result = invoke("exp", "get", project_path, "wider", "config", out)
    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text()) == {"lr": 0.05}
    preds = tmp_path / "preds.json"
    assert (
        invoke("exp", "get", project_path, "deeper", "preds", preds, "--test", "holdout").exit_code
        == 0
    )
    assert json.loads(preds.read_text()) == [0.87] * 3


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("show", "nope"), 3),
        (("compare", "--sort", "loss"), 3),
        (("get", "wider", "nope", "out.json"), 3),
        (("get", "wider", "preds", "out.json", "--test", "nope"), 3),
    ],
)
def test_errors(project_path: Path, args: tuple[str, ...], code: int, tmp_path: Path) -> None:
    args = tuple(str(tmp_path / a) if a.endswith(".json") else a for a in args)
    result = invoke("exp", args[0], project_path, *args[1:])
    assert result.exit_code == code
    error_line(result)


def test_a_repository_is_not_a_project(tmp_path: Path) -> None:
    from support.cli import make_repo

    result = invoke("exp", "ls", make_repo(tmp_path / "s"))
    assert result.exit_code == 2
    assert "needs a project" in error_line(result)
