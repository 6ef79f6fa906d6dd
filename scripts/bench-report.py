#!/usr/bin/env python3
"""Turn the criterion results of `benches/` into benches/results.md and
benches/commit.svg, and print the P1-P7 ratios of issue 5, P15 of
issue 9 and P9-P11 of issue 10 (shared mode).

    python3 scripts/bench-report.py [--criterion DIR] [--out DIR]

Reads benches/target/criterion/**/new/estimates.json (the median's point
estimate) with the benchmark.json beside it (for the ids), and
benches/target/persisted-bench/*.json (numbers the benches record
themselves, such as journal bytes per push). Standard library only.

Benchmark ids follow one scheme (see benches/benches/*.rs):
    commit/<level>/<kind>/<label>      level: flush | sync
    <group>/<kind>/<label>[/<param>]   kind: floor | ours | peer | unsafe
"""

import argparse
import glob
import json
import math
import os
import sys
from xml.sax.saxutils import escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHES = os.path.join(ROOT, "benches")

LEVELS = {
    "flush": "Process crash (kill -9): handed to the kernel",
    "sync": "Power loss: fsync'ed before returning",
}


# ---------------------------------------------------------------- loading


class Bench:
    def __init__(self, group, function, param, ns):
        self.group = group
        self.function = function
        self.param = param or ""
        self.ns = ns
        parts = function.split("/")
        if group == "commit" and len(parts) >= 3:
            self.level, self.kind, self.label = parts[0], parts[1], "/".join(parts[2:])
        elif len(parts) >= 2:
            self.level, self.kind, self.label = None, parts[0], "/".join(parts[1:])
        else:
            self.level, self.kind, self.label = None, "", function

    @property
    def us(self):
        return self.ns / 1000.0

    @property
    def name(self):
        return f"{self.label} @ {self.param}" if self.param else self.label

    def __repr__(self):
        return f"Bench({self.group}/{self.function}/{self.param}: {self.us:.2f} us)"


def load(criterion_dir):
    benches = []
    pattern = os.path.join(criterion_dir, "**", "new", "estimates.json")
    for est_path in sorted(glob.glob(pattern, recursive=True)):
        meta_path = os.path.join(os.path.dirname(est_path), "benchmark.json")
        try:
            with open(est_path) as f:
                est = json.load(f)
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            print(f"skipping {est_path}: {e}", file=sys.stderr)
            continue
        benches.append(
            Bench(
                meta["group_id"],
                meta.get("function_id") or "",
                meta.get("value_str"),
                est["median"]["point_estimate"],
            )
        )
    return benches


def load_extras(extra_dir):
    extras = {}
    for path in sorted(glob.glob(os.path.join(extra_dir, "*.json"))):
        with open(path) as f:
            extras[os.path.splitext(os.path.basename(path))[0]] = json.load(f)
    return extras


def find(benches, group, function, param=None):
    for b in benches:
        if b.group == group and b.function == function and (param is None or b.param == param):
            return b
    return None


def find_prefix(benches, group, prefix):
    for b in benches:
        if b.group == group and b.function.startswith(prefix):
            return b
    return None


def find_prefix_param(benches, group, prefix, param):
    for b in benches:
        if b.group == group and b.function.startswith(prefix) and b.param == param:
            return b
    return None


# ---------------------------------------------------------------- floors


def commit_floor(benches, level, extras):
    """The floor a commit row is compared with: for `flush`, one write(2)
    of our record's size (else the ~30 B one); for `sync`, append +
    fdatasync."""
    if level == "sync":
        return find_prefix(benches, "commit", "sync/floor/append")
    rec = extras.get("commit", {}).get("json record bytes per set_counter")
    if rec is not None:
        b = find(benches, "commit", f"flush/floor/write(2) {round(rec)} B")
        if b:
            return b
    return find_prefix(benches, "commit", "flush/floor/write(2)")


def reference(benches, b, extras):
    """(reference bench, what it is) for the "x" column of a row."""
    g = b.group
    if g == "commit":
        return commit_floor(benches, b.level, extras), "floor of the level"
    if g == "state_size":
        return find(benches, g, b.function, "1 KB"), "same approach at 1 KB"
    if g == "threads":
        return find(benches, g, b.function, "1 threads"), "same case, 1 thread (time per commit)"
    if g == "open":
        return find_prefix(benches, g, "floor/"), "serde_json::from_slice of the snapshot"
    if g == "yaml":
        engine = b.label.split()[-1]
        return find(benches, g, f"ours/json {engine}"), "JSON, same engine"
    if g == "collection":
        return find_prefix(benches, g, "ours/set_counter"), "small-field commit on the same store"
    if g == "shared":
        return shared_reference(benches, b)
    return None, ""


