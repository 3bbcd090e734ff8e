"""What a JSON schema may ask of an answer, as r1chat's grammars hold an answer to it.

`prepared(schema)` checks a schema and rewrites it into the forms the grammar builder
(`engine.local.grammar`, over llama-cpp-python's converter) enforces. A keyword that
limits values but cannot be enforced is refused by name (`BadSchema`), never ignored: every
answer given under a schema validates against it. The rewrites:

- annotations (`description`...) and `format`s the grammar does not hold dropped (JSON
  Schema asserts no `format` by default); `true` is `{}`;
- `allOf` merged into one schema; keywords beside `anyOf`/`oneOf` or a list of types
  merged into each alternative; a node without `type` given the one its keywords imply;
- required properties missing from `properties` added; arrays with bounds given `items`;
  an unanchored `pattern` anchored (a whole match is a match);
- numeric bounds turned into the ranges of whole numbers and of fractions that lie inside
  them (`RANGES`), which the grammar builder writes out digit by digit.

Not checked: `oneOf`'s "exactly one" where its alternatives overlap.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from r1chat.core.errors import BadSchema

TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")
ANNOTATIONS = {
    *("description", "title", "examples", "default", "$comment", "deprecated"),
    *("readOnly", "writeOnly", "$schema", "$id", "contentEncoding", "contentMediaType"),
}
FORMATS = {"date", "time", "date-time", "uuid"}
"""The `format`s the grammar holds a string to; any other is an annotation."""
BY_TYPE = {
    "string": {"minLength", "maxLength", "pattern", "format"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "array": {
        *("items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems"),
        *("contains", "minContains", "maxContains", "unevaluatedItems"),
    },
    "object": {
        *("properties", "required", "additionalProperties", "patternProperties"),
        *("propertyNames", "minProperties", "maxProperties", "dependentRequired"),
        *("dependentSchemas", "unevaluatedProperties"),
    },
}
NEVER = ("not", "if", "then", "else", "dependencies")
MOST_REPEATS = 16_384
"""The grammar writes a bound out as that many copies of a rule: past this many,
llama.cpp's grammar takes seconds to build, and crashes soon after (Claude Code's Workflow
tool says `maxLength: 524288`). An upper bound past it is left to `max_tokens` (a reply
that long is 4,000 tokens and more), a lower bound past it refused (no reply reaches it)."""
RANGES = "x-r1chat-ranges"
"""Where a prepared number keeps its ranges: `[whole, positive, negative]`, each `[lo, hi]`
(None: unbounded) or None (empty). `whole`: the whole numbers allowed; `positive`: the
whole parts `n` for which every `n.ddd` (ddd not all zeros) is allowed; `negative`: the
`n` for which every `-n.ddd` is."""


_UNHELD = "r1chat cannot hold an answer to it; leave it out"


ANY = {"type": ["object", "array", "string", "number", "boolean", "null"]}
"""Any value, as the converter takes it (it reads `{}` as any object)."""


def prepared(schema: Any) -> Any:
    """`schema` checked and rewritten for the grammar builder (raises `BadSchema`)."""
    return _Walk(schema).node(schema, "")


def check(schema: Any) -> None:
    """Raise `BadSchema` if an answer cannot be held to `schema`."""
    prepared(schema)


def _refuse(path: str, keyword: str, why: str) -> BadSchema:
    where = f" at {path.lstrip('.')}" if path else ""
    return BadSchema(f"{keyword}{where}: {why}" if keyword else f"the schema{where}: {why}")


def _whole(value: Any, path: str, keyword: str) -> int:
    """A count (`minItems`...): a whole number, at least 0."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or value < 0 or value != math.floor(value):
        raise _refuse(path, keyword, f"{value!r} is not a whole number of at least 0")
    return int(value)


