"""Tests own their fixtures: no test reads outside the repository, and none skips because a file is
missing (issue 21). Read from the tests' source with ast; tests/conftest.py's audit hook catches at
run time what the source does not show (a path built from pieces)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tests import conftest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
#: Calls whose answer is whether a file or a program is there.
PRESENCE = frozenset({"exists", "is_dir", "is_file", "isfile", "isdir", "lexists", "which", "access"})
#: Names that skip or expect failure on a condition.
CONDITIONAL = frozenset({"skipif", "xfail"})


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (prose may say "shared"; code may not)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _mentions_file(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(node))


def _climb(node: ast.AST) -> int | None:
    """How many directories above the file an expression climbs (parents[N] or .parent chains on
    __file__), or None when it does not start from __file__."""
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
        index = node.slice
        if node.value.attr == "parents" and isinstance(index, ast.Constant) and isinstance(index.value, int):
            return index.value + 1 if _mentions_file(node.value) else None
    depth = 0
    while isinstance(node, ast.Attribute) and node.attr == "parent":
        depth, node = depth + 1, node.value
    return depth if depth and _mentions_file(node) else None


def outside_references(source: str, relative: Path) -> list[str]:
    """Where the source names a path outside the repository: the shared samples, an absolute path to
    /work, the samples' environment variable, or a climb from the file above the repository root."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    levels = len(relative.parts)  # parents[levels - 1] (levels x .parent) is the repository root
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{relative}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
            if text == "shared" or "shared/samples" in text or "LDE_SAMPLES_DIR" in text:
                found.append(f"{where}: names the shared samples ({text!r})")
            elif text == "/work" or text.startswith("/work/"):
                found.append(f"{where}: an absolute path outside the repository ({text!r})")
        climbed = _climb(node) if isinstance(node, ast.Subscript | ast.Attribute) else None
        if climbed is not None and climbed > levels:
            found.append(f"{where}: climbs {climbed} directories from the file, above the repository root")
    return found


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _asks_presence(node: ast.AST | None) -> bool:
    """Whether an expression asks if a file or program is there (or reads a samples constant)."""
    for n in ast.walk(node) if node is not None else ():
        if isinstance(n, ast.Call):
            name = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
            if name in PRESENCE:
                return True
        if isinstance(n, ast.Name) and "SAMPLES" in n.id:
            return True
    return False


def _name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def presence_skips(source: str, relative: Path) -> list[str]:
    """Skips, expected failures and half-run tests that hang on a file being there: a skipif or xfail
    whose condition asks for a file, pytest.skip or xfail under such an if, any importorskip, and an
    `if path.exists():` inside a test (the rest of the test quietly does not run without it)."""
    tree = ast.parse(source)
    up = _parents(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call | ast.If):
            continue
        where = f"{relative}:{node.lineno}"
        if isinstance(node, ast.Call) and _name(node) == "importorskip":
            found.append(f"{where}: importorskip (a missing module skips the test; fail instead)")
        elif isinstance(node, ast.Call) and _name(node) in CONDITIONAL:
            condition = (
                node.args[0]
                if node.args
                else next((k.value for k in node.keywords if k.arg == "condition"), None)
            )
            if _asks_presence(condition):
                found.append(f"{where}: {_name(node)} on a file being there")
        elif isinstance(node, ast.Call) and _name(node) in ("skip", "xfail"):
            parent = up.get(id(node))
            while parent is not None and not isinstance(parent, ast.If):
                parent = up.get(id(parent))
            if parent is not None and _asks_presence(parent.test):
                found.append(f"{where}: pytest.{_name(node)} when a file is missing")
        elif isinstance(node, ast.If) and _asks_presence(node.test):
            owner = up.get(id(node))
            while owner is not None and not isinstance(owner, ast.FunctionDef):
                owner = up.get(id(owner))
            if owner is not None and owner.name.startswith("test_"):
                found.append(f"{where}: part of {owner.name} runs only when a file is there")
    return found


def sources() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def test_no_test_names_a_path_outside_the_repository() -> None:
    found = [
        problem
        for path in sources()
        if path != Path(__file__).resolve()  # this file's examples of what is refused
        for problem in outside_references(path.read_text(), path.relative_to(ROOT))
    ]
    assert found == [], "tests read only the repository's own files (tests/fixtures):\n" + "\n".join(found)


def test_no_test_skips_because_a_file_is_missing() -> None:
    found = [
        problem for path in sources() for problem in presence_skips(path.read_text(), path.relative_to(ROOT))
    ]
    assert found == [], "a missing file must fail the test, saying what is missing:\n" + "\n".join(found)


# -- the checks find what they look for ----------------------------------------------------------------

HERE = Path("tests/unit/models/test_x.py")  # three directories below the root


@pytest.mark.parametrize(
    "line",
    [
        'SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "samples"',
        'SAMPLES = Path(__file__).resolve().parents[4] / "samples"',
        "BESIDE = Path(__file__).parent.parent.parent.parent.parent",
        'SAMPLES = Path("../shared/samples")',
        'SAMPLES = Path("/work/shared/samples")',
        'SAMPLES = Path(os.environ["LDE_SAMPLES_DIR"])',
    ],
)
def test_outside_references_are_found(line: str) -> None:
    assert outside_references(line, HERE), line


