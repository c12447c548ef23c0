"""Column type changes: whether every value survives (:func:`type_change`) and whether
PostgreSQL rewrites the table for it (:func:`pg_rewrites`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeEngine

from .helpers import _type_str

_INT_RANKS = {"TINYINT": 1, "SMALLINT": 2, "MEDIUMINT": 3, "BIGINT": 8}
_INT_DIGITS = {1: 3, 2: 5, 3: 7, 4: 10, 8: 19}  # decimal digits an integer of that rank can need
_TEXT_WIDTH = {"bool": 5, "int": 20, "uuid": 36, "date": 10}  # characters their text form can need


def _family(t: TypeEngine[Any]) -> str:
    checks: list[tuple[type[Any], str]] = [
        (sqltypes.Boolean, "bool"), (sqltypes.Integer, "int"), (sqltypes.Float, "float"),
        (sqltypes.Numeric, "numeric"), (sqltypes.Enum, "enum"), (sqltypes.String, "string"),
        (sqltypes.DateTime, "datetime"), (sqltypes.Date, "date"), (sqltypes.Time, "time"),
        (sqltypes.Interval, "interval"), (sqltypes._Binary, "binary"), (sqltypes.JSON, "json"),
        (sqltypes.Uuid, "uuid"), (sqltypes.ARRAY, "array"),
    ]  # fmt: skip
    for cls, family in checks:
        if isinstance(t, cls):
            return family
    return type(t).__name__.lower()


def _int_rank(t: TypeEngine[Any]) -> int:
    for cls in type(t).__mro__:
        rank = _INT_RANKS.get(cls.__name__.upper())
        if rank:
            return rank
        if cls is sqltypes.SmallInteger:
            return 2
        if cls is sqltypes.BigInteger:
            return 8
    return 4


def _float_bits(t: TypeEngine[Any]) -> int:
    precision = getattr(t, "precision", None)
    if isinstance(t, sqltypes.REAL) or (isinstance(precision, int) and precision <= 24):
        return 24
    return 53


def _length(t: TypeEngine[Any]) -> int | None:
    length = getattr(t, "length", None)
    return length if isinstance(length, int) else None


def _num(t: TypeEngine[Any]) -> tuple[int | None, int | None]:
    p, s = getattr(t, "precision", None), getattr(t, "scale", None)
    return (p if isinstance(p, int) else None, s if isinstance(s, int) else None)


def type_change(old: TypeEngine[Any] | None, new: TypeEngine[Any] | None) -> tuple[bool, str]:
    """(safe, why): whether every value of ``old`` survives the conversion to ``new``."""
    if old is None or new is None:
        return False, "the old type is unknown (no existing_type=), so nothing says every value fits"
    fo, fn = _family(old), _family(new)
    if fo == fn:
        if fo == "int":
            return (
                (True, "")
                if _int_rank(new) >= _int_rank(old)
                else (False, "values outside the new integer range are rejected (PostgreSQL) or clipped (MySQL)")
            )
        if fo == "string":
            lo, ln = _length(old), _length(new)
            if ln is None or (lo is not None and ln >= lo):
                return True, ""
            return False, f"values longer than {ln} characters are rejected (PostgreSQL) or cut (MySQL)"
        if fo == "enum":
            gone = [e for e in getattr(old, "enums", []) if e not in getattr(new, "enums", [])]
            return (True, "") if not gone else (False, f"rows holding {', '.join(map(repr, gone))} have no valid value")
        if fo == "numeric":
            (po, so), (pn, sn) = _num(old), _num(new)
            if pn is None:
                return True, ""
            if po is None:
                return False, f"values beyond NUMERIC({pn}, {sn or 0}) are rejected or rounded"
            if (sn or 0) < (so or 0):
                return False, "digits after the decimal point are rounded away"
            if pn - (sn or 0) < po - (so or 0):
                return False, "values with more integer digits than the new precision are rejected"
            return True, ""
        if fo == "float":
            return (
                (True, "")
                if _float_bits(new) >= _float_bits(old)
                else (False, "double precision values are rounded to single precision")
            )
        if fo == "datetime" and getattr(old, "timezone", False) and not getattr(new, "timezone", False):
            return False, "timestamps lose their time zone (they are converted to the session's zone)"
        return True, ""
    if fn == "string":
        width = _TEXT_WIDTH.get(fo)
        ln = _length(new)
        if ln is None or (width is not None and ln >= width):
            return True, ""
        return False, f"values whose text is longer than {ln} characters are rejected or cut"
    if fo in ("string", "enum"):
        return False, (f"text that does not read as {_type_str(new, 'default')} fails the migration (PostgreSQL needs "
                       "postgresql_using=), and a USING that coerces it loses it")  # fmt: skip
    if fo == "int" and fn == "numeric":
        pn, sn = _num(new)
        if pn is None or pn - (sn or 0) >= _INT_DIGITS.get(_int_rank(old), 19):
            return True, ""
        return False, "integers with more digits than the new precision are rejected"
    if fo == "int" and fn == "float":
        bits = _float_bits(new)
        if _int_rank(old) >= 8 or (bits == 24 and _int_rank(old) >= 4):
            return False, "large integers are rounded in floating point"
        return True, ""
    if fo == "bool" and fn in ("int", "numeric"):
        return True, ""
    if fo in ("numeric", "float") and fn == "int":
        if fo == "numeric":
            po, so = _num(old)
            if so == 0 and po is not None and po <= _INT_DIGITS.get(_int_rank(new), 19):
                return True, ""
        return False, "fractions are rounded away and large values are rejected"
    if fo == "numeric" and fn == "float":
        return False, "exact decimals become approximate floating point values"
    if fo == "float" and fn == "numeric":
        return (True, "") if _num(new)[0] is None else (False, "values are rounded to the new precision and scale")
    if fo in ("int", "numeric", "float") and fn == "bool":
        return False, "every non-zero value collapses to true"
    if fo == "date" and fn == "datetime":
        return True, ""
    if fo == "datetime" and fn in ("date", "time"):
        return False, "the date or the time of day is dropped"
    return False, f"converting {fo} values to {fn} may fail or lose values"


def pg_rewrites(old: TypeEngine[Any] | None, new: TypeEngine[Any] | None) -> bool:
    """Whether PostgreSQL rewrites the table (and its indexes) for this type change."""
    if old is None or new is None:
        return True
    fo, fn = _family(old), _family(new)
    if fo == fn == "string":
        lo, ln = _length(old), _length(new)
        return not (ln is None or (lo is not None and ln >= lo))
    if fo == fn == "numeric":
        (po, so), (pn, sn) = _num(old), _num(new)
        return not (pn is None or (po is not None and sn == so and pn >= po))
    try:
        return bool(_type_str(old, "postgresql") != _type_str(new, "postgresql"))
    except Exception:
        return True
