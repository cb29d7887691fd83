"""The layers of `leasefs/__init__.py`, checked on every import of the code, and each package's
public front.

A module may import its own unit and the units its layer allows. Across the three packages
(leasefs, coordinator, mcp_bridge) only public modules may be imported (no ``_`` in the path),
and within leasefs a lower subpackage is imported through the subpackage itself
(``from .._client import Client``), never through one of its private modules.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("leasefs", "coordinator", "mcp_bridge")

ALLOWED: dict[str, frozenset[str]] = {
    "leasefs.wire": frozenset(),
    "leasefs._config": frozenset({"leasefs.wire"}),
    "leasefs._fs": frozenset({"leasefs.wire"}),
    "leasefs._client": frozenset({"leasefs.wire", "leasefs._config"}),
    "leasefs._mount": frozenset(
        {"leasefs.wire", "leasefs._config", "leasefs._client", "leasefs._fs"}
    ),
    "leasefs.cli": frozenset(
        {
            "leasefs",
            "leasefs.wire",
            "leasefs._config",
            "leasefs._client",
            "leasefs._fs",
            "leasefs._mount",
            "coordinator",
            "mcp_bridge",
        }
    ),
    "leasefs": frozenset({"leasefs.wire", "leasefs._client", "leasefs._config", "leasefs.cli"}),
    "coordinator": frozenset({"leasefs.wire"}),
    "mcp_bridge": frozenset({"leasefs", "leasefs.wire"}),
}
"""Each unit, and the units it may import besides itself. ``leasefs`` alone is the public front
(and ``__main__``)."""


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


def unit_of(module: str) -> str | None:
    """The unit a dotted module belongs to: the longest key of `ALLOWED` it lies in."""
    units = [u for u in ALLOWED if module == u or module.startswith(u + ".")]
    if not units:
        return None
    return max(units, key=len)


def _imports(module: str, is_package: bool, source: str) -> list[tuple[int, str, bool]]:
    """``(line, absolute module, named)`` for every import of ``source``; ``from pkg import
    mod`` counts as an import of ``pkg.mod`` (``named``: a module taken from its package)
    when that is a module of ours."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str, bool]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                named = submodule in MODULES
                found.append((node.lineno, submodule if named else target, named))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, False) for alias in node.names)
    return found


def check_module(module: str, is_package: bool, source: str) -> list[Violation]:
    """Every import of ``source`` (the text of ``module``) that the layers forbid."""
    home = unit_of(module)
    assert home is not None, f"{module} belongs to no unit: add it to ALLOWED"
    violations = []
    for line, target, named in _imports(module, is_package, source):
        if target.split(".")[0] not in PACKAGES:
            continue
        there = unit_of(target)
        if there is None or there == home:
            continue
        if there not in ALLOWED[home]:
            violations.append(Violation(module, line, target, f"{home} may not import {there}"))
        elif (
            target != there
            and home.split(".")[0] == there.split(".")[0]
            and not (named and target.rpartition(".")[0] == there)  # `from pkg import _mod`
        ):
            violations.append(
                Violation(module, line, target, f"import it from {there}, not its private module")
            )
        elif home.split(".")[0] != target.split(".")[0] and any(
            part.startswith("_") for part in target.split(".")
        ):
            violations.append(Violation(module, line, target, "another package's private module"))
    return violations


def _modules() -> list[tuple[str, bool, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found.append((".".join(parts[:-1] if is_package else parts), is_package, path))
    return found


MODULES = {module for module, _, _ in _modules()}


def test_no_import_goes_up_a_layer_or_into_another_packages_private_modules() -> None:
    violations = [
        str(v)
        for module, is_package, path in _modules()
        for v in check_module(module, is_package, path.read_text())
    ]
    assert violations == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("leasefs.wire._models", "from .._client import Client"),  # up from layer 0
        ("leasefs._client._client", "from .._mount import MountDaemon"),  # up from layer 1
        ("leasefs._config._settings", "from .._client import Client"),  # across in layer 1
        ("leasefs._mount._keeper", "from ..cli import app"),  # up from layer 2
        ("leasefs._mount._keeper", "from .._client._client import Client"),  # private module
        ("coordinator._service", "from leasefs import Client"),  # only the wire package
        ("coordinator._service", "from leasefs.wire._models import Lease"),  # private module
        ("coordinator._service", "import mcp_bridge"),
        ("mcp_bridge._server", "from leasefs._client import Client"),  # only the front
        ("mcp_bridge._server", "import coordinator"),
    ],
)
def test_a_forbidden_import_is_reported(module: str, source: str) -> None:
    assert check_module(module, False, source), f"{source!r} in {module} passed"


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("leasefs._mount._keeper", "from .._client import Client\nfrom ..wire import Lease"),
        ("leasefs._mount._keeper", "from ._applier import Applier"),
        ("leasefs._client._acting", "from .._config import _registry"),
        ("leasefs.cli._app", "from coordinator import serve"),
        ("mcp_bridge._bridge", "from leasefs import Client\nfrom leasefs.wire import LeaseRef"),
        ("coordinator._app", "from leasefs.wire import ErrorCode"),
    ],
)
def test_an_allowed_import_passes(module: str, source: str) -> None:
    assert check_module(module, False, source) == []


def test_import_coordinator_loads_neither_httpx_nor_the_client() -> None:
    import subprocess
    import sys

    script = (
        "import sys, coordinator; "
        "print(sorted(m for m in sys.modules if m == 'httpx' or m.startswith('leasefs._client')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


# -- public fronts ---------------------------------------------------------------------------

FRONTS = [
    "leasefs",
    "leasefs.wire",
    "leasefs._config",
    "leasefs._client",
    "leasefs._fs",
    "leasefs._mount",
    "leasefs.cli",
    "coordinator",
    "coordinator.routes",
    "coordinator.store",
    "mcp_bridge",
]


def _public_names(source: str) -> set[str]:
    """What a package's ``__init__`` offers: ``import x as x`` re-exports, public definitions
    and assignments, and the names it loads on first use (``_LAZY``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom | ast.Import):
            names.update(a.asname for a in node.names if a.asname == a.name.rpartition(".")[2])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
                    if target.id == "_LAZY" and isinstance(node.value, ast.Dict):
                        names.update(ast.literal_eval(k) for k in node.value.keys if k)
    return {n for n in names if not n.startswith("_") or n == "__version__"}


@pytest.mark.parametrize("package", FRONTS)
def test_all_lists_exactly_the_public_names(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    offered = _public_names(Path(module.__file__).read_text())
    listed = list(module.__all__)  # its order: ruff's RUF022
    assert len(listed) == len(set(listed)), f"{package}.__all__ names a name twice"
    assert set(listed) == offered
    for name in listed:
        assert getattr(module, name) is not None


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_says_it_is_typed(package: str) -> None:
    assert (ROOT / package / "py.typed").is_file()
