"""Code tokens of a definition (`alias|code` or `alias|code|display`) and their sanity checks.

The checks are those the clinical reference ran over its code list (clinical-reference.md §0):
SNOMED CT identifiers carry a Verhoeff check digit and LOINC codes a mod-10 check digit, so a
mistyped code is caught when the definition loads rather than never matching in production.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from pathways.definition.model import FAMILY_MARK
from pathways.definition.reader import Reader
from pathways.model import Coding

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"


def _dihedral_product(j: int, k: int) -> int:
    """Verhoeff's multiplication table: the dihedral group D5, 0-4 its rotations, 5-9 its reflections."""
    if j < 5:
        return (j + k) % 5 + (0 if k < 5 else 5)
    return (j - k) % 5 + (5 if k < 5 else 0)


def _powers(permutation: tuple[int, ...], count: int) -> tuple[tuple[int, ...], ...]:
    """The permutation applied 0, 1, ... count - 1 times: the rows of Verhoeff's position table."""
    rows = [tuple(range(len(permutation)))]
    while len(rows) < count:
        rows.append(tuple(permutation[n] for n in rows[-1]))
    return tuple(rows)


# Built rather than written out: the published tables are these two constructions.
_VERHOEFF_D = tuple(tuple(_dihedral_product(j, k) for k in range(10)) for j in range(10))
_VERHOEFF_P = _powers((1, 5, 7, 6, 2, 8, 3, 0, 9, 4), 8)


def verhoeff_valid(digits: str) -> bool:
    """True when the last digit is the Verhoeff check digit of the others (SNOMED CT ids)."""
    check = 0
    for position, digit in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(digit)]]
    return check == 0


def loinc_valid(code: str) -> bool:
    """True when a LOINC code's digit after the hyphen is its mod-10 check digit."""
    body, check = code.split("-")
    total = 0
    for position, digit in enumerate(reversed(body)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10 == int(check)


def _snomed(code: str) -> str | None:
    if not re.fullmatch(r"[1-9][0-9]{5,17}", code):
        return "is not a SNOMED CT identifier (6 to 18 digits)"
    return None if verhoeff_valid(code) else "fails the SNOMED CT Verhoeff check digit"


def _loinc(code: str) -> str | None:
    if not re.fullmatch(r"[0-9]{1,7}-[0-9]", code):
        return "is not a LOINC code (digits, hyphen, check digit)"
    return None if loinc_valid(code) else "fails the LOINC mod-10 check digit"


def _icd10cm(code: str) -> str | None:
    return None if re.fullmatch(r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?", code) else "is not an ICD-10-CM code"


def _cpt(code: str) -> str | None:
    return None if re.fullmatch(r"[0-9]{4}[0-9A-Z]", code) else "is not a CPT code (5 characters)"


_CHECKS: dict[str, Callable[[str], str | None]] = {SNOMED: _snomed, LOINC: _loinc, ICD10CM: _icd10cm, CPT: _cpt}


def _token_problem(code: str, system: str, *, family_allowed: bool) -> str | None:
    if not code or any(ch.isspace() for ch in code):
        return "has an empty code or a code with spaces"
    if code.upper() == "UNCONFIRMED":
        return "is an UNCONFIRMED placeholder, not a code"
    if code.endswith(FAMILY_MARK):
        if not family_allowed:
            return "is a family: only codes matched against facts may be families, never codes sent"
        if system != ICD10CM:
            return "is a family: only ICD-10-CM codes form families (other systems match exactly)"
        code = code.removesuffix(FAMILY_MARK)
    check = _CHECKS.get(system)
    return check(code) if check else None


def read_coding(
    reader: Reader, systems: Mapping[str, str], value: object, path: str, *, family_allowed: bool = False
) -> Coding | None:
    """Parse `alias|code` or `alias|code|display`; report and return None when it is bad.

    With `family_allowed`, an ICD-10-CM code may end in `*` to name a family (`icd10cm|M17*`).
    """
    if not isinstance(value, str) or value.count("|") not in (1, 2):
        reader.report(path, "must be a code written as system-alias|code or system-alias|code|display")
        return None
    alias, code, *display = value.split("|")
    system = systems.get(alias)
    if system is None:
        reader.report(path, f"unknown code system {alias!r} (declare it under systems)")
        return None
    problem = _token_problem(code, system, family_allowed=family_allowed)
    if problem:
        reader.report(path, f"{alias}|{code} {problem}")
        return None
    return Coding(system, code, display[0].strip() if display else "")
