"""The shape of the code holds: no import circles, registered names not repeated by hand, and a
light ``import protege``."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
from pathlib import Path

from protege.config import DatasetFormat, EvalConfig, Execution, ExportConfig, ImproveMethod, WritableFormat
from protege.evaluate.actor import EXECUTIONS, PolicyActor
from protege.formats import FORMATS

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """Protege modules ``path`` imports anywhere in it (lazy imports inside functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("protege"):
            for alias in node.names:  # `from protege.x import y` imports module x.y when there is one
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found


def test_no_import_circles_lazy_ones_included() -> None:
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    graph = {name: imports(path, set(files)) - {name} for name, path in files.items()}
    circles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_registered_names_are_not_repeated_by_hand() -> None:
    assert typing.get_args(DatasetFormat) == ("auto", *FORMATS)
    assert typing.get_args(WritableFormat) == tuple(name for name, fmt in FORMATS.items() if fmt.writable)
    assert typing.get_args(Execution) == EXECUTIONS
    from protege.improve import METHODS  # improve imports config, so config spells the methods out; they must agree

    assert typing.get_args(ImproveMethod) == tuple(METHODS)
    assert typing.get_type_hints(EvalConfig)["execution"] == Execution
    assert typing.get_args(typing.get_type_hints(ExportConfig)["format"]) == typing.get_args(WritableFormat)
    assert all(callable(getattr(PolicyActor, f"_act_{name}", None)) for name in EXECUTIONS)


def test_import_protege_loads_no_training_and_no_family() -> None:
    code = "import sys, protege; print(' '.join(m for m in sys.modules if m.startswith('protege')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "protege.load_policy" not in loaded and not [m for m in loaded if m.startswith("protege.train")]
    families = {"protege.policies.mlp", "protege.policies.diffusion", "protege.policies.distilled"}
    assert not families & set(loaded), loaded


def test_benchmark_scripts_import() -> None:
    """A moved module breaks a benchmark script only when someone runs it; importing catches it now."""
    for script in sorted((SRC.parent / "benchmarks").glob("*.py")):
        code = f"import runpy; runpy.run_path({str(script)!r}, run_name='not_main')"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.name}: {result.stderr.strip().splitlines()[-1:]}"
    for script in sorted((SRC.parent / "benchmarks" / "peers").glob("*.py")):  # run in a peer's own venv
        compile(script.read_text(), str(script), "exec")
