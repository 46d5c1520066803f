#!/usr/bin/env python3
"""Renders or lints a Helm chart with Helm's own engine (Helm v4's Go SDK,
embedded by the PyPI package helm-python-sdk as libhelm_c), without a helm
binary or a cluster. Used by crates/gitseal-deploy's tests.

  helm-render.py template CHART [--release NAME] [--namespace NS] [--values FILE|-]
      prints the rendered manifests as one YAML stream, in template order
      (like `helm template`; NOTES.txt and empty files left out)
  helm-render.py lint CHART [--values FILE|-]
      prints Helm's lint report as JSON; exits 1 on lint errors
"""

import argparse
import json
import sys

import helm_python as helm
import yaml


def load_values(path):
    if path is None:
        return None
    text = sys.stdin.read() if path == "-" else open(path).read()
    return yaml.safe_load(text) or {}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["template", "lint"])
    p.add_argument("chart")
    p.add_argument("--release", default="gitseal")
    p.add_argument("--namespace", default="default")
    p.add_argument("--values")
    a = p.parse_args()
    values = load_values(a.values)
    if a.command == "lint":
        report = helm.lint(a.chart, values, strict=True, namespace=a.namespace)
        print(json.dumps(report, indent=1))
        errors = report.get("errors") or [m for m in report.get("messages", []) if m.get("severity", 0) >= 3]
        sys.exit(1 if errors else 0)
    chart = helm.Chart.load(a.chart)
    try:
        rendered = chart.render(values, name=a.release, namespace=a.namespace, is_install=True)
    except helm.HelmError as e:
        print(f"helm template: {e}", file=sys.stderr)
        sys.exit(1)
    out = []
    for path in sorted(rendered):
        text = rendered[path]
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        out.append(f"# Source: {path}\n{text.strip()}\n")
    sys.stdout.write("---\n".join(out))


if __name__ == "__main__":
    main()
