"""Held-out swing-up plants inside the family range: what a linear read-out can do with many
labels, and whether a wider read-out (the last block's output maps adapted too) does better
after 100 (docs/heldout-limit.md).

The plants are ``tools/heldout_probe.py``'s (the shift map's inside the family range); the
mean is over those whose own expert swings up in at least 0.9 of the episodes.

* ``limit``: per plant, the least-squares read-out of ``--labels`` i.i.d. expert labels (the
  i.i.d. stream's states, data seed 1) over KBT's head inputs z~ = [h'; s_norm; 1] of
  ``swingup-alpaca`` and over z~ with the last block's activations at the query row beside it
  (the ReLU hidden units and the attention output before its projection, n1 45): held-out force
  RMSE (2 000 labels, data seed 99) and success over ``--episodes`` (seed 7), beside the plant's
  expert and the learned prior with no label; and whether the plant lies in a neighbourhood the
  family left out. The many-label limit of each read-out.
* ``wide``: the few-label regime. Success after 10 / 25 / 50 / 100 i.i.d. labels (the shift
  map's stream; trial t of a plant runs with seed 1000 ``--seed`` + t) for a Bayesian read-out
  (fixed R = 3, no robust weight or detector) per ``--priors`` entry: ``z`` is over z~ from the
  learned prior (``kbt@alpaca``'s read-out without its robust weight and detector), ``eye:S``
  over z~ + hidden + attention from [m0; 0] with covariance blockdiag(Z P0, S I) (Z: 1 unless
  ``eye:S:Z``), ``family:S[:Z]`` the same with S times the covariance of the 40 training
  plants' least-squares coefficients of the added inputs (+ 1e-3 I) in place of I. ``--plant``:
  one plant, each trial printed.
* ``split``: from a shift map's ``shift.json``, each learner's mean over those plants, apart
  for the plants inside a neighbourhood the family left out (TARGET's) and the others.

    python tools/heldout_limit.py limit
    python tools/heldout_limit.py wide --seed 5 --episodes 30 --priors z eye:0.03 eye:0.1 eye:0.3 family:0.03 \
        family:0.1 family:1 eye:0.1:0.1 eye:0.3:0.1 family:1:0.1 family:0.1:0.3
    python tools/heldout_limit.py wide --seed 0 --priors z eye:0.03
    python tools/heldout_limit.py wide --plant 1 0.2913 0.7746 --seed 5 --trials 5 --episodes 20 \
        --labels-at 10 25 50 100 200 400 --priors z eye:0.03 family:1
    python tools/heldout_limit.py split results/shift_swingup_100/shift.json results/shift_swingup/shift.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from alpaca_readout import _Readout, _readout_inputs, _WideBLR
from heldout_probe import WEIGHTS, inside_cells, _task

from sim.experiments.trials import run_jobs

#: the last block's activations a wide read-out adds to z~
ADDED = ("hidden", "attention")
#: ``wide``'s default checkpoints (labels)
MARKS = (10, 25, 50, 100)


def _kbt(task):
    from sim.loops.methods import MethodSettings, make_controller

    return make_controller("kbt", task, MethodSettings(weights=WEIGHTS))


def _limit_job(args):
    """One plant -> (args, row): expert, prior, and each least-squares read-out's RMSE and success."""
    from sim.loops.deploy import iid_samples
    from sim.loops.loop import evaluate_success
    from sim.pretraining.family import _left_out
    from sim.world.experts import expert_for

    cell, labels, episodes = args
    task = _task(cell)
    expert, c = expert_for(task), _kbt(task)
    S, F = iid_samples(expert, 1, 0, labels, task=task)
    Sh, Fh = iid_samples(expert, 99, 0, 2000, task=task)
    row = {"left_out": bool(_left_out(task.params, "swingup")),
           "expert": evaluate_success(expert, task, episodes, 7).success_rate,
           "prior": evaluate_success(c, task, episodes, 7).success_rate}
    for name, names in (("z~", ()), ("z~ + hidden + attention", ADDED)):
        inputs = _readout_inputs(c, names)
        w = np.linalg.lstsq(inputs(S), F, rcond=None)[0]
        row[name] = (float(np.sqrt(np.mean((inputs(Sh) @ w - Fh) ** 2))),
                     evaluate_success(_Readout(inputs, w), task, episodes, 7).success_rate)
    return args, row


