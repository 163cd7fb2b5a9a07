"""The layers of functions/tagrelay, enforced: each module imports only from the layers below it.

    handlers, cli  ->  runtime  ->  services  ->  ports  ->  domain  ->  config, errors
                                    adapters  ->  ports, domain, config, errors

* the domain (pure rules and facts) imports nothing from adapters, services, ports or the entry points;
* services import ports, never adapters: runtime.py alone chooses the implementations;
* adapters never import services or entry points; ports never import adapters or services;
* the CLI and the handlers reach adapters through runtime.py only.

Every import counts: module level, inside functions (the lazy imports that keep cold starts short)
and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "functions" / "tagrelay"

# layer -> the tagrelay modules (prefixes) it may not import
_ENTRY_POINTS = ("tagrelay.runtime", "tagrelay.cli", "tagrelay.handlers")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "errors": ("tagrelay",),
    # The configuration builds domain values (an app's GitOps format) from its settings; nothing more.
    "config": ("tagrelay.adapters", "tagrelay.services", "tagrelay.ports", *_ENTRY_POINTS),
    "domain": (
        "tagrelay.adapters",
        "tagrelay.services",
        "tagrelay.ports",
        "tagrelay.runtime",
        "tagrelay.cli",
        "tagrelay.handlers",
    ),
    "ports": ("tagrelay.adapters", "tagrelay.services", "tagrelay.runtime", "tagrelay.cli", "tagrelay.handlers"),
    "services": ("tagrelay.adapters", "tagrelay.runtime", "tagrelay.cli", "tagrelay.handlers"),
    "adapters": ("tagrelay.services", "tagrelay.runtime", "tagrelay.cli", "tagrelay.handlers"),
    "cli": ("tagrelay.adapters", "tagrelay.handlers"),
    "handlers": ("tagrelay.adapters", "tagrelay.cli"),
}


def layer_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every import in the file (or in ``source``, read as that file), absolute and
    relative alike."""
    tree = ast.parse(source if source is not None else path.read_text(), filename=str(path))
    package = ".".join(("tagrelay", *path.relative_to(PACKAGE).with_suffix("").parts[:-1]))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # `from tagrelay import runtime` imports the module tagrelay.runtime
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
            found.append((node.lineno, module))
    return found


def violations(path: Path) -> list[str]:
    forbidden = FORBIDDEN.get(layer_of(path), ())
    return [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for line, module in imported_modules(path)
        if any(module == prefix or module.startswith(prefix + ".") for prefix in forbidden)
    ]


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_each_module_imports_only_from_the_layers_below_it(path: Path) -> None:
    assert violations(path) == []


def test_the_check_sees_every_layer_and_every_kind_of_import(tmp_path: Path) -> None:
    """The check itself can fail: a lazy import, a TYPE_CHECKING import and a relative import of an
    adapter from a service are each found."""
    assert {layer_of(p) for p in MODULES} >= {"domain", "ports", "services", "adapters", "cli", "handlers", "runtime"}
    service = PACKAGE / "services" / "promote.py"
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from tagrelay.adapters.github import GitHub\n"
        "def f():\n    import tagrelay.adapters.store\n"
        "from ..adapters import registry\n"
    )
    tree_modules = [module for _, module in imported_modules(service, source)]
    assert "tagrelay.adapters.github" in tree_modules
    assert "tagrelay.adapters.store" in tree_modules
    assert "tagrelay.adapters.registry" in tree_modules
    assert layer_of(service) == "services"
