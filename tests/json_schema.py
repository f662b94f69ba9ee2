#!/usr/bin/env python3
"""Validates gotrace JSON lines against the schemas in docs/json.md.

Usage: json_schema.py DOCS_JSON_MD COMMAND FILE
COMMAND is a command as the schemas' "x-commands" name it ("goroutines --blocked").
Each fenced ```json block of the document is one schema, named by its "$id"; a line of type T
is checked against "summary.COMMAND" when T is "summary", else against T, whose "x-commands"
must list COMMAND; every top-level key of a line must be one its schema declares. Prints
every problem; exit status 1 if there was one."""
import json
import re
import sys

import jsonschema

doc, command, path = sys.argv[1:4]
blocks = re.findall(r"```json\n(.*?)```", open(doc).read(), re.S)
schemas = {s["$id"]: s for s in map(json.loads, blocks)}
try:  # jsonschema >= 4.18
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resources(
        (i, Resource.from_contents(s, default_specification=DRAFT202012))
        for i, s in schemas.items()
    )

    def validator_for(schema):
        return jsonschema.Draft202012Validator(schema, registry=registry)
except ImportError:  # Debian 12's 4.10

    def validator_for(schema):
        resolver = jsonschema.RefResolver.from_schema(schema, store=schemas)
        return jsonschema.Draft202012Validator(schema, resolver=resolver)



def declared(schema, root=None):
    """The top-level property names a record's schema declares, its allOf parts' included
    (a part named by "$ref": in the defs schema, or in `root`'s own $defs)."""
    root = root or schema
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        ref = part.get("$ref", "")
        for prefix, home in (("defs#/$defs/", schemas["defs"]), ("#/$defs/", root)):
            if ref.startswith(prefix):
                part = home["$defs"][ref.removeprefix(prefix)]
        names |= declared(part, root)
    return names


problems = []
lines = [l for l in open(path) if l.startswith("{")]
if not lines:
    problems.append("no JSON lines")
for n, line in enumerate(lines, 1):
    obj = json.loads(line)
    kind = obj.get("type")
    name = f"summary.{command}" if kind == "summary" else kind
    schema = schemas.get(name)
    if schema is None or command not in schema.get("x-commands", []):
        problems.append(f"line {n}: no schema for {command} {kind!r}")
        continue
    validator = validator_for(schema)
    for error in validator.iter_errors(obj):
        problems.append(f"line {n} ({kind}): {error.message} at {list(error.absolute_path)}")
    for key in sorted(set(obj) - declared(schema)):
        problems.append(f"line {n} ({kind}): {key!r} is not in its schema (document it)")
# A command that attaches nothing (a snapshot) is not listed by the attached schema.
attaches = command in schemas["attached"]["x-commands"]
if lines and attaches and json.loads(lines[0]).get("type") != "attached":
    problems.append("the first line is not attached")
if lines and json.loads(lines[-1]).get("type") != "summary":
    problems.append("the last line is not a summary")
for p in problems[:50]:
    print(p)
sys.exit(1 if problems else 0)
