"""Compare two runs' outputs (JSON files, CSV and text tables, or whole --out folders)
and say whether they are the same apart from wall-clock timings.

    python tools/compare_results.py A B            # files or folders
    python tools/compare_results.py A B --show 20  # print up to 20 differences

JSON: every value must be equal, except the keys that hold timings (microseconds,
milliseconds, seconds, per-label or per-sample times, deadline misses, the command
line), and the keys that identify the code (``code``, ``fingerprint``: a hash of the
sources, which any edit changes). CSV and text: compared line by line after removing the columns / numbers that
are timings (a header names them; in text output, numbers right after "p50", "us",
"ms" and the like). PNG files are skipped (they draw the same numbers). Exit status 0
when everything but the timings is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import sys

#: JSON keys whose values are wall-clock timings (or depend on them), not results
TIMING_KEYS = re.compile(r"(_us$|_us_|^us_|_ms$|ms_per|_seconds$|^seconds$|^command$|deadline_misses|"
                         r"longest_miss_run|latency|^time_|_time$|^act_p50|^update_p|^median_ms)")
#: JSON keys that identify the code that ran (a hash of its sources), which a code change changes
VERSION_KEYS = ("code", "fingerprint")
#: text-table columns / phrases that are timings
TEXT_TIMING = re.compile(r"(p50|p99|\bus\b|ms/label|ms/sample|ms per|latency|misses|longest run)", re.I)


def _json_diff(a, b, path, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if TIMING_KEYS.search(str(k)) or k in VERSION_KEYS:
                continue
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'B' if k not in a else 'A'}")
            else:
                _json_diff(a[k], b[k], f"{path}/{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: lengths {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            _json_diff(x, y, f"{path}[{i}]", out)
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    elif a != b or type(a) is not type(b):
        out.append(f"{path}: {a!r} != {b!r}")


def _csv_rows(text):
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return rows
    keep = [i for i, name in enumerate(rows[0]) if not TIMING_KEYS.search(name) and not TEXT_TIMING.search(name)]
    # long-format rows that name a timing quantity (e.g. "learn_seconds") are timings too
    return [[r[i] for i in keep if i < len(r)] for r in rows if not any(TIMING_KEYS.search(c) for c in r)]


#: a log line of Dask or another library (timestamped), not the command's output
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def _without_logs(lines):
    """The lines without blank lines, "wrote PATH" lines (the output folder), library log records and the tracebacks they print
    (a line with a timestamp, then "Traceback ..." up to its first unindented line)."""
    out, in_tb = [], False
    for line in lines:
        if LOG_LINE.match(line) or not line.strip() or line.startswith("wrote ") or line.startswith(("The above exception", "During handling")):
            continue
        if line.startswith("Traceback (most recent call last)"):
            in_tb = True
            continue
        if in_tb:
            if line[:1] in (" ", "\t") or not line.strip():
                continue
            in_tb = False
            continue                   # the exception line that ends the traceback
        out.append(line)
    return out


def _text_lines(text):
    """Text output with the timing numbers masked: after a table header that names
    timing columns, those columns (counted from the line's end, where the tables
    align); and any number in a phrase that names a timing ("act p50 32 us")."""
    out, from_end = [], []
    for line in _without_logs(text.splitlines()):
        words = line.split()
        if words and not any(ch.isdigit() for ch in words[0]) and sum(bool(TEXT_TIMING.search(w)) for w in words) \
                and len(words) >= 3:
            from_end = [len(words) - i for i, w in enumerate(words) if TEXT_TIMING.search(w)]
        elif from_end and len(words) >= max(from_end):
            for k in from_end:
                words[len(words) - k] = "#"
            line = " ".join(words)
        line = re.sub(r"(p50|p99)\s*(\(us\))?\s*[0-9.]+", r"\1 #", line)
        line = re.sub(r"[0-9.]+\s*(us|ms)\b", r"# \1", line)
        line = re.sub(r"[0-9]+ deadline misses", "# deadline misses", line)
        line = re.sub(r"longest run [0-9]+", "longest run #", line)
        out.append(line)
    return out


def compare_files(a, b):
    """Differences between two files (a list of strings; empty: the same)."""
    if a.endswith(".png"):
        return []
    with open(a) as f:
        ta = f.read()
    with open(b) as f:
        tb = f.read()
    if a.endswith(".json"):
        out = []
        _json_diff(json.loads(ta), json.loads(tb), "", out)
        return out
    la, lb = (_csv_rows(ta), _csv_rows(tb)) if a.endswith(".csv") else (_text_lines(ta), _text_lines(tb))
    out = [f"line {i + 1}: {x!r} != {y!r}" for i, (x, y) in enumerate(zip(la, lb)) if x != y]
    if len(la) != len(lb):
        out.append(f"{len(la)} lines != {len(lb)} lines")
    return out


def compare(a, b):
    """{relative path: differences} for two files or two folders (recursively)."""
    if os.path.isfile(a):
        return {os.path.basename(a): compare_files(a, b)}
    result = {}
    for root, _, files in os.walk(a):
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(root, name), a)
            other = os.path.join(b, rel)
            if not os.path.exists(other):
                result[rel] = ["missing in B"]
            else:
                result[rel] = compare_files(os.path.join(root, name), other)
    for root, _, files in os.walk(b):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), b)
            if rel not in result:
                result[rel] = ["missing in A"]
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--show", type=int, default=10, help="differences to print per file")
    args = p.parse_args(argv)
    result = compare(args.a, args.b)
    bad = {k: v for k, v in result.items() if v}
    for name, diffs in sorted(result.items()):
        print(f"{'same' if not diffs else 'DIFFERENT':>9}  {name}" + (f" ({len(diffs)} differences)" if diffs else ""))
        for d in diffs[:args.show]:
            print(f"           {d}")
    print(f"{len(result) - len(bad)} of {len(result)} files the same apart from timings")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
