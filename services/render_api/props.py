"""Scene props (a google.protobuf.Struct) as JSON-like values, and their compact size.

`json_format.MessageToDict` walks a Struct through protobuf's generic JSON printer: it was
the largest part of validating a StartRender (about 20 µs a scene). `struct_dict` gives
the same dict (same keys in the same order, numbers as floats, null as None) directly;
a NaN or infinite number, which the printer refuses, goes to the printer to be refused
exactly as before.
"""

from __future__ import annotations

import json
import math
from typing import Any

from google.protobuf import json_format, struct_pb2

# json.dumps(value, separators=(",", ":")) builds an encoder on every call; one made once
# gives the same text.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


class _NotFinite(Exception):
    """A number the JSON printer refuses (NaN, infinity)."""


def struct_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """`json_format.MessageToDict(struct)`, faster."""
    try:
        return _fields(struct)
    except _NotFinite:
        return json_format.MessageToDict(struct)


def compact_size(value: Any) -> int:
    """len(json.dumps(value, separators=(",", ":")))."""
    return len(_COMPACT.encode(value))


def _fields(struct: struct_pb2.Struct) -> dict[str, Any]:
    fields = struct.fields
    return {key: _value(fields[key]) for key in fields}


def _value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if math.isinf(number) or math.isnan(number):
            raise _NotFinite
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _fields(value.struct_value)
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    return None  # null_value, or no kind set