def shared_reference(benches, b):
    """The baseline of a `shared` row: P9 the exclusive-mode set_counter,
    P10 SQLite at the same number of processes, P11 the write(2) floor."""
    g = "shared"
    if b.label.startswith("set_counter"):
        return find_prefix(benches, g, "ours/set_counter, exclusive"), "exclusive-mode set_counter"
    if b.param.endswith("process") or b.param.endswith("processes"):
        return find_prefix_param(benches, g, "peer/rusqlite", b.param), "SQLite, same processes"
    return find_prefix(benches, g, "floor/write(2)"), "write(2) floor"


# ---------------------------------------------------------------- goals


def ratio(a, b):
    if a is None or b is None or b.ns == 0:
        return None
    return a.ns / b.ns


def goals(benches, extras):
    """[(id, measure, criterion ratio text, paired ratio text, goal, met)].

    "criterion" divides two medians measured one after the other;
    "paired" is measured by the bench itself, alternating batches of the
    two (median of per-round ratios), so a shared machine's drifting load
    hits both alike. Where a paired ratio exists, `met` is judged on it."""
    out = []

    def x(v, suffix="x"):
        return "" if v is None else f"{v:.2f}{suffix}"

    def extra(group, key):
        return extras.get(group, {}).get(key)

    def add(pid, measure, value, goal, test, paired=None, value_text=None):
        judged = paired if paired is not None else value
        met = None if (test is None or judged is None) else test(judged)
        out.append((pid, measure, value_text if value_text is not None else (x(value) or "n/a"),
                    x(paired), goal, met))

    le = lambda limit: (lambda v: v <= limit)
    ge = lambda limit: (lambda v: v >= limit)
    lt = lambda limit: (lambda v: v < limit)

    # P1
    ours = find(benches, "commit", "flush/ours/json journal")
    floor = commit_floor(benches, "flush", extras)
    add("P1", f"Flush set_counter (JSON journal) vs {floor.label if floor else 'write(2)'}",
        ratio(ours, floor), "<= 2x", le(2), extra("commit", "paired P1 ours flush / write(2)"))
    naive = find_prefix(benches, "commit", "flush/peer/serde_json + fs::write")
    add("P1", "serde_json + fs::write vs ours (how many times faster ours is)",
        ratio(naive, ours), ">= 100x", ge(100))
    # P2
    ours = find(benches, "commit", "sync/ours/json journal")
    floor = commit_floor(benches, "sync", extras)
    add("P2", f"Sync set_counter (JSON journal) vs {floor.label if floor else 'append + fdatasync'}",
        ratio(ours, floor), "<= 1.3x", le(1.3),
        extra("commit", "paired P2 ours sync / append + fdatasync"))
    for prefix, label, key in [
        ("sync/peer/rusqlite WAL synchronous=FULL", "SQLite WAL FULL", "paired P2 ours sync / rusqlite WAL FULL"),
        ("sync/peer/redb Durability::Immediate", "redb Immediate", "paired P2 ours sync / redb Immediate"),
    ]:
        add("P2", f"ours Sync vs {label} (time ratio)", ratio(ours, find(benches, "commit", prefix)),
            "< 1x", lt(1), extra("commit", key))
    # P3
    add("P3", "one-field commit, 10 MB state vs 1 KB state (journal)",
        ratio(find(benches, "state_size", "ours/journal", "10 MB"),
              find(benches, "state_size", "ours/journal", "1 KB")),
        "<= 1.5x", le(1.5), extra("state_size", "paired P3 journal 10 MB / 1 KB"))
    for fn in ["ours/snapshot", "peer/serde_json + tmp + rename"]:
        add("P3", f"for reference: {fn}, 10 MB vs 1 KB",
            ratio(find(benches, "state_size", fn, "10 MB"), find(benches, "state_size", fn, "1 KB")),
            "(file peers 10-30x)", None)
    # P4
    for fn in ["ours/update(counter += 1)", "ours/set_counter"]:
        one = find(benches, "threads", fn, "1 threads")
        eight = find(benches, "threads", fn, "8 threads")
        r = ratio(one, eight)  # time per commit 1 / 8 = commits/s 8 / 1
        text = None
        if one and eight:
            text = f"{r:.2f}x ({1e9 / one.ns:,.0f} -> {1e9 / eight.ns:,.0f} commits/s)"
        add("P4", f"Sync commits/s, 8 threads vs 1, {fn[5:]}", r, ">= 4x", ge(4),
            extra("threads", f"paired P4 speedup 8 threads vs 1, {fn}"), text)
    # P5
    add("P5", "open + recovery (10 MB snapshot + 100k records) vs serde_json::from_slice",
        ratio(find_prefix(benches, "open", "ours/open snapshot + "), find_prefix(benches, "open", "floor/")),
        "<= 2x", le(2))
    add("P5", "for reference: open with no journal vs serde_json::from_slice",
        ratio(find_prefix(benches, "open", "ours/open snapshot, no journal"), find_prefix(benches, "open", "floor/")),
        "", None)
    # P6
    add("P6", "YAML commit vs JSON commit (journal)",
        ratio(find(benches, "yaml", "ours/yaml journal"), find(benches, "yaml", "ours/json journal")),
        "<= 2x", le(2), extra("yaml", "paired P6 yaml journal / json journal"))
    add("P6", "for reference: YAML vs JSON, snapshot engine",
        ratio(find(benches, "yaml", "ours/yaml snapshot"), find(benches, "yaml", "ours/json snapshot")),
        "", None)
    # P7
    add("P7", "push_items on a 200k-element Vec vs small-field commit",
        ratio(find_prefix(benches, "collection", "ours/push_items"),
              find_prefix(benches, "collection", "ours/set_counter")),
        "<= 3x", le(3), extra("collection", "paired P7 (push+pop) / (2 x set_counter)"))
    pb = extra("collection", "journal bytes per push_items (200k-element Vec)")
    add("P7", "journal bytes appended per push", pb, "<= 200 B", le(200),
        value_text="n/a" if pb is None else f"{pb:.0f} B")
    # P15 (issue 9): a transaction of one push onto the 200k-element Vec
    # plus one set, vs the small-field commit on the same store.
    small = find_prefix(benches, "collection", "ours/set_counter")
    add("P15", "transaction (push_items on a 200k-element Vec + set_counter) vs small-field commit",
        ratio(find_prefix(benches, "collection", "ours/transaction push_items + set_counter"), small),
        "<= 3x", le(3), extra("collection", "paired P15 transaction (push + set) / set_counter"))
    tb = extra("collection", "journal bytes per transaction push_items + set_counter (200k-element Vec)")
    add("P15", "journal bytes appended per transaction", tb, "< 400 B (tests/operations.rs)", lt(400),
        value_text="n/a" if tb is None else f"{tb:.0f} B")
    upd = ratio(find_prefix(benches, "collection", "ours/update(|s|"), small)
    add("P15", "for reference: the same change by update(|s| {push; set}) (O(state)) vs small-field commit",
        upd, "", None, value_text="n/a" if upd is None else fmt_x(upd))
    ub = extra("collection", "journal bytes per update(|s| {push; set}) (200k-element Vec)")
    add("P15", "for reference: journal bytes appended per update(|s| {push; set})", ub, "", None,
        value_text="n/a" if ub is None else f"{ub:,.0f} B")
    # P9-P11 (issue 10): shared mode.
    add("P9", "Flush set_counter, shared mode (1 process) vs exclusive mode (JSON journal)",
        ratio(find_prefix(benches, "shared", "ours/set_counter, shared"),
              find_prefix(benches, "shared", "ours/set_counter, exclusive")),
        "<= 1.5x", le(1.5), extra("shared", "paired P9 shared set_counter / exclusive set_counter"))
    for procs, goal, test in [("4 processes", ">= 2x", ge(2)), ("1 process", "", None)]:
        ours = find_prefix_param(benches, "shared", "ours/update(counter += 1)", procs)
        peer = find_prefix_param(benches, "shared", "peer/rusqlite", procs)
        r = ratio(peer, ours)  # time per commit SQLite / ours = commits/s ours / SQLite
        text = None
        if ours and peer:
            text = f"{r:.2f}x ({1e9 / ours.ns:,.0f} vs {1e9 / peer.ns:,.0f} commits/s)"
        paired = extra("shared", f"paired P10 ours / SQLite commits/s, {procs}")
        if paired is not None and text is not None:
            po = extra("shared", f"paired P10 ours commits/s, {procs}")
            ps = extra("shared", f"paired P10 SQLite commits/s, {procs}")
            if po is not None and ps is not None:
                text += f"; paired runs {po:,.0f} vs {ps:,.0f}"
        prefix = "" if test else "for reference: "
        add("P10", f"{prefix}{procs} x update(counter += 1) on one shared store vs SQLite WAL NORMAL, "
            f"total commits/s",
            r, goal, test, paired, text)
    write = find_prefix(benches, "shared", "floor/write(2)")
    wlabel = write.label if write else "write(2) 41 B"
    for mode, prefix, key, goal, test in [
        ("shared", "ours/read() of an unchanged store, shared", "paired P11 read() shared unchanged / write(2) 41 B",
         "<= 1x", le(1)),
        ("exclusive", "ours/read(), exclusive", "paired P11 read() exclusive / write(2) 41 B", "", None),
    ]:
        read = find_prefix(benches, "shared", prefix)
        r = ratio(read, write)
        text = None
        if read and write:
            text = f"{r:.2f}x ({read.ns:,.0f} vs {write.ns:,.0f} ns)"
        what = "read() of an unchanged shared store" if mode == "shared" else \
            "for reference: read(), exclusive mode,"
        add("P11", f"{what} vs {wlabel}", r, goal, test, extra("shared", key), text)
    return out