def _number(value: Any, path: str, keyword: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise _refuse(path, keyword, f"{value!r} is not a number")
    return value


class _Walk:
    def __init__(self, root: Any) -> None:
        self.root = root

    def node(self, s: Any, path: str) -> Any:
        if s is True:
            return dict(ANY)
        if s is False:
            raise _refuse(path, "", "false, so no value fits")
        if not isinstance(s, dict):
            raise _refuse(path, "", "a schema is an object (or true)")
        s = {k: v for k, v in s.items() if k not in ANNOTATIONS}
        if "format" in s and s["format"] not in FORMATS:
            del s["format"]
        for keyword in NEVER:
            if keyword in s:
                raise _refuse(path, keyword, _UNHELD)
        defs = {k: s.pop(k) for k in ("$defs", "definitions") if k in s}
        out = self._node(s, path)
        for key, table in defs.items():
            if not isinstance(table, dict):
                raise _refuse(path, key, "must be an object of schemas")
            out[key] = {name: self.node(sub, f"{path}.{key}.{name}") for name, sub in table.items()}
        return out

    def _node(self, s: dict[str, Any], path: str) -> dict[str, Any]:
        if "$ref" in s:
            return self._ref(s, path)
        if "allOf" in s:
            parts = s.pop("allOf")
            if not isinstance(parts, list) or not parts:
                raise _refuse(path, "allOf", "must be a non-empty list of schemas")
            merged: dict[str, Any] = s
            for i, part in enumerate(parts):
                merged = _merge(merged, self.target(part, f"{path}.allOf[{i}]"), path)
            return self._node(merged, path)
        if "anyOf" in s or "oneOf" in s:
            return self._alternatives(s, path)
        kind = s.get("type")
        if isinstance(kind, list):
            if not kind:
                raise _refuse(path, "type", "an empty list, so no value fits")
            if len(kind) > 1:
                rest = {k: v for k, v in s.items() if k != "type"}
                return self._node({"anyOf": [{**rest, "type": t} for t in kind]}, path)
            kind = s["type"] = kind[0]
        if "enum" in s or "const" in s:
            return self._values(s, path)
        if kind is None:
            kind = self._implied(s, path)
            if kind is None:
                return dict(ANY)  # (keywords JSON Schema does not know limit nothing)
            s["type"] = kind
        if kind not in TYPES:
            raise _refuse(path, "type", f"{kind!r} is not a JSON Schema type")
        family = "number" if kind == "integer" else kind
        s = {k: v for k, v in s.items() if k not in _OTHERS[family]}
        match family:
            case "object":
                return self._object(s, path)
            case "array":
                return self._array(s, path)
            case "string":
                return _string(s, path)
            case "number":
                return _numeric(s, path)
        return s

    def target(self, s: Any, path: str) -> dict[str, Any]:
        """The schema `s` is, or the one its `$ref` points at (for merging)."""
        seen: set[str] = set()
        while isinstance(s, dict) and set(s) - ANNOTATIONS == {"$ref"}:
            ref = s["$ref"]
            if ref in seen:
                raise _refuse(path, "$ref", f"{ref} refers to itself")
            seen.add(ref)
            s = self._pointed(ref, path)
        if s is True:
            return {}
        if not isinstance(s, dict):
            raise _refuse(path, "", "false, so no value fits" if s is False else "not a schema")
        return dict(s)

    def _pointed(self, ref: Any, path: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _refuse(path, "$ref", f"{ref!r}: only references inside the schema (#/...)")
        here: Any = self.root
        for part in ref[1:].lstrip("/").split("/") if ref not in ("#", "#/") else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(here, dict) and part in here:
                here = here[part]
            elif isinstance(here, list) and part.isdigit() and int(part) < len(here):
                here = here[int(part)]
            else:
                raise _refuse(path, "$ref", f"{ref} points at nothing")
        return here

    def _ref(self, s: dict[str, Any], path: str) -> dict[str, Any]:
        beside = sorted(set(s) - {"$ref"})
        if beside:
            raise _refuse(
                path, beside[0], "beside $ref: put it in the schema $ref points at, or in allOf"
            )
        self.target(s, path)  # (it exists, and is not a loop of references)
        return s

    def _alternatives(self, s: dict[str, Any], path: str) -> dict[str, Any]:
        if "anyOf" in s and "oneOf" in s:
            raise _refuse(path, "oneOf", "beside anyOf: join them with allOf")
        key = "anyOf" if "anyOf" in s else "oneOf"
        alternatives = s.pop(key)
        if not isinstance(alternatives, list) or not alternatives:
            raise _refuse(path, key, "must be a non-empty list of schemas")
        if s:  # keywords beside the alternatives hold in each
            alternatives = [
                _merge(s, self.target(a, f"{path}.{key}[{i}]"), f"{path}.{key}[{i}]")
                for i, a in enumerate(alternatives)
            ]
        return {key: [self.node(a, f"{path}.{key}[{i}]") for i, a in enumerate(alternatives)]}

    def _values(self, s: dict[str, Any], path: str) -> dict[str, Any]:
        values = [s["const"]] if "const" in s else s["enum"]
        if not isinstance(values, list) or not values:
            raise _refuse(path, "enum", "empty, so no value fits")
        kind = s.get("type")
        if kind is not None:
            values = [v for v in values if _is(v, kind)]
            if not values:
                raise _refuse(path, "enum", f"none of its values is of type {kind}")
        beside = sorted(set(s) - {"enum", "const", "type"})
        if beside:
            raise _refuse(path, beside[0], "beside enum or const: list only the values it allows")
        if "const" in s and "enum" in s and s["const"] not in s["enum"]:
            raise _refuse(path, "const", "not one of enum's values, so no value fits")
        return {"enum": values}

    def _implied(self, s: dict[str, Any], path: str) -> str | None:
        """The type a node without one means by its keywords (None: any value)."""
        families = [t for t, keys in BY_TYPE.items() if keys & set(s)]
        if len(families) > 1:
            raise _refuse(path, "type", f"missing, and its keywords are for {families}: give one")
        return families[0] if families else None

    def _object(self, s: dict[str, Any], path: str) -> dict[str, Any]:
        properties = s.get("properties", {})
        if not isinstance(properties, dict):
            raise _refuse(path, "properties", "must be an object of schemas")
        extra = s.get("additionalProperties")
        if extra is not None and not isinstance(extra, bool | dict):
            raise _refuse(path, "additionalProperties", "must be a schema or a boolean")
        required = s.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise _refuse(path, "required", "must be a list of property names")
        out: dict[str, Any] = {"type": "object"}
        props = {n: self.node(p, f"{path}.properties.{n}") for n, p in properties.items()}
        for name in required:
            if name not in props:
                if extra is False:
                    raise _refuse(
                        path,
                        "required",
                        f"{name!r} is not in properties, and "
                        "additionalProperties is false: no object fits",
                    )
                props[name] = self.node(extra if extra else {}, f"{path}.additionalProperties")
        if "properties" in s or "required" in s or extra is not None:
            out["properties"] = props
        if required:
            out["required"] = list(dict.fromkeys(required))
        if isinstance(extra, dict):
            out["additionalProperties"] = self.node(extra, f"{path}.additionalProperties")
        elif extra is not None:
            out["additionalProperties"] = extra
        closed = "properties" in out and extra in (None, False)  # (no others are written)
        names = s.get("propertyNames")
        if names not in (None, True, {}, {"type": "string"}) and not closed:
            raise _refuse(
                path,
                "propertyNames",
                "the names of additional properties cannot be held "
                "to it; list the properties, with additionalProperties false",
            )
        if names not in (None, True, {}, {"type": "string"}):
            for name in props:
                if not _name_fits(name, names):
                    raise _refuse(path, "propertyNames", f"property {name!r} does not fit it")
        if "minProperties" in s:
            least = _whole(s["minProperties"], path, "minProperties")
            if least > len(out.get("required", [])):
                raise _refuse(
                    path,
                    "minProperties",
                    "more than the required properties: list them in required",
                )
        if "maxProperties" in s:
            most = _whole(s["maxProperties"], path, "maxProperties")
            if not closed or len(props) > most:
                raise _refuse(
                    path,
                    "maxProperties",
                    "an answer cannot be held to it unless it allows "
                    "no more properties than it lists (additionalProperties false)",
                )
        for keyword in ("patternProperties", "dependentRequired", "dependentSchemas"):
            if s.get(keyword):
                raise _refuse(path, keyword, _UNHELD)
        if s.get("unevaluatedProperties") not in (None, True, {}):
            raise _refuse(path, "unevaluatedProperties", "use additionalProperties instead")
        return out

    def _array(self, s: dict[str, Any], path: str) -> dict[str, Any]:
        least = _whole(s.get("minItems", 0), path, "minItems")
        most = _whole(s["maxItems"], path, "maxItems") if "maxItems" in s else None
        if most is not None and most < least:
            raise _refuse(path, "minItems", f"{least} is more than maxItems {most}: no array fits")
        items = s.get("items")
        tuple_items = s.get("prefixItems")
        if isinstance(items, list):  # (draft 4's tuples)
            tuple_items, items = items, s.get("additionalItems", True)
        if s.get("uniqueItems") and (most is None or most > 1):
            raise _refuse(path, "uniqueItems", _UNHELD)
        for keyword in ("contains", "minContains", "maxContains"):
            if keyword in s:
                raise _refuse(path, keyword, _UNHELD)
        if s.get("unevaluatedItems") not in (None, True, {}):
            raise _refuse(path, "unevaluatedItems", _UNHELD)
        out: dict[str, Any] = {"type": "array"}
        if tuple_items is not None:  # exactly the tuple (more items are never needed)
            if not isinstance(tuple_items, list):
                raise _refuse(path, "prefixItems", "must be a list of schemas")
            n = len(tuple_items)
            if n < least or (most is not None and n > most):
                raise _refuse(path, "prefixItems", f"{n} items do not fit minItems/maxItems")
            out["prefixItems"] = [
                self.node(t, f"{path}.prefixItems[{i}]") for i, t in enumerate(tuple_items)
            ]
            return out
        if items is False:
            if least:
                raise _refuse(path, "minItems", "items is false: no array fits")
            return {"type": "array", "maxItems": 0, "items": {"const": None}}
        if least > MOST_REPEATS:
            raise _refuse(
                path, "minItems", f"{least:,}: no reply is that long (at most {MOST_REPEATS:,})"
            )
        if items is not None or least or most is not None:
            out["items"] = self.node(items if items is not None else {}, f"{path}.items")
            if least:
                out["minItems"] = least
            if most is not None and most <= MOST_REPEATS:
                out["maxItems"] = most
        return out


_OTHERS = {
    family: set().union(*(keys for other, keys in BY_TYPE.items() if other != family))
    for family in (*BY_TYPE, "boolean", "null")
}


_LEAST = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_MOST = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


def _merge(a: dict[str, Any], b: dict[str, Any], path: str) -> dict[str, Any]:
    """One schema that allows what both `a` and `b` allow (allOf)."""
    a = {k: v for k, v in a.items() if k not in ANNOTATIONS}
    b = {k: v for k, v in b.items() if k not in ANNOTATIONS}
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
            continue
        mine = out[key]
        if mine == value:
            continue
        if key == "required":
            out[key] = list(dict.fromkeys([*mine, *value]))
        elif key == "properties":
            out[key] = {**mine, **value}
            for name in set(mine) & set(value):
                out[key][name] = _merge(mine[name], value[name], f"{path}.properties.{name}")
        elif key == "type":
            out[key] = _common_type(mine, value, path)
        elif key in _LEAST and _numbers(mine, value):
            out[key] = max(mine, value)
        elif key in _MOST and _numbers(mine, value):
            out[key] = min(mine, value)
        elif key == "enum" and isinstance(mine, list) and isinstance(value, list):
            out[key] = [v for v in mine if v in value]
        elif key in ("items", "additionalProperties") and isinstance(mine, dict | bool):
            out[key] = _merge_schemas(mine, value, f"{path}.{key}")
        else:
            raise _refuse(path, key, "differs between the schemas allOf joins")
    for side in (a, b):  # a side that allows no other properties
        if side.get("additionalProperties") is False:
            allowed = set(side.get("properties", {}))
            others = set(out.get("properties", {})) - allowed
            if others & set(out.get("required", [])):
                raise _refuse(
                    path,
                    "additionalProperties",
                    "false in one schema allOf joins, "
                    "which another requires more of: no object fits",
                )
            out["properties"] = {k: v for k, v in out.get("properties", {}).items() if k in allowed}
            out["additionalProperties"] = False
    return out


def _merge_schemas(a: Any, b: Any, path: str) -> Any:
    if a is False or b is False:
        return False
    return _merge(a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}, path)


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _common_type(a: Any, b: Any, path: str) -> Any:
    def kinds(t: Any) -> set[str]:
        return set(t) if isinstance(t, list) else {t}

    left, right = kinds(a), kinds(b)
    both = left & right
    if ("integer" in left and "number" in right) or ("number" in left and "integer" in right):
        both.add("integer")
    if not both:
        raise _refuse(path, "allOf", f"type {a} and type {b} have no value in common")
    return sorted(both)[0] if len(both) == 1 else sorted(both)


def _is(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, list) else [kind]
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: (
            (isinstance(v, int) and not isinstance(v, bool))
            or (isinstance(v, float) and v.is_integer())
        ),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    return any(checks.get(k, lambda v: False)(value) for k in kinds)


def _name_fits(name: str, names: Any) -> bool:
    """Whether a property name fits a `propertyNames` schema (the string keywords)."""
    if not isinstance(names, dict):
        return names is not False
    if "enum" in names and name not in names["enum"]:
        return False
    if "const" in names and name != names["const"]:
        return False
    if "pattern" in names and not re.search(names["pattern"], name):
        return False
    return names.get("minLength", 0) <= len(name) <= names.get("maxLength", len(name))


def _string(s: dict[str, Any], path: str) -> dict[str, Any]:
    least = _whole(s.get("minLength", 0), path, "minLength")
    most = _whole(s["maxLength"], path, "maxLength") if "maxLength" in s else None
    if most is not None and most < least:
        raise _refuse(path, "minLength", f"{least} is more than maxLength {most}: no string fits")
    if least > MOST_REPEATS:
        raise _refuse(
            path, "minLength", f"{least:,}: no reply is that long (at most {MOST_REPEATS:,})"
        )
    out: dict[str, Any] = {"type": "string"}
    bounded = bool(least) or most is not None
    if "pattern" in s:
        pattern = s["pattern"]
        if not isinstance(pattern, str):
            raise _refuse(path, "pattern", "must be a regular expression")
        if bounded:
            raise _refuse(path, "minLength", "beside pattern: put the length in the pattern")
        if not (pattern.startswith("^") and pattern.endswith("$")):
            pattern = f"^({pattern.removeprefix('^').removesuffix('$')})$"
        out["pattern"] = pattern
        if "format" in s:
            raise _refuse(path, "format", "beside pattern: give one or the other")
        return out
    if "format" in s:
        if bounded:
            raise _refuse(path, "maxLength", f"beside format {s['format']}: leave it out")
        out["format"] = s["format"]
        return out
    if least:
        out["minLength"] = least
    if most is not None and most <= MOST_REPEATS:
        out["maxLength"] = most
    return out


def _numeric(s: dict[str, Any], path: str) -> dict[str, Any]:
    kind = s["type"]
    out: dict[str, Any] = {"type": kind}
    if "multipleOf" in s:
        step = _number(s["multipleOf"], path, "multipleOf")
        if not (kind == "integer" and step == 1):
            raise _refuse(path, "multipleOf", _UNHELD)
    low, low_open = _bound(s, "minimum", "exclusiveMinimum", path)
    high, high_open = _bound(s, "maximum", "exclusiveMaximum", path)
    if low is None and high is None:
        return out
    whole = _whole_range(low, low_open, high, high_open)
    if kind == "integer":
        if whole is None:
            raise _refuse(path, "minimum", f"{_said(s)}: no integer fits")
        out[RANGES] = [whole, None, None]
        return out
    # n.ddd (ddd not all zeros) lies strictly between n and n + 1; -n.ddd between -n - 1, -n
    positive = _whole_range(
        0 if low is None else max(0, math.ceil(low)),
        False,
        None if high is None else math.floor(high) - 1,
        False,
    )
    negative = _whole_range(
        0 if high is None else max(0, math.ceil(-high)),
        False,
        None if low is None else math.floor(-low) - 1,
        False,
    )
    if whole is None and positive is None and negative is None:
        raise _refuse(
            path,
            "minimum",
            f"{_said(s)}: the grammar writes numbers between whole-number "
            "bounds, and none lies inside these",
        )
    out[RANGES] = [whole, positive, negative]
    return out


def _bound(s: dict[str, Any], inclusive: str, exclusive: str, path: str) -> tuple[Any, bool]:
    """A bound and whether it is open, from either keyword (draft 4's boolean too)."""
    value, is_open = None, False
    if inclusive in s:
        value = _number(s[inclusive], path, inclusive)
    flag = s.get(exclusive)
    if isinstance(flag, bool):  # draft 4: the other keyword, made exclusive
        is_open = flag and value is not None
    elif flag is not None:
        other = _number(flag, path, exclusive)
        tighter = value is None or (other >= value if "min" in inclusive else other <= value)
        if tighter:
            value, is_open = other, True
    return value, is_open


def _whole_range(low: Any, low_open: bool, high: Any, high_open: bool) -> list[Any] | None:
    """The whole numbers within the bounds, as [lo, hi] (None: unbounded); None if none."""
    lo = None if low is None else (math.floor(low) + 1 if low_open else math.ceil(low))
    hi = None if high is None else (math.ceil(high) - 1 if high_open else math.floor(high))
    if lo is not None and hi is not None and lo > hi:
        return None
    return [lo, hi]


def _said(s: dict[str, Any]) -> str:
    keys = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
    return ", ".join(f"{k} {json.dumps(s[k])}" for k in keys if k in s)
