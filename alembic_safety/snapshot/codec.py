"""Typed JSON lines for the generic engine: one JSON array per row, lossless for every value a
DB-API driver returns (NULL, integers, floats incl. NaN/inf, exact decimals, text, bytes,
dates/times with their zones, intervals, UUIDs, JSON documents, arrays).

Plain JSON values stand for themselves; other values are tagged one-key objects
(``{"$d": "1.10"}``).  Rows are read and written as raw driver values (no SQLAlchemy type
processing), so what comes back is exactly what the driver handed out.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode


def _enc(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, Decimal):
        return {"$d": str(v)}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$b": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, dt.datetime):
        return {"$dt": v.isoformat()}
    if isinstance(v, dt.date):
        return {"$date": v.isoformat()}
    if isinstance(v, dt.time):
        return {"$t": v.isoformat()}
    if isinstance(v, dt.timedelta):
        return {"$td": [v.days, v.seconds, v.microseconds]}
    if isinstance(v, uuid.UUID):
        return {"$u": str(v)}
    if isinstance(v, dict):
        return {"$j": v}
    if isinstance(v, (list, tuple)):
        return {"$a": [_enc(x) for x in v]}
    return {"$s": str(v)}


def _dec(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    ((tag, val),) = v.items()
    if tag == "$d":
        return Decimal(val)
    if tag == "$b":
        return base64.b64decode(val)
    if tag == "$dt":
        return dt.datetime.fromisoformat(val)
    if tag == "$date":
        return dt.date.fromisoformat(val)
    if tag == "$t":
        return dt.time.fromisoformat(val)
    if tag == "$td":
        return dt.timedelta(days=val[0], seconds=val[1], microseconds=val[2])
    if tag == "$u":
        return uuid.UUID(val)
    if tag == "$j":
        return val
    if tag == "$a":
        return [_dec(x) for x in val]
    if tag == "$s":
        return val
    raise ValueError(f"unknown value tag {tag!r}")


def encode_row(row: Any) -> bytes:
    return (_dumps([_enc(v) for v in row]) + "\n").encode("utf-8")


def decode_row(line: bytes) -> list[Any]:
    values = json.loads(line)
    if not isinstance(values, list):
        raise ValueError("a row must be a JSON array")
    return [_dec(v) for v in values]