# ---------------------------------------------------------------- markdown


def fmt_us(us):
    if us >= 1000:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def fmt_x(x):
    if x is None:
        return ""
    if x >= 100:
        return f"{x:,.0f}x"
    if x >= 10:
        return f"{x:.1f}x"
    return f"{x:.2f}x"


KIND_NOTE = {"floor": "floor", "ours": "**ours**", "peer": "peer", "unsafe": "not crash-safe"}

GROUP_TITLES = {
    "commit": "Commit of one small change (P1, P2)",
    "state_size": "One-field commit vs state size (P3), Durability::Flush",
    "threads": "Durability::Sync commits from N threads on one store (P4)",
    "open": "Open + recovery of a 10 MB snapshot with a 100k-record journal (P5)",
    "yaml": "YAML vs JSON commit of the same change (P6), Durability::Flush",
    "collection": "push_, and a transaction of push_ + set_, on a 200k-element Vec (P7, P15), Durability::Flush",
    "shared": "Shared mode: commit, 4 processes vs SQLite, read of an unchanged store (P9, P10, P11), Durability::Flush",
}
GROUP_ORDER = ["commit", "state_size", "threads", "open", "yaml", "collection", "shared"]

# A group whose rows have different baselines: the note above its table.
GROUP_REF_NOTES = {
    "shared": "the row's baseline: set_counter rows (P9) the exclusive-mode set_counter; rows @ N processes"
              " (P10, µs/op = wall time per commit = 1 / total commits/s, spawn to exit) SQLite at as many"
              " processes; read() rows (P11) the write(2) floor",
}