def limit(a):
    t0 = time.perf_counter()
    res = run_jobs(_limit_job, [(cell, a.labels, a.episodes) for cell in inside_cells()], workers=a.jobs,
                   label="many-label limit", progress=not a.no_progress)
    print(f"least-squares read-out of {a.labels} i.i.d. expert labels; success over {a.episodes} episodes; "
          "RMSE on 2 000 held-out labels")
    print(f"{'plant (m_c, m_p, l_p)':>24} {'left out':>8} {'expert':>6} {'prior':>5} "
          f"{'z~: RMSE':>8} {'success':>7} {'wide: RMSE':>10} {'success':>7}")
    for (cell, *_), row in res:
        (rz, sz), (rw, sw) = row["z~"], row["z~ + hidden + attention"]
        print(f"{'(%g, %g, %g)' % cell:>24} {'yes' if row['left_out'] else 'no':>8} {row['expert']:6.2f} "
              f"{row['prior']:5.2f} {rz:8.3f} {sz:7.2f} {rw:10.3f} {sw:7.2f}")
    feasible = [row for _, row in res if row["expert"] >= 0.9]
    for name in ("z~", "z~ + hidden + attention"):
        print(f"mean success where the expert swings up, {name}: {np.mean([r[name][1] for r in feasible]):.2f}")
    print(f"({time.perf_counter() - t0:.0f} s)")


def _widths(c):
    """(d_in, n_added): the widths of z~ without its 1 and of the added activations for controller ``c``."""
    x = np.zeros((1, 4))
    d_in = c.inputs(x).shape[1]
    return d_in, _readout_inputs(c, ADDED)(x).shape[1] - d_in - 1


def _added_cov(kind):
    """The added inputs' prior covariance before scaling: I, or the training family's (``wide`` doc)."""
    from sim.world.task import SWINGUP

    c = _kbt(SWINGUP)
    d_in, n = _widths(c)
    if kind == "eye":
        return np.eye(n)
    from alpaca import _members
    from sim.pretraining.alpaca import family_trajectories

    inputs = _readout_inputs(c, ADDED)
    fam = family_trajectories(_members(argparse.Namespace(plants=40, family_seed=1)), 10, np.random.default_rng(0))
    W = np.array([np.linalg.lstsq(inputs(S), F, rcond=None)[0] for S, F, _ in fam])
    return np.cov(W[:, d_in:d_in + n].T) + 1e-3 * np.eye(n)


def _wide_learner(task, prior):
    """The Bayesian read-out of ``prior`` = ("z", ...) or (kind, S, Z, V) (module doc)."""
    from controller.weight_sets import learned_prior

    c = _kbt(task)
    m0, P0, _ = learned_prior(c, WEIGHTS)
    if prior[0] == "z":
        return _WideBLR(_readout_inputs(c, ()), m0, P0, 3.0)
    _, s, zs, V = prior
    d_in, _ = _widths(c)
    n = d_in + len(V) + 1
    keep = np.r_[np.arange(d_in), n - 1]            # z~'s columns among [z; added; 1]
    m, P = np.zeros(n), np.zeros((n, n))
    m[keep], P[np.ix_(keep, keep)] = m0, zs * P0
    P[d_in:n - 1, d_in:n - 1] = s * V
    return _WideBLR(_readout_inputs(c, ADDED), m, P, 3.0)


def _wide_job(args):
    """One plant and trial of a ``--priors`` entry ``(index, prior)``, or of the expert (None) -> (args, success per mark)."""
    from sim.loops.deploy import DeployConfig, run_deployment
    from sim.loops.loop import evaluate_success
    from sim.world.experts import expert_for

    cell, tagged, episodes, seed, marks = args
    task = _task(cell)
    expert = expert_for(task)
    if tagged is None:
        return args, [float(evaluate_success(expert, task, episodes, seed).success_rate)]
    cfg = DeployConfig(samples=marks[-1], stream="iid", episodes=episodes, seed=seed, labels="always",
                       checkpoints=marks)
    rows = run_deployment(_wide_learner(task, tagged[1]), task, cfg, expert=expert).rows
    return args, [r["success_rate"] for r in rows if r["labels"] in marks]


def wide(a):
    covs = {kind: _added_cov(kind) for kind in {p[0] for p in a.priors if p[0] != "z"}}
    priors = [p if p[0] == "z" else (*p, covs[p[0]]) for p in a.priors]
    cells = inside_cells() if a.plant is None else [tuple(a.plant)]
    marks = tuple(a.labels_at)
    work = [(cell, None, a.episodes, 1000 * a.seed, marks) for cell in cells]
    work += [(cell, (i, pr), a.episodes, 1000 * a.seed + t, marks) for cell in cells for i, pr in enumerate(priors)
             for t in range(a.trials)]
    t0 = time.perf_counter()
    res = run_jobs(_wide_job, work, workers=a.jobs, label="wide read-out", progress=not a.no_progress)
    got = {}
    for (cell, pr, *_), s in res:
        got.setdefault((cell, None if pr is None else pr[0]), []).append(s)
    # one --plant is run whatever its expert does; the held-out mean counts the plants the expert swings up
    feasible = cells if a.plant is not None else [c for c in cells if got[(c, None)][0][0] >= 0.9]
    print(f"success after {' / '.join(map(str, marks))} i.i.d. labels, {a.trials} trials (seeds "
          f"{1000 * a.seed}..), {a.episodes} episodes; plants"
          + ("" if a.plant is not None else " where the expert swings up") + ": "
          + ", ".join("(%g, %g, %g)" % c for c in feasible))
    for i, p in enumerate(a.priors):
        S = np.array([got[(c, i)] for c in feasible])          # plants, trials, marks
        name = "z~, learned prior" if p[0] == "z" else f"wide, {p[0]} x {p[1]:g}, P0 x {p[2]:g}"
        if a.plant is not None:
            for t, row in enumerate(S[0]):
                print(f"  {name}, trial {t}: " + " ".join(f"{v:.2f}" for v in row))
        print(f"  {name}: mean " + " ".join(f"{v:.2f}" for v in S.mean(axis=(0, 1)))
              + f" | at {marks[-1]} per plant " + " ".join(f"{v:.2f}" for v in S[:, :, -1].mean(1))
              + " | worst trial " + " ".join(f"{v:.2f}" for v in S[:, :, -1].min(1)))
    print(f"({time.perf_counter() - t0:.0f} s)")


