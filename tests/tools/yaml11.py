#!/usr/bin/env python3
"""Reads a YAML stream on standard input with PyYAML (a YAML 1.1 reader, as
kubectl's Go yaml.v2 is) and prints, as JSON, every document with the type
PyYAML gave each node: {"map": [[key, value], ...]}, {"seq": [...]},
{"str": "..."}, or {"<type>": "<text>"} for anything else (bool, int, float,
date, NoneType...). gitseal's tests compare this with what serde_yaml (YAML
1.2) read, so a string that a YAML 1.1 reader takes for a boolean, a number
or a date shows up as a difference."""
import json
import sys

import yaml


def typed(node):
    if isinstance(node, dict):
        return {"map": [[typed(k), typed(v)] for k, v in node.items()]}
    if isinstance(node, list):
        return {"seq": [typed(item) for item in node]}
    if isinstance(node, str):
        return {"str": node}
    return {type(node).__name__: str(node)}


docs = [typed(d) for d in yaml.safe_load_all(sys.stdin.read()) if d is not None]
json.dump(docs, sys.stdout)