def row_name(b):
    name = escape_md(b.name)
    return f"**{name}**" if b.kind == "ours" else name


def escape_md(s):
    return s.replace("|", "\\|")


def markdown(benches, extras, goal_rows, command):
    lines = [
        "# Benchmark results",
        "",
        "Generated by `scripts/bench-report.py` from one run of `" + command + "`"
        " (criterion medians). Workload: state `{counter: u64, name: String}`,"
        " persist after every increment, time per operation. Absolute numbers move"
        " from machine to machine and with load; the ratios, measured in the same"
        " run, are what to compare.",
        "",
        "## Goals (issue 5; P15: issue 9; P9-P11: issue 10, shared mode)",
        "",
        "| # | measure | criterion | paired | goal | met |",
        "|---|---|---:|---:|---|---|",
    ]
    for pid, measure, value, paired, goal, met in goal_rows:
        mark = "" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {pid} | {escape_md(measure)} | {value} | {paired} | {goal} | {mark} |")
    lines += [
        "",
        "*criterion* divides two criterion medians measured one after the other;"
        " *paired* is measured by the bench itself, alternating batches of the two"
        " (median of the per-round ratios), so the drifting load of a shared machine"
        " hits both alike. Where both exist, *met* is judged on *paired*.",
        "",
    ]

    groups = sorted({b.group for b in benches}, key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER else 99, g))
    for g in groups:
        rows = [b for b in benches if b.group == g]
        lines += [f"## {GROUP_TITLES.get(g, g)}", ""]
        if g == "commit":
            for level in ["flush", "sync"]:
                lrows = sorted((b for b in rows if b.level == level), key=lambda b: b.ns)
                if not lrows:
                    continue
                floor = commit_floor(benches, level, extras)
                lines += [
                    f"### {LEVELS[level]}",
                    "",
                    f"× = µs/op ÷ the floor `{floor.label if floor else '?'}`.",
                    "",
                    "| | name | µs/op | ops/s | × floor |",
                    "|---|---|---:|---:|---:|",
                ]
                for b in lrows:
                    lines.append(
                        f"| {KIND_NOTE.get(b.kind, b.kind)} | {row_name(b)} | {fmt_us(b.us)} | "
                        f"{1e6 / b.us:,.0f} | {fmt_x(ratio(b, floor))} |"
                    )
                lines.append("")
            continue
        ref_note = GROUP_REF_NOTES.get(g) or reference(benches, rows[0], extras)[1]
        lines += [
            f"× = µs/op ÷ {ref_note}.",
            "",
            "| | name | µs/op | ops/s | × |",
            "|---|---|---:|---:|---:|",
        ]
        for b in rows:
            ref, _ = reference(benches, b, extras)
            lines.append(
                f"| {KIND_NOTE.get(b.kind, b.kind)} | {row_name(b)} | {fmt_us(b.us)} | "
                f"{1e6 / b.us:,.0f} | {fmt_x(ratio(b, ref))} |"
            )
        lines.append("")
        if g in extras:
            lines += ["Recorded by the bench:", ""]
            for k, v in extras[g].items():
                lines.append(f"- {escape_md(k)}: {v:,.1f}")
            lines.append("")
    for g, values in extras.items():
        if g not in {b.group for b in benches}:
            lines += [f"## {g} (recorded by the bench)", ""]
            for k, v in values.items():
                lines.append(f"- {escape_md(k)}: {v:,.1f}")
            lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- svg