def split(a):
    import json

    from sim.pretraining.family import _left_out

    for path in a.maps:
        with open(path) as f:
            d = json.load(f)
        cells = set(inside_cells()) & {(r["m_c"], r["m_p"], r["l_p"]) for r in d["rows"]}
        got = {}
        for r in d["rows"]:
            cell = (r["m_c"], r["m_p"], r["l_p"])
            if cell in cells:
                got.setdefault((r["method"], cell), []).append(r["success"])
        if "expert" not in d["methods"]:
            a.parser.error(f"maps: {path} has no expert rows (run the shift map with its default methods)")
        feasible = [c for c in sorted(cells) if np.mean(got[("expert", c)]) >= 0.9]
        out = [c for c in feasible if _left_out(_task(c).params, "swingup")]
        rest = [c for c in feasible if c not in out]
        print(f"{path}: {d['labels']} labels, {d['trials']} trials; left out: "
              + ", ".join("(%g, %g, %g)" % c for c in out))
        for m in d["methods"]:
            if m == "expert":
                continue
            mean = lambda cs: np.mean([np.mean(got[(m, c)]) for c in cs])      # noqa: E731
            print(f"  {m}: all {mean(feasible):.2f} | outside the left-out neighbourhoods ({len(rest)}) "
                  f"{mean(rest):.2f} | inside ({len(out)}) {mean(out):.2f}")


def _prior_arg(ap, text):
    """``z``, ``eye:S[:Z]`` or ``family:S[:Z]`` -> (kind, S, Z), or a one-line usage error."""
    kind, *values = text.split(":")
    if kind == "z" and not values:
        return ("z", None, None)
    try:
        values = [float(v) for v in values] + [1.0] * (len(values) == 1)
    except ValueError:
        values = []
    if kind not in ("eye", "family") or len(values) != 2 or not min(values) > 0:
        ap.error(f"--priors: expected z, eye:S[:Z] or family:S[:Z] with S, Z > 0 but found {text!r}")
    return (kind, *values)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="heldout_limit", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="probe", required=True)
    lm = sub.add_parser("limit", help="the least-squares read-outs of many labels, per plant")
    lm.add_argument("--labels", type=int, default=5000)
    lm.add_argument("--episodes", type=int, default=30)
    wd = sub.add_parser("wide", help="a wider Bayesian read-out after 10 to 100 labels")
    wd.add_argument("--priors", nargs="+", default=["z", "eye:0.03"])
    wd.add_argument("--trials", type=int, default=3)
    wd.add_argument("--episodes", type=int, default=50)
    wd.add_argument("--seed", type=int, default=0)
    wd.add_argument("--labels-at", type=int, nargs="+", default=list(MARKS))
    wd.add_argument("--plant", type=float, nargs=3, metavar=("M_C", "M_P", "L_P"),
                    help="one plant instead of the held-out ones")
    sp = sub.add_parser("split", help="a shift map's held-out means, in and outside the left-out neighbourhoods")
    sp.add_argument("maps", nargs="+", help="shift.json files of swing-up shift maps")
    for p in (lm, wd):
        p.add_argument("--jobs", type=int, default=2)
        p.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    a.parser = ap
    if a.probe == "split":
        split(a)
        return
    if a.episodes < 1 or a.jobs < 1 or getattr(a, "trials", 1) < 1 or getattr(a, "labels", 100) < 100:
        ap.error("--episodes, --jobs and --trials must be >= 1, --labels >= 100")
    if a.probe == "limit":
        limit(a)
    else:
        if min(a.labels_at) < 1 or list(a.labels_at) != sorted(set(a.labels_at)) or min(a.plant or [1]) <= 0:
            ap.error("--labels-at must be increasing and >= 1, --plant values > 0")
        a.priors = [_prior_arg(ap, p) for p in a.priors]
        wide(a)


if __name__ == "__main__":
    main()
