"""Redraw an experiment's pictures from its stored ``results.json`` with the current plotting code.

    python tools/replot.py results/fig3 results/fig5 results/calibration results/onpolicy results/drift

Every experiment's folder (fig3/fig4, fig5, calibration, onpolicy, swingup, drift). Only the PNG
files are replaced; the results, the CSV and the JSON stay as the run wrote them (the numbers
are the run's; only how they are drawn changes). A picture the current code no longer draws for
these results (a reliability diagram for methods without force bins) is removed. Takes a few
seconds per folder.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

from sim.experiments import report, report_deployed, report_drift

WRITERS = {"learning": report.write_learning, "variance": report.write_variance,
           "calibration": report.write_calibration, "onpolicy": report_deployed.write_deployed,
           "swingup": report_deployed.write_deployed, "drift": report_drift.write_drift}
#: the pictures each kind of results may have
PICTURES = {"learning": ("fig3_success.png", "fig3_heldout.png", "fig4_time.png"), "variance": ("fig5_variance.png",),
            "calibration": ("quantiles.png", "reliability.png"), "onpolicy": ("success.png",),
            "swingup": ("success.png",), "drift": ("drift.png",)}


def replot(folder):
    with open(os.path.join(folder, "results.json")) as f:
        results = json.load(f)
    kind = results.get("experiment")
    if kind not in WRITERS:
        raise SystemExit(f"{folder}: results.json holds {kind!r}, not one of {', '.join(WRITERS)}")
    with tempfile.TemporaryDirectory() as tmp:
        WRITERS[kind](results, tmp)
        pictures = sorted(n for n in os.listdir(tmp) if n.endswith(".png"))
        for name in pictures:
            shutil.copyfile(os.path.join(tmp, name), os.path.join(folder, name))
    gone = [n for n in PICTURES[kind] if n not in pictures and os.path.exists(os.path.join(folder, n))]
    for name in gone:
        os.remove(os.path.join(folder, name))
    print(f"{folder}: redrew {', '.join(pictures)}" + (f"; removed {', '.join(gone)}" if gone else ""))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for d in sys.argv[1:]:
        replot(d)
