#!/usr/bin/env python3
"""Checks Tidemark's /metrics page with Prometheus' own text-format parser, and the deploy/
rules and dashboard against it.

  check_metrics.py parse PAGE
      Parses PAGE (a file holding a /metrics scrape) with
      prometheus_client.parser.text_string_to_metric_families and prints JSON:
      {"families": {name: {"type": t, "samples": [[sample_name, {labels}, value], ...]}}}.
      Exits 1 if the page does not parse.

  check_metrics.py deploy PAGE ALERTS_YML DASHBOARD_JSON
      Loads the alert rules (YAML) and the Grafana dashboard (JSON), checks their structure,
      and checks that every tidemark_* metric their expressions use is in PAGE (as a family or
      a sample name: foo_total, foo_bucket, foo_sum, foo_count). Prints JSON
      {"alerts": [names], "panels": [titles], "metrics_used": [...], "missing": [...],
       "problems": [...]} and exits 1 when anything is missing or malformed.
"""
import json
import re
import sys

from prometheus_client.parser import text_string_to_metric_families


def parse(text):
    families = {}
    for fam in text_string_to_metric_families(text):
        families[fam.name] = {
            "type": fam.type,
            "help": fam.documentation,
            "samples": [[s.name, dict(s.labels), s.value] for s in fam.samples],
        }
    return families


def known_names(families):
    names = set()
    for name, fam in families.items():
        names.add(name)
        for sample in fam["samples"]:
            names.add(sample[0])
        # A family with no series yet still names its samples.
        if fam["type"] == "counter":
            names.add(name + "_total")
        if fam["type"] == "histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
    return names


METRIC = re.compile(r"\btidemark_[a-z0-9_]+\b")


def deploy(page, alerts_path, dashboard_path):
    import yaml

    problems = []
    families = parse(page)
    known = known_names(families)
    used = set()

    with open(alerts_path) as f:
        rules = yaml.safe_load(f)
    alerts = []
    if not isinstance(rules, dict) or not isinstance(rules.get("groups"), list) or not rules["groups"]:
        problems.append("alerts: top level must be {groups: [...]}")
    else:
        for g in rules["groups"]:
            if not g.get("name") or not isinstance(g.get("rules"), list):
                problems.append(f"alerts: group without name or rules: {g!r}")
                continue
            for r in g["rules"]:
                name = r.get("alert")
                if not name or not isinstance(r.get("expr"), str):
                    problems.append(f"alerts: rule without alert name or expr: {r!r}")
                    continue
                alerts.append(name)
                if "for" in r and not re.fullmatch(r"\d+[smhd]", str(r["for"])):
                    problems.append(f"alerts: {name}: 'for' is not a duration: {r['for']!r}")
                if not r.get("annotations", {}).get("summary"):
                    problems.append(f"alerts: {name}: no annotations.summary")
                if r.get("labels", {}).get("severity") not in ("warning", "critical", "page", "info"):
                    problems.append(f"alerts: {name}: labels.severity missing or unknown")
                if r["expr"].count("(") != r["expr"].count(")"):
                    problems.append(f"alerts: {name}: unbalanced parentheses")
                used.update(METRIC.findall(r["expr"]))

    with open(dashboard_path) as f:
        dash = json.load(f)
    panels = []
    if not isinstance(dash.get("panels"), list) or not dash["panels"]:
        problems.append("dashboard: no panels")
    else:
        for p in dash["panels"]:
            title = p.get("title")
            targets = p.get("targets") or []
            if p.get("type") == "row":
                continue
            if not title or not targets:
                problems.append(f"dashboard: panel without title or targets: {p.get('id')!r}")
                continue
            panels.append(title)
            for t in targets:
                expr = t.get("expr", "")
                if not expr:
                    problems.append(f"dashboard: {title}: target without expr")
                if expr.count("(") != expr.count(")"):
                    problems.append(f"dashboard: {title}: unbalanced parentheses")
                used.update(METRIC.findall(expr))

    missing = sorted(m for m in used if m not in known)
    out = {"alerts": alerts, "panels": panels, "metrics_used": sorted(used), "missing": missing, "problems": problems}
    print(json.dumps(out, indent=1))
    return 0 if not missing and not problems else 1


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "parse":
        with open(sys.argv[2]) as f:
            text = f.read()
        try:
            families = parse(text)
        except Exception as e:  # the parser's ValueError, with the offending line
            print(f"check_metrics: the page does not parse: {e}", file=sys.stderr)
            return 1
        print(json.dumps({"families": families}))
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "deploy":
        with open(sys.argv[2]) as f:
            return deploy(f.read(), sys.argv[3], sys.argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
