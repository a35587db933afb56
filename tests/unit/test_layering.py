"""The import direction between top-level packages (ARCHITECTURE §1) is enforced here.

config <- protocol <- keyspace <- commands <- persistence <- actors: each package may import only
packages to its left, and only `actors` may import pykka or asyncio (threads and sockets live there).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ORDER = ["config", "protocol", "keyspace", "commands", "persistence", "actors"]
ACTOR_ONLY = {"pykka", "asyncio", "uvloop", "socket", "selectors"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ORDER)
def test_imports_point_left(package):
    allowed = set(ORDER[: ORDER.index(package) + 1])
    forbidden = set(ORDER) - allowed
    bad = []
    for path in sorted((REPO / package).rglob("*.py")):
        used = _imports(path)
        for name in used & forbidden:
            bad.append(f"{path.relative_to(REPO)} imports {name}")
        if package != "actors":
            for name in used & ACTOR_ONLY:
                bad.append(f"{path.relative_to(REPO)} imports {name} (only actors/ may)")
    assert not bad, "\n".join(bad)


def test_packages_resolve_inside_repo():
    """The distribution installs top-level packages; make sure we import these, not others."""
    import config
    import protocol

    assert Path(config.__file__).resolve().parent == REPO / "config"
    assert Path(protocol.__file__).resolve().parent == REPO / "protocol"