COLORS = {
    "ours": "#d9480f",
    "floor": "#495057",
    "peer": "#4c6ef5",
    "unsafe": "#adb5bd",
}


def svg_chart(benches, extras):
    """Horizontal bars, log-scale x axis in µs per commit, one section per
    durability level, each sorted fastest first."""
    sections = []
    for level in ["flush", "sync"]:
        rows = sorted((b for b in benches if b.group == "commit" and b.level == level), key=lambda b: b.ns)
        if rows:
            sections.append((level, rows))
    if not sections:
        return None
    all_us = [b.us for _, rows in sections for b in rows]
    lo = 10 ** math.floor(math.log10(min(all_us)))
    hi = 10 ** math.ceil(math.log10(max(all_us)))
    if hi / lo < 100:
        hi = lo * 100

    label_w, bar_w, value_w = 430, 520, 120
    left = label_w
    width = label_w + bar_w + value_w
    row_h, bar_h = 22, 15
    top = 70
    font = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""

    def x_of(us):
        return left + bar_w * (math.log10(us) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    body = []
    y = top
    for level, rows in sections:
        body.append(
            f'<text x="12" y="{y + 16}" {font} font-size="15" font-weight="bold" fill="#212529">'
            f"{escape(LEVELS[level])}</text>"
        )
        y += 26
        floor = commit_floor(benches, level, extras)
        for b in rows:
            color = COLORS.get(b.kind, "#868e96")
            cy = y + (row_h - bar_h) / 2
            x1 = x_of(max(b.us, lo))
            weight = ' font-weight="bold"' if b.kind == "ours" else ""
            prefix = {"ours": "persisted: ", "floor": "floor: ", "unsafe": ""}.get(b.kind, "")
            label = prefix + b.label
            if len(label) > 62:
                label = label[:60] + "…"
            body.append(
                f'<text x="{left - 8}" y="{y + row_h / 2 + 4.5}" {font} font-size="12.5" '
                f'text-anchor="end" fill="#212529"{weight}>{escape(label)}</text>'
            )
            dash = ' stroke="#495057" stroke-dasharray="3,2"' if b.kind == "unsafe" else ""
            body.append(
                f'<rect x="{left}" y="{cy:.1f}" width="{max(x1 - left, 1):.1f}" height="{bar_h}" '
                f'fill="{color}"{dash}><title>{escape(b.function)}: {fmt_us(b.us)} µs</title></rect>'
            )
            r = ratio(b, floor)
            txt = f"{fmt_us(b.us)} µs" + (f"  {fmt_x(r)}" if r is not None else "")
            body.append(
                f'<text x="{x1 + 5:.1f}" y="{y + row_h / 2 + 4.5}" {font} font-size="11.5" '
                f'fill="#343a40"{weight}>{escape(txt)}</text>'
            )
            y += row_h
        y += 14
    bottom = y
    # Grid and axis.
    grid = []
    decade = lo
    while decade <= hi * 1.0001:
        gx = x_of(decade)
        grid.append(f'<line x1="{gx:.1f}" y1="{top - 6}" x2="{gx:.1f}" y2="{bottom}" stroke="#dee2e6"/>')
        text = f"{decade:g}" if decade >= 1 else f"{decade:.1g}"
        grid.append(
            f'<text x="{gx:.1f}" y="{bottom + 16}" {font} font-size="11.5" text-anchor="middle" '
            f'fill="#495057">{text}</text>'
        )
        for m in range(2, 10):
            mx = decade * m
            if mx < hi:
                grid.append(
                    f'<line x1="{x_of(mx):.1f}" y1="{top - 6}" x2="{x_of(mx):.1f}" y2="{bottom}" '
                    f'stroke="#f1f3f5"/>'
                )
        decade *= 10
    axis_label_y = bottom + 36
    legend_y = axis_label_y + 24
    legend = []
    lx = 12
    for kind, text in [
        ("ours", "persisted (this crate)"),
        ("floor", "physical floor"),
        ("peer", "peer crate / hand-rolled"),
        ("unsafe", "peer level that is not crash-safe"),
    ]:
        legend.append(f'<rect x="{lx}" y="{legend_y - 11}" width="14" height="14" fill="{COLORS[kind]}"/>')
        legend.append(f'<text x="{lx + 20}" y="{legend_y}" {font} font-size="12.5" fill="#212529">{escape(text)}</text>')
        lx += 30 + 7.2 * len(text)
    height = legend_y + 18
    title = "Persist a counter after every increment: µs per commit (log scale, lower is better)"
    sub = "× = times the physical floor of the same durability level, measured in the same run"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="12" y="24" {font} font-size="17" font-weight="bold" fill="#212529">{escape(title)}</text>',
        f'<text x="12" y="44" {font} font-size="12.5" fill="#495057">{escape(sub)}</text>',
        *grid,
        f'<line x1="{left}" y1="{top - 6}" x2="{left}" y2="{bottom}" stroke="#868e96"/>',
        *body,
        f'<text x="{left + bar_w / 2}" y="{axis_label_y}" {font} font-size="12.5" text-anchor="middle" '
        f'fill="#212529">µs per commit (log scale)</text>',
        *legend,
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--criterion", default=os.path.join(BENCHES, "target", "criterion"))
    ap.add_argument("--extras", default=os.path.join(BENCHES, "target", "persisted-bench"))
    ap.add_argument("--out", default=BENCHES, help="where results.md and commit.svg go")
    ap.add_argument("--command", default="scripts/bench.sh", help="the command named in results.md")
    args = ap.parse_args()

    benches = load(args.criterion)
    if not benches:
        print(f"no criterion results under {args.criterion}; run scripts/bench.sh first", file=sys.stderr)
        return 1
    extras = load_extras(args.extras)
    goal_rows = goals(benches, extras)

    md = markdown(benches, extras, goal_rows, args.command)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md + "\n")
    svg = svg_chart(benches, extras)
    if svg:
        with open(os.path.join(args.out, "commit.svg"), "w") as f:
            f.write(svg)

    print("Issue 5 goals, P15 (issue 9) and P9-P11 (issue 10), from this run (criterion = ratio of medians; paired = alternated batches):")
    for pid, measure, value, paired, goal, met in goal_rows:
        mark = "" if met is None else ("MET" if met else "NOT MET")
        paired = f"paired {paired}" if paired else ""
        print(f"  {pid:3} {measure:<76} {value:>10} {paired:>14}  goal {goal:<8} {mark}")
    print(f"wrote {os.path.relpath(os.path.join(args.out, 'results.md'))}"
          + (f" and {os.path.relpath(os.path.join(args.out, 'commit.svg'))}" if svg else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
