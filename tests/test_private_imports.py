"""No module of the product uses a private module or name of a third-party package.

A private module (``scipy.stats._stats_py``, ``typer._click``) may move or vanish in any release of its
package, and the lower bounds in pyproject.toml would then promise versions the code cannot run on.
Every source file under monitor/, detectors/, alerts/ and dashboards/ is read with ``ast``: imports,
``importlib.import_module("...")`` with a literal name, and attributes read through an imported name
(``scipy.stats._stats_py``) are flagged when a segment after the top-level package starts with ``_``
(dunders such as ``__version__`` are public). Our own packages and the standard library are not
checked. Should a private name ever be unavoidable, it needs an entry in an allow-list here and a test
that imports it and checks the names used, so that a move fails loudly; none is needed today.
"""

from __future__ import annotations

import ast
import sys

from tests.conftest import REPO

PACKAGES = ("monitor", "detectors", "alerts", "dashboards")


def is_private(segment: str) -> bool:
    return segment.startswith("_") and not (segment.startswith("__") and segment.endswith("__"))


def is_third_party(top: str) -> bool:
    return top not in PACKAGES and top not in sys.stdlib_module_names and top != "__future__"


def private_uses(source: str, filename: str = "<source>") -> list[str]:
    """``line: dotted name`` for every private module or name of a third-party package that ``source`` uses."""
    tree = ast.parse(source, filename)
    found: list[str] = []
    imported: dict[str, str] = {}  # local name -> the third-party dotted name it is bound to

    def check(line: int, dotted: str) -> None:
        top, *rest = dotted.split(".")
        if is_third_party(top) and any(is_private(segment) for segment in rest):
            found.append(f"{line}: {dotted}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check(node.lineno, alias.name)
                if is_third_party(alias.name.split(".")[0]):
                    local = alias.asname or alias.name.split(".")[0]
                    imported[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                check(node.lineno, f"{node.module}.{alias.name}")
                if is_third_party(node.module.split(".")[0]):
                    imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"import_module", "__import__"} and isinstance(node.args[0].value, str):
                check(node.lineno, node.args[0].value)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = [node.attr]
            root = node.value
            while isinstance(root, ast.Attribute):
                chain.append(root.attr)
                root = root.value
            if isinstance(root, ast.Name) and root.id in imported and is_private(node.attr):
                check(node.lineno, ".".join([imported[root.id], *reversed(chain)]))
    return sorted(set(found), key=lambda item: int(item.split(":")[0]))


def test_no_module_of_the_product_uses_a_private_module_of_a_dependency() -> None:
    files = [path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 50
    offenders = {
        str(path.relative_to(REPO)): uses
        for path in files
        if (uses := private_uses(path.read_text(encoding="utf-8"), str(path)))
    }
    assert offenders == {}, f"private modules of dependencies (use their public API): {offenders}"


def test_the_scan_finds_every_kind_of_private_use() -> None:
    """The scan can fail: each way of reaching a private name is caught, public and own names are not."""
    source = "\n".join(
        [
            "from scipy.stats._stats_py import _attempt_exact_2kssamp",  # 1
            "from typer._click import exceptions as click_exceptions",  # 2
            "import scipy.stats._stats_pythran",  # 3
            "from scipy.stats import _stats_py",  # 4
            "import importlib; importlib.import_module('scipy.stats._ksstats')",  # 5
            "import scipy.stats as st; f = st._stats_py.ks",  # 6
            "import numpy as np; x = np.random._pcg64",  # 7
            "from typer import core; core._click",  # 8
            # not private, or ours, or the standard library's
            "from scipy.stats import ks_2samp; import numpy as np; np.__version__",
            "from monitor.cli import _command_name; import detectors._x",
            "import os; os._exit; from collections import _chain",
            "from .stats import _private; import typer; typer.Typer",
        ]
    )
    assert [use.split(":")[0] for use in private_uses(source)] == [str(line) for line in range(1, 9)]
