"""Results: the per-scenario Result, the results table, and where it is written
(<out>/results.md always; docs/reliability.md in the full form with every scenario)."""
import datetime
import json
import os
import platform

from .runtime import say


class Result:
    def __init__(self, name, title):
        self.name, self.title = name, title
        self.runs = self.records = self.faults = 0
        self.duplicates = self.losses = self.leftover = 0
        self.failures = []
        self.notes = []
        self.not_run = None
        self.seconds = 0.0

    def check(self, cond, msg):
        if not cond:
            self.failures.append(msg)
            say(f"{self.name}: FAIL: {msg}")
        return cond

    def judge(self, v, label=""):
        """Adds one verify_sink.py summary to the totals; fails on anything but exactly once."""
        self.duplicates += max(0, v.get("duplicates", 0))
        self.losses += max(0, v.get("missing", 0))
        self.check(v["ok"], f"{label} not exactly once: duplicates={v.get('duplicates')} missing={v.get('missing')} "
                            f"problems={v.get('problems')} {json.dumps(v.get('examples'))[:600]}")

    def audit_ok(self, dep, label=""):
        rc, doc = dep.audit()
        self.check(rc == 0 and doc.get("consistent") is True,
                   f"{label} etl-audit rc={rc}: {json.dumps(doc.get('counts', doc))[:400]}")
        return rc, doc

    @property
    def result(self):
        if self.not_run:
            return "NOT RUN"
        return "FAIL" if self.failures else "PASS"



def table(results, total, form):
    lines = ["| scenario | runs | records | faults injected | duplicates | losses | leftover uploads | result | time |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in results:
        res = r.result if r.result != "NOT RUN" else f"NOT RUN: {r.not_run}"
        lines.append(f"| {r.title} | {r.runs} | {r.records:,} | {r.faults} | {r.duplicates} | {r.losses} | "
                     f"{r.leftover} | {res} | {r.seconds:.0f} s |")
    lines.append("")
    lines.append(f"Total wall time: {total:.0f} s ({form} form).")
    lines.append("")
    lines.append("What each run showed:")
    lines.append("")
    for r in results:
        lines.append(f"- **{r.title}** — " + (" ".join(r.notes) or "—"))
        for f in r.failures:
            lines.append(f"  - FAILURE: {f[:1500]}")
    return "\n".join(lines) + "\n"


def write_reports(ctx, results, total, form, out_root):
    """Writes the table: docs/reliability.md (full form, no --only) and <out>/results.md; prints
    it; returns the path of results.md."""
    text = table(results, total, form)
    cmd = "make chaos" if not ctx.args.short else "tools/chaos.py --short"
    if not ctx.args.short and not ctx.args.only:
        doc = os.path.join(ctx.root, "docs", "reliability.md")
        header = open(os.path.join(ctx.tools, "chaos_header.md")).read()
        machine = f"{platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}, binaries {ctx.bin}"
        with open(doc, "w") as f:
            f.write(header.replace("{DATE}", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
                    .replace("{MACHINE}", machine)
                    .replace("{COMMAND}", f"`make chaos` (it builds the debug executables and runs "
                                          f"`tools/chaos.py --seed {ctx.args.seed} --jobs {ctx.args.jobs}`)"))
            f.write(text)
        say(f"wrote {doc}")
    path = os.path.join(out_root, "results.md")
    with open(path, "w") as f:
        f.write(f"# Chaos suite ({form} form), {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}\n\n"
                f"Command: {cmd}\n\n" + text)
    print(text)
    say(f"results in {path}")
    return path
