"""The pages never call a service that reads or changes a session without saying who acts.

The services enforce privacy for the ``actor=`` they are given; a call without one acts as the
context's default (the single local user), which in a team deployment would read everything.
This test reads every page and UI module and fails on such a call."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from app import services
from app.services import access, projects, ui_support
from tests.conftest import ROOT

SOURCES = sorted([*(ROOT / "pages").glob("*.py"), *(ROOT / "app" / "ui").glob("*.py")])
MODULES = {"services": services, "projects": projects, "ui_support": ui_support, "access": access}


def takes_actor(module: object, name: str) -> bool:
    fn = getattr(module, name, None)
    return callable(fn) and "actor" in inspect.signature(fn).parameters


def calls_without_actor(path: Path, root: Path = ROOT) -> list[str]:
    missing = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        if not (isinstance(owner, ast.Name) and owner.id in MODULES):
            continue
        if takes_actor(MODULES[owner.id], node.func.attr) and not any(
            k.arg == "actor" for k in node.keywords
        ):
            missing.append(f"{path.relative_to(root)}:{node.lineno} {owner.id}.{node.func.attr}")
    return missing


def test_every_page_call_of_a_session_service_names_the_actor() -> None:
    missing = [m for path in SOURCES for m in calls_without_actor(path)]
    assert not missing, "service calls without actor=:\n" + "\n".join(missing)


def test_the_check_sees_a_call_without_actor(tmp_path: Path) -> None:
    page = tmp_path / "page.py"
    page.write_text(
        "from app import services\nservices.get_session(1)\nservices.get_session(1, actor=a)\n"
        "services.model_choices()\n",
        encoding="utf-8",
    )
    assert calls_without_actor(page, tmp_path) == ["page.py:2 services.get_session"]
