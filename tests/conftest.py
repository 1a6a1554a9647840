"""The whole suite's guards: no test reads a file beside the repository; no property test is timed.

A clone tests what the README says on its own only if no test reads a sample folder or a sibling
checkout beside it. An audit hook (PEP 578) sees every file or directory the test process opens;
one under the repository's parent directory but outside the repository fails at the open (so the
test stops where it reads) and again when the test ends (in case the code that opened it swallowed
the error). tests/unit/test_self_contained.py checks the source for the same, and for skips that
hide a missing file. Child processes (the service under test) are not watched: what they read is
what the tests give them, and the static check covers the paths in the tests' source.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

#: Property tests judge behaviour, never speed (speed lives in `make bench`): no per-example deadline,
#: so a loaded machine (CI, two test processes) cannot fail one.
settings.register_profile("lde", deadline=None)
settings.load_profile("lde")

#: The services the tests start ask faster than any member of staff (a role matrix, route fuzzing,
#: a browser's page and its assets): a worker's page budget and two-place queue would shed them; and
#: on a machine running three test processes, a service's web loop is now and then late by more than
#: the half second that sheds pages; and a read asked while a day is judged is shed too. Those are
#: tested on their own (tests/unit/ops/staff/test_pool.py; the integration staff-load tests set their
#: own pool), so every other service under test runs without them (they reach it through the
#: environment the service process inherits).
os.environ.setdefault("LDE_WORKER_PAGES_PER_SECOND", "0")
os.environ.setdefault("LDE_WEB_QUEUE", "8")
os.environ.setdefault("LDE_WEB_SHED_LOOP_LAG_SECONDS", "30")
os.environ.setdefault("LDE_WEB_SHED_WHILE_JUDGING", "false")

REPOSITORY = Path(__file__).resolve().parents[1]
BESIDE = REPOSITORY.parent
#: The temporary directory, where tempfile and pytest make the tests' scratch folders.
TEMP = Path(tempfile.gettempdir()).resolve()
#: How those scratch folders are named (tempfile's default prefix; pytest's per-user base).
SCRATCH = ("tmp", "pytest-of-")
#: Events whose first argument is a path the process reads (files, then directory listings).
WATCHED = frozenset({"open", "os.listdir", "os.scandir"})


class OutsideRepository(RuntimeError):
    """A test opened a file beside the repository: the fixture belongs in tests/fixtures."""


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _allowed_roots() -> tuple[str, ...]:
    """The interpreter's own folders when they happen to lie beside the repository (a shared venv)."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots = {os.path.abspath(p) for p in prefixes} | {os.path.realpath(p) for p in prefixes}
    beside = str(BESIDE)
    return tuple(sorted(r for r in roots if _inside(r, beside) and not _inside(str(REPOSITORY), r)))


def scratch(path: str, *, repository: Path = REPOSITORY, temp: Path = TEMP) -> bool:
    """Whether `path` is in a scratch folder of the temporary directory (a clone kept in /tmp has
    pytest's tmp_path beside it), unless the repository itself lives in that folder."""
    if not _inside(path, str(temp)) or path == str(temp):
        return False
    first = path[len(str(temp).rstrip(os.sep)) + 1 :].split(os.sep, 1)[0]
    return first.startswith(SCRATCH) and not _inside(str(repository), str(temp / first))


def outside_repository(
    target: object, *, cwd: str | None = None, repository: Path = REPOSITORY, temp: Path = TEMP
) -> str | None:
    """The absolute path if `target` (an open()'s first argument) lies beside the repository: under
    its parent directory, outside it, and neither the interpreter's nor a temporary scratch folder."""
    if not isinstance(target, str | bytes | os.PathLike):
        return None  # a file descriptor, or the current directory's listing
    path = os.path.normpath(os.path.join(cwd or os.getcwd(), os.fsdecode(target)))
    if not _inside(path, str(repository.parent)) or _inside(path, str(repository)):
        return None
    if any(_inside(path, root) for root in ALLOWED) or scratch(path, repository=repository, temp=temp):
        return None
    if path == str(temp):  # the temporary directory itself (listed when scratch folders are made)
        return None
    return path


ALLOWED = _allowed_roots()
#: Paths opened beside the repository since the last test ended.
OPENED_BESIDE: list[str] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event not in WATCHED or not args:
        return
    path = outside_repository(args[0])
    if path is not None:
        OPENED_BESIDE.append(path)
        raise OutsideRepository(
            f"a test opened {path}, outside the repository {REPOSITORY}: tests read only their own "
            "fixtures (put the file under tests/fixtures, or generate it in the test)"
        )


sys.addaudithook(_audit)  # an audit hook cannot be removed: it lasts the whole session


@pytest.fixture(autouse=True)
def _nothing_opened_beside_the_repository() -> Iterator[None]:
    """Fails the test in whose run (its fixtures' setup included) something beside was opened."""
    yield
    opened = list(OPENED_BESIDE)
    OPENED_BESIDE.clear()
    assert not opened, f"the test opened files outside the repository {REPOSITORY}: {opened}"
