#!/usr/bin/env python3
"""Checks documents against the JSON Schemas in docs/schema/ with the standard validator
(python3-jsonschema, Draft 2020-12), for tests/schema_test.cc.

usage: schema_check.py SCHEMA_DIR [SCHEMA_NAME DOCUMENT_FILE]...

Every schema in SCHEMA_DIR is first checked against the draft 2020-12 metaschema. A document
file holds one JSON document; a file ending in .jsonl holds one per line. Prints one line per
violation and exits 1 when there is any, 0 when all are valid, 2 on bad usage.
"""
import glob
import json
import os
import sys

import jsonschema
from jsonschema import Draft202012Validator


def validator_for(schema, docs):
    try:  # jsonschema >= 4.18
        from referencing import Registry, Resource

        registry = Registry().with_resources(
            [(d["$id"], Resource.from_contents(d)) for d in docs.values()])
        return Draft202012Validator(schema, registry=registry)
    except ImportError:  # Debian 12: jsonschema 4.10
        resolver = jsonschema.RefResolver(base_uri=schema["$id"], referrer=schema,
                                          store={d["$id"]: d for d in docs.values()})
        return Draft202012Validator(schema, resolver=resolver)


def main(argv):
    if len(argv) < 2 or len(argv) % 2 != 0:
        print(__doc__, file=sys.stderr)
        return 2
    docs = {}
    for path in sorted(glob.glob(os.path.join(argv[1], "*.schema.json"))):
        with open(path, encoding="utf-8") as f:
            docs[os.path.basename(path)] = json.load(f)
    bad = 0
    for name, schema in docs.items():
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as e:
            print(f"{name}: not a valid draft 2020-12 schema: {e.message}")
            bad += 1
    for name, path in zip(argv[2::2], argv[3::2]):
        if name not in docs:
            print(f"{path}: no schema {name}")
            bad += 1
            continue
        v = validator_for(docs[name], docs)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        items = [l for l in text.splitlines() if l.strip()] if path.endswith(".jsonl") else [text]
        for i, item in enumerate(items):
            for e in v.iter_errors(json.loads(item)):
                where = "/" + "/".join(str(p) for p in e.absolute_path)
                print(f"{os.path.basename(path)}[{i}] {where}: {e.message} ({name})")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
