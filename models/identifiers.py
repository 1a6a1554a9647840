"""The identifiers LDE takes from outside (staff ids, student ids, programme codes): one documented
pattern each, checked where they enter (the roster, staff and absence loaders, the roster topic, the
HTTP path), so that no identifier can carry a path, a separator or a control character into a file
name, a log line or a key (issue 22: a staff id `../../x` made the weekly report write outside its
folder).

The patterns (README, "Identifiers"):

- staff id and student id: a letter or digit, then up to 63 letters, digits, `.`, `_`, `@`, `+` or
  `-` (`S1042`, `DEMO-SEO`, `900412771`, `j.smith@example.ac.uk`);
- programme code: a letter or digit, then up to 31 letters, digits, `.`, `_` or `-` (`BSC-CS`).

Neither can be `.`, `..`, empty, absolute, or hold `/`, `\\`, `:`, a space or a control character.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

PERSON_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$"
PROGRAMME_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"

_PERSON_ID = re.compile(PERSON_ID_PATTERN)
_PROGRAMME_CODE = re.compile(PROGRAMME_CODE_PATTERN)

#: A staff or student id as the loaders take it (surrounding blanks stripped first).
PersonId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=PERSON_ID_PATTERN)]
ProgrammeCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=PROGRAMME_CODE_PATTERN)]

#: The HTTP path parameters that carry an identifier, and the pattern each must match.
PATH_PARAMETERS: dict[str, tuple[re.Pattern[str], str]] = {
    "student_id": (_PERSON_ID, "student id"),
    "staff_id": (_PERSON_ID, "staff id"),
    "programme_code": (_PROGRAMME_CODE, "programme code"),
}


def is_person_id(value: str) -> bool:
    return _PERSON_ID.fullmatch(value) is not None


def is_programme_code(value: str) -> bool:
    return _PROGRAMME_CODE.fullmatch(value) is not None


def path_refusal(params: dict[str, str]) -> str | None:
    """Why a request's path parameters cannot name anything (one that carries an identifier does not
    match its pattern), or None. The reason names the parameter, never quotes it."""
    for name, value in params.items():
        known = PATH_PARAMETERS.get(name)
        if known is not None and known[0].fullmatch(value) is None:
            return f"no such {known[1]}: not a valid {known[1]} (see README, Identifiers)"
    return None


def file_stem(identifier: str) -> str:
    """`identifier` as a file name stem, only if it is a valid staff or student id (a plain name, never
    a path); raises ValueError otherwise: file names are never built from unchecked input."""
    if not is_person_id(identifier):
        raise ValueError("not a valid staff or student id: no file name is made of it")
    return identifier