@pytest.mark.parametrize(
    "line",
    [
        "ROOT = Path(__file__).resolve().parents[3]",
        "ROOT = Path(__file__).parent.parent.parent.parent",
        'FIXTURES = Path(__file__).resolve().parent / "fixtures"',
        'def f():\n    """Reads the shared samples? No: its own."""',
        "CHROMIUM = Path('/usr/bin/chromium')",
        "first = tmp_path.parents[5]",
    ],
)
def test_paths_inside_the_repository_pass(line: str) -> None:
    assert outside_references(line, HERE) == [], line


@pytest.mark.parametrize(
    "source",
    [
        '@pytest.mark.skipif(not SAMPLES.is_dir(), reason="no samples")\ndef test_a(): pass',
        '@pytest.mark.skipif(SAMPLES is None, reason="no samples")\ndef test_a(): pass',
        'pytestmark = [pytest.mark.skipif(not Path("x").exists(), reason="")]',
        "@pytest.mark.xfail(condition=not os.path.isfile('x'), reason='')\ndef test_a(): pass",
        "def test_a():\n    if SAMPLES.exists():\n        assert load(SAMPLES)\n",
        "def helper():\n    if not shutil.which('npm'):\n        pytest.skip('no npm')\n",
        "yaml = pytest.importorskip('yaml')",
    ],
)
def test_skips_on_a_missing_file_are_found(source: str) -> None:
    assert presence_skips(source, HERE), source


@pytest.mark.parametrize(
    "source",
    [
        "@pytest.mark.skipif(sys.platform == 'win32', reason='POSIX only')\ndef test_a(): pass",
        "def helper():\n    if not shutil.which('npm'):\n        pytest.fail('npm is missing')\n",
        "def test_a(tmp_path):\n    assert (tmp_path / 'x').exists()\n",
        "def fixture():\n    if not cache.exists():\n        download(cache)\n",
    ],
)
def test_other_conditions_pass(source: str) -> None:
    assert presence_skips(source, HERE) == [], source


# -- the audit hook (tests/conftest.py) ----------------------------------------------------------------


def test_opening_a_file_beside_the_repository_fails_the_test_where_it_opens() -> None:
    beside = conftest.BESIDE / "no-such-samples-folder" / "roster.csv"
    try:
        with pytest.raises(conftest.OutsideRepository, match="outside the repository"):
            beside.open()  # refused before the file system is asked: it need not exist
        with pytest.raises(conftest.OutsideRepository):
            os.listdir(conftest.BESIDE / "no-such-samples-folder")
        assert [str(beside), str(beside.parent)] == conftest.OPENED_BESIDE
    finally:
        conftest.OPENED_BESIDE.clear()  # this test's own opens are the expected ones


@pytest.mark.parametrize(
    ("target", "beside"),
    [
        (conftest.BESIDE / "shared" / "samples" / "roster.csv", True),
        (str(conftest.BESIDE / "other-checkout" / "x.py").encode(), True),
        (conftest.REPOSITORY / "tests" / "fixtures" / "upstream" / "roster.csv", False),
        (conftest.REPOSITORY / "tests" / ".." / ".." / "shared" / "x.csv", True),  # climbs out
        (conftest.REPOSITORY, False),
        (Path("/usr/bin/chromium"), False),  # tools and the system are not beside the repository
        (7, False),  # a file descriptor
        (None, False),
    ],
)
def test_what_counts_as_beside_the_repository(target: object, beside: bool) -> None:
    assert (conftest.outside_repository(target) is not None) is beside


@pytest.mark.parametrize(
    ("repository", "path", "beside"),
    [
        # a clone kept in the temporary directory: pytest's and tempfile's folders are scratch
        ("/tmp/h3-clone", "/tmp/shared/samples/roster.csv", True),
        ("/tmp/h3-clone", "/tmp/other-clone/tests/fixtures/x.csv", True),
        ("/tmp/h3-clone", "/tmp/pytest-of-root/pytest-7/test_a0/lde/roster.csv", False),
        ("/tmp/h3-clone", "/tmp/tmpq1w2e3r4/data.json", False),
        ("/tmp/h3-clone", "/tmp/h3-clone/tests/fixtures/upstream/roster.csv", False),
        # the temporary directory itself, listed when a scratch folder is made (CI's clone in /tmp)
        ("/tmp/lde-fresh", "/tmp", False),
        ("/tmp/lde-fresh", "/tmp/lde-other/README.md", True),
        # a clone inside a scratch folder: that folder is the one watched
        ("/tmp/tmpq1w2e3r4/repo", "/tmp/tmpq1w2e3r4/shared/samples/roster.csv", True),
        ("/tmp/tmpq1w2e3r4/repo", "/tmp/pytest-of-root/test_a0/x", False),
        # a clone in a folder of its own under the temporary directory
        ("/tmp/isolated/repo", "/tmp/isolated/shared/samples/roster.csv", True),
        ("/tmp/isolated/repo", "/tmp/pytest-of-root/test_a0/x", False),
    ],
)
def test_a_clone_in_the_temporary_directory(repository: str, path: str, beside: bool) -> None:
    found = conftest.outside_repository(path, repository=Path(repository), temp=Path("/tmp"))
    assert (found is not None) is beside


def test_a_relative_path_is_read_from_the_working_directory() -> None:
    cwd = str(conftest.REPOSITORY / "tests")
    assert conftest.outside_repository("../../shared/samples/roster.csv", cwd=cwd) is not None
    assert conftest.outside_repository("fixtures/upstream/roster.csv", cwd=cwd) is None
