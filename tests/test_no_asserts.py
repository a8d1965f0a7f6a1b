"""`assert` is not how src/ states an invariant: `python -O` removes it, and the check with it."""

from __future__ import annotations

import ast
from pathlib import Path

import casefolio

SRC = Path(casefolio.__file__).parent


def test_no_module_of_casefolio_uses_assert() -> None:
    found = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path in sorted(SRC.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Assert)
    ]
    assert found == []
