"""Finding the JSON object in a model's output, and checking it against a schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._errors import ModelOutputError

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: bare, inside code fences, or amid prose."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    raise ModelOutputError(f"no JSON object in the output: {text[:120]!r}")


def check_schema(value: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Required keys present and top-level types right; clamping is the caller's job."""
    for key in schema.get("required", ()):
        if key not in value:
            raise ModelOutputError(f"the output lacks {key!r}")
    properties = schema.get("properties", {})
    for key, spec in properties.items():
        if key not in value or not isinstance(spec, Mapping) or "type" not in spec:
            continue
        wanted = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        kinds = tuple(t for name in wanted for t in _TYPES.get(name, (object,)))
        item = value[key]
        if isinstance(item, bool) and "boolean" not in wanted:
            raise ModelOutputError(f"{key!r} is not a {'/'.join(wanted)}")
        if not isinstance(item, kinds):
            raise ModelOutputError(f"{key!r} is not a {'/'.join(wanted)}")
    return value


def schema_prompt(schema: Mapping[str, Any]) -> str:
    """An instruction asking for one JSON object matching ``schema``, for a prompt.

    Used when the server cannot be handed the schema itself (``response_format``
    json_object or none): the model reads it instead, and the tolerant
    extractor above finds the object in whatever comes back.
    """
    text = "Reply with one JSON object and nothing else."
    if schema:
        text += " It must match this JSON schema: " + json.dumps(
            dict(schema), separators=(",", ":"), sort_keys=True
        )
    return text
