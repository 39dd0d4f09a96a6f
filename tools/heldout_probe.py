"""Held-out swing-up plants inside the family range: what a wider prior, a read-out per region
and the labels' own surprise can and cannot do.

The plants are the shift map's (``tools/shift_map.py``) inside the family range: the (m_p, l_p)
grid with TARGET's cart and the m_c line with TARGET's pole, every value inside
``FAMILY_RANGE``; the mean is over the cells where the plant's own expert swings up in at least
0.9 of the episodes (as in docs/shift-map.md). Two probes:

* ``scale``: success after ``--labels`` i.i.d. labels (the shift map's stream, episodes and seeds:
  trial t of a cell runs with seed 1000 ``--seed`` + t) for KBT on ``swingup-alpaca`` with the
  learned prior's covariance times each ``--scales`` factor, and, with ``--regions FW:S``, the
  region read-out (``kbt@alpaca-region``'s controller with the head's robust c = 8 where the
  variant now has 2, far labels FW x noisier unless
  e^2 / (q + R) > S; ``1:0`` is a plain split) from the same scaled prior. ``FW:S:C:K:RW``
  also sets the robust weight C, the run K of surprising far labels that counts fully and the
  weight RW of labels at the hanging rest (``RegionKBTController``'s far_run and rest_weight;
  a sixth field A = 1: only rest labels against the prediction's sign, rest_against);
  ``30:9:2`` is ``kbt@alpaca-region``. Scale 1 without
  regions is ``kbt@alpaca`` itself. ``--stream onpolicy``: the labels come from the
  controller's own states instead.
* ``target``: the same learners on TARGET itself, both streams, as ``kbt experiment adapt`` runs
  a trial (trial t: seed 1000 ``--seed`` + t, controller seed t): success per checkpoint, the
  mean (worst) at 50 labels, the trials that break the per-trial rule (once at 0.95, never
  below 0.9 later) from 10 labels on at ``kbt experiment adapt``'s checkpoints (and with a
  checkpoint at 75 labels too), and the worst trial per checkpoint (``--per-trial``: every
  trial's row): what the setting costs where the prior is right.
* ``innovations``: on TARGET and on each plant, 400 states the plant's expert visits (seed
  ``--seed``) labelled by that expert, the standardised innovation e^2 / (q + R) of each label
  under the learned prior (no label learned) near upright and away from it: does a label's fit
  tell a plant whose swing-up must be learned from one whose swing-up must be left alone?
* ``curve``: one plant (``--plant M_C M_P L_P``), success per trial at 0 and each of
  ``--labels-at`` i.i.d. labels (the shift map's stream; tuning seed 5 by default) for
  ``kbt@alpaca`` and each ``--regions FW:S`` read-out (``1e6:1e9``: the pumping labels all but
  ignored, only the catch learned) and, for each ``--ranks R``, ``kbt@alpaca`` with P0 cut to its
  top R eigen-directions: does learning break a plant the prior already swings up, and along
  which of the family's directions?

``scale`` and ``target`` also take other learners: with ``--regions``, ``--near-scale N`` (the
near-upright region's P0 x N instead of each ``--scales``) and ``--far-rank R`` (the far region's
P0 cut to its top R directions); ``--mirror`` (each label (s, u) also learned as (-s, -u), exact
for the cart-pole's odd experts); ``--prior FILE`` (the region read-out from
``tools/closed_loop_prior.py``'s prior); ``--bank FILE`` (``tools/family_bank.py``'s bank, with
``--bank-select`` and ``--bank-refine``; ``--scales 1``); ``--then FILE --switch N`` (a second
read-out from a closed-loop prior file learns every label beside the learner and acts in its
place from N labels on: ``closed_loop_prior.HandOff``). ``scale`` prints the mean to three
decimals, the cells to two.

    python tools/heldout_probe.py scale --seed 5 --episodes 30 --scales 1 2 3 5 10
    python tools/heldout_probe.py scale --seed 0 --scales 3
    python tools/heldout_probe.py scale --seed 5 --episodes 30 --scales 1 --stream onpolicy
    python tools/heldout_probe.py scale --seed 5 --episodes 30 --scales 1 3 10 --regions 1:0
    python tools/heldout_probe.py target --seed 5 --episodes 50 --scales 1 3
    python tools/heldout_probe.py target --seed 5 --episodes 50 --scales 10 --regions 1:0
    python tools/heldout_probe.py innovations
    python tools/heldout_probe.py curve --plant 1 0.2913 0.7746 --regions 30:9 1e6:1e9
    python tools/heldout_probe.py curve --plant 1 0.2913 0.7746 --ranks 1 2 3 5
    python tools/heldout_probe.py scale --seed 5 --episodes 30 --scales 10 --regions 1:0 --far-rank 5
    python tools/heldout_probe.py scale --seed 5 --episodes 30 --scales 1 3 10 --mirror
    python tools/heldout_probe.py scale --seed 0 --scales 1 --prior results/closed_loop_prior/prior.npz
    python tools/heldout_probe.py scale --seed 0 --scales 1 --bank results/family_bank/bank.npz --bank-refine 10
    python tools/heldout_probe.py target --seed 0 --trials 20 --episodes 100 --scales 1 --regions 30:9 \
        --then results/closed_loop_prior/keep/seed3/prior.npz --switch 51
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from shift_map import cells as map_cells

from sim.experiments.trials import run_jobs
from sim.pretraining.family import FAMILY_RANGE
from sim.world.task import PLANTS, TASKS

WEIGHTS = "swingup-alpaca"
#: --regions' C, K, RW and A when not given: the head's robust weight, no run, no rest rule
REGION_DEFAULTS = (None, 1, 1.0, False)


def inside_cells():
    """The shift map's plants (its default five values per sweep) inside the family range, as (m_c, m_p, l_p)."""
    lo, hi = FAMILY_RANGE["swingup"]
    plants = [(m_c, m_p, l_p) for _, m_c, m_p, l_p in map_cells("swingup", 5)]
    return [c for c in plants if all(lo[i] <= c[i] <= hi[i] for i in range(3))]


def _task(cell):
    base = TASKS["swingup"].on(PLANTS["swingup"]["target"])
    m_c, m_p, l_p = cell
    return base.on(base.params.with_(m_c=m_c, m_p=m_p, l_p=l_p))


def top_directions(P0, rank):
    """P0 cut to its ``rank`` largest eigen-directions (+ 1e-6 I): a read-out that can learn only
    along the family's main modes of variation."""
    w, V = np.linalg.eigh(P0)
    top = np.argsort(w)[::-1][:rank]
    return (V[:, top] * w[top]) @ V[:, top].T + 1e-6 * np.eye(len(w))


def mirrored(c):
    """``c`` with each label (s, u) also learned as (-s, -u): the cart-pole and its experts are odd
    under x, x', theta, theta' -> their negatives, so the mirror image of a label is a label."""
    observe = c.observe

    def observe_both(state, force):
        observe(state, force)
        observe(-np.asarray(state, dtype=float), -float(force))

    c.observe = observe_both
    return c


def _controller(task, scale, regions, seed=0, rank=None, variant=(None, 0, False, None, None, None)):
    """The learner; ``variant`` = (near-upright P0 factor or None for ``scale``, rank of the far
    region's P0 or 0 for all of it, mirror labels, a prior file, (bank file, selection, refine)
    or None, (prior file, labels) or None): ``--near-scale``, ``--far-rank``, ``--mirror``,
    ``--prior``, ``--bank``, ``--then`` and ``--switch``."""
    from controller.weight_sets import learned_prior
    from sim.loops.methods import MethodSettings, make_controller, make_region_kbt

    near_scale, far_rank, mirror, prior_file, bank, handoff = variant
    if bank is not None:
        from family_bank import BankController

        c = BankController(task, *bank)
    elif prior_file is not None:
        from closed_loop_prior import region_controller_from

        c = region_controller_from(task, prior_file, scale)
    elif regions is None:
        c = make_controller("kbt", task, MethodSettings(weights=WEIGHTS), seed=seed)
        m0, P0, _ = learned_prior(c, WEIGHTS)
        c.use_prior(m0, scale * (P0 if rank is None else top_directions(P0, rank)))
    else:
        full = tuple(regions) + REGION_DEFAULTS[len(regions) - 2:]
        fw, sur, robust, far_run, rest_weight, against = full
        c = make_region_kbt(task, WEIGHTS, far_weight=fw, far_surprise=sur, robust=robust, far_run=far_run,
                            rest_weight=rest_weight, rest_against=against)
        m0, P0, _ = learned_prior(c, WEIGHTS)
        far = P0 if not far_rank else top_directions(P0, far_rank)
        c.use_region_prior(m0, (scale if near_scale is None else near_scale) * P0, scale * far)
    if handoff is not None:
        from closed_loop_prior import HandOff, region_controller_from

        c = HandOff(c, region_controller_from(task, handoff[0]), handoff[1])
    return mirrored(c) if mirror else c


def _job(args):
    """One cell, learner and trial -> (args, success) as ``tools/shift_map.py`` runs it."""
    from sim.loops.deploy import DeployConfig, run_deployment
    from sim.loops.loop import evaluate_success
    from sim.world.experts import expert_for

    cell, learner, labels, episodes, seed, stream, variant = args
    task = _task(cell)
    expert = expert_for(task)
    if learner == "expert":
        return args, float(evaluate_success(expert, task, episodes, seed).success_rate)
    scale, regions = learner
    cfg = DeployConfig(samples=labels, stream=stream, episodes=episodes, seed=seed, labels="always",
                       checkpoints=(labels,))
    rows = run_deployment(_controller(task, scale, regions, seed, variant=variant), task, cfg, expert=expert).rows
    return args, float([r["success_rate"] for r in rows if r["labels"] == labels][0])


def scale(a):
    regions = a.region_settings
    learners = ["expert"] + [(s, regions) for s in a.scales]
    cells = inside_cells()
    work = [(cell, ln, a.labels, a.episodes, 1000 * a.seed + t, a.stream, a.variant) for cell in cells for ln in learners
            for t in range(1 if ln == "expert" else a.trials)]
    t0 = time.perf_counter()
    res = run_jobs(_job, work, workers=a.jobs, label="held-out probe", progress=not a.no_progress)
    got = {}
    for (cell, ln, *_), s in res:
        got.setdefault((cell, ln), []).append(s)
    feasible = [c for c in cells if got[(c, "expert")][0] >= 0.9]
    name = _variant_name(a)
    stream = "i.i.d." if a.stream == "iid" else "on-policy"
    print(f"success after {a.labels} {stream} labels, {a.trials} trials (seeds {1000 * a.seed}..), "
          f"{a.episodes} episodes; cells (m_c, m_p, l_p) where the expert swings up: "
          + ", ".join(f"({c[0]:g}, {c[1]:g}, {c[2]:g})" for c in feasible))
    for ln in learners[1:]:
        means = [float(np.mean(got[(c, ln)])) for c in feasible]
        worst = [min(got[(c, ln)]) for c in feasible]
        print(f"  {name}, P0 x {ln[0]:g}: mean {np.mean(means):.3f} | per cell "
              + " ".join(f"{m:.2f}" for m in means) + " | worst trial per cell " + " ".join(f"{w:.2f}" for w in worst))
    print(f"({time.perf_counter() - t0:.0f} s)")


def _target_job(args):
    """One TARGET trial of ``kbt experiment adapt`` for a learner -> (args, success per checkpoint)."""
    from sim.experiments.adapt import _task as target_task
    from sim.loops.deploy import DeployConfig, run_deployment

    learner, stream, marks, episodes, seed, trial, variant = args
    task = target_task("swingup")
    cfg = DeployConfig(samples=marks[-1], stream=stream, episodes=episodes, seed=seed, labels="always",
                       checkpoints=tuple(m for m in marks if m > 0))
    c = _controller(task, learner[0], learner[1], seed=trial, variant=variant)
    return args, [r["success_rate"] for r in run_deployment(c, task, cfg).rows]


def target(a):
    from sim.experiments.adapt import non_monotone

    regions = a.region_settings
    # kbt experiment adapt's checkpoints, and 75 between its 50 and 100 (where --switch hands off)
    marks = (0, 10, 25, 50, 75, 100, 200, 300, 500, 700, 1000)
    rule = [i for i, m in enumerate(marks) if m >= 10 and m != 75]
    work = [((sc, regions), stream, marks, a.episodes, 1000 * a.seed + t, t, a.variant) for sc in a.scales
            for stream in ("iid", "onpolicy") for t in range(a.trials)]
    t0 = time.perf_counter()
    res = run_jobs(_target_job, work, workers=a.jobs, label="TARGET probe", progress=not a.no_progress)
    name = _variant_name(a)
    print(f"TARGET, {a.trials} trials (seeds {1000 * a.seed}..), {a.episodes} episodes; mean success at "
          + " ".join(str(m) for m in marks) + " labels")
    for sc in a.scales:
        for stream in ("iid", "onpolicy"):
            runs = [r for (ln, st, *_), r in res if ln == (sc, regions) and st == stream]
            S = np.array(runs)
            breakers = [t for t, r in enumerate(runs) if non_monotone([r[i] for i in rule])]
            broken = len(breakers)
            with75 = sum(non_monotone(r[marks.index(10):]) for r in runs)
            print(f"  {name}, P0 x {sc:g}, {stream:8}: " + " ".join(f"{v:.2f}" for v in S.mean(axis=0))
                  + f" | at 50: {S[:, marks.index(50)].mean():.2f} ({S[:, marks.index(50)].min():.2f})"
                  + f" | rule broken {broken} / {len(runs)} ({with75} with 75)"
                  + (f" (trials {', '.join(map(str, breakers))})" if breakers else "")
                  + " | worst trial " + " ".join(f"{v:.2f}" for v in S.min(axis=0)))
            for t, r in enumerate(runs if a.per_trial else []):
                print(f"    trial {t:2d}: " + " ".join(f"{v:.2f}" for v in r))
    print(f"({time.perf_counter() - t0:.0f} s)")


def innovations(a):
    from sim.world.data import trajectory_states
    from sim.world.experts import expert_for
    from sim.world.task import wrap_angle

    print("e^2 / (q + R) of each label under the learned prior (no label learned), 400 expert states per plant")
    print(f"{'plant (m_c, m_p, l_p)':>24} {'far share':>9} {'far mean':>8} {'far median':>10} {'far > 9':>7} "
          f"{'near mean':>9}")
    t = PLANTS["swingup"]["target"]
    for cell in [(t.m_c, t.m_p, t.l_p)] + inside_cells():
        task = _task(cell)
        expert = expert_for(task)
        S = trajectory_states(task, expert, [a.seed, 1], episodes=5)
        S = S[np.random.default_rng(a.seed).choice(len(S), size=min(400, len(S)), replace=False)]
        y = np.clip([expert.act(s) for s in S], -task.params.u_max, task.params.u_max)
        c = _controller(task, 1.0, (1.0, 0.0))      # the split's inputs: the learned prior on each side
        far = np.abs(wrap_angle(S[:, 2])) > c.catch_angle
        mu, _, q = c.predict_split(S)
        r = (y - mu) ** 2 / (q + c.head.noise_var)
        label = "TARGET" if cell == (t.m_c, t.m_p, t.l_p) else f"({cell[0]:g}, {cell[1]:g}, {cell[2]:g})"
        near = f"{r[~far].mean():9.2f}" if (~far).any() else f"{'-':>9}"    # an expert that never catches
        print(f"{label:>24} {far.mean():9.2f} {r[far].mean():8.2f} {np.median(r[far]):10.2f} "
              f"{np.mean(r[far] > 9):7.2f} {near}")


def _curve_job(args):
    """One trial of a learner on one plant -> (args, success at 0 labels and at each checkpoint)."""
    from sim.loops.deploy import DeployConfig, run_deployment
    from sim.world.experts import expert_for

    cell, learner, marks, episodes, seed = args
    task = _task(cell)
    cfg = DeployConfig(samples=marks[-1], stream="iid", episodes=episodes, seed=seed, labels="always",
                       checkpoints=marks)
    regions, rank = (None, learner[1]) if learner and learner[0] == "rank" else (learner, None)
    c = _controller(task, 1.0, regions, seed, rank=rank)
    return args, [r["success_rate"] for r in run_deployment(c, task, cfg, expert=expert_for(task)).rows]


def _learner_name(ln):
    if ln is None:
        return "one read-out (kbt@alpaca)"
    if ln[0] == "rank":
        return f"one read-out, P0 cut to its top {ln[1]} directions"
    return f"regions {_regions_text(ln)}"


def _regions_text(regions):
    """``--regions``' FW:S, with :C:K:RW[:1] when any of those is not its default (C '-': the head's)."""
    fw, sur, c, k, rw, against = regions
    more = "" if (c, k, rw, against) == REGION_DEFAULTS else f":{'-' if c is None else f'{c:g}'}:{k}:{rw:g}"
    return f"{fw:g}:{sur:g}{more}{':1' if against else ''}"


def curve(a):
    cell = tuple(a.plant)
    learners = ([None] + [_region_settings(a.parser, r) for r in a.regions]
                + [("rank", r) for r in a.ranks])
    marks = tuple(a.labels_at)
    work = [(cell, ln, marks, a.episodes, 1000 * a.seed + t) for ln in learners for t in range(a.trials)]
    res = run_jobs(_curve_job, work, workers=a.jobs, label="held-out curve", progress=not a.no_progress)
    print(f"plant ({cell[0]:g}, {cell[1]:g}, {cell[2]:g}): success after 0 / " + " / ".join(map(str, marks))
          + f" i.i.d. labels, {a.episodes} episodes, trials with seeds {1000 * a.seed}..")
    for ln in learners:
        name = _learner_name(ln)
        rows = np.array([s for (_, l, *_), s in res if l == ln])
        for t, row in enumerate(rows):
            print(f"  {name}, trial {t}: " + " ".join(f"{v:.2f}" for v in row))
        print(f"  {name}: mean " + " ".join(f"{v:.2f}" for v in rows.mean(0)) + " | worst "
              + " ".join(f"{v:.2f}" for v in rows.min(0)))


def _variant_name(a):
    """The learner's name in ``scale``'s and ``target``'s output."""
    near, rank, mirror, prior_file, bank, handoff = a.variant
    if bank is not None:
        return f"the bank {bank[0]}, {bank[1]} selection, refine {bank[2]:g}" + (", mirrored labels" if mirror else "")
    if prior_file is not None:
        name = f"the closed-loop prior {prior_file}"
    else:
        name = "prior" if a.regions is None else f"regions {a.regions}"
    if near is not None:
        name += f", near P0 x {near:g}"
    if rank:
        name += f", far P0 cut to {rank} directions"
    if handoff is not None:
        name += f" until {handoff[1]} labels, then the closed-loop prior {handoff[0]}"
    return name + (", mirrored labels" if mirror else "")


def _region_settings(ap, text):
    """(far_weight, far_surprise, robust or None, far_run, rest_weight, rest_against) from
    ``--regions FW:S[:C[:K[:RW[:A]]]]``, or a one-line usage error."""
    try:
        vals = [float(v) for v in text.split(":")]
    except ValueError:
        vals = []
    if not 2 <= len(vals) <= 6:
        ap.error(f"--regions: expected FW:S[:C[:K[:RW[:A]]]], two to six numbers, but found {text!r}")
    fw, sur, c, k, rw, against = vals + list(REGION_DEFAULTS)[len(vals) - 2:]
    if not (fw >= 1 and sur >= 0 and (c is None or c > 0) and k >= 1 and k == int(k) and rw >= 1
            and against in (0, 1)):
        ap.error(f"--regions: expected FW >= 1, S >= 0, C > 0, K a whole number >= 1, RW >= 1 and A 0 or 1 "
                 f"but found {text!r}")
    return fw, sur, c, int(k), rw, bool(against)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="probe", required=True)
    sc = sub.add_parser("scale", help="success on the held-out plants with the prior covariance scaled")
    tg = sub.add_parser("target", help="the same settings on TARGET: the cost where the prior is right")
    for p in (sc, tg):
        p.add_argument("--scales", type=float, nargs="+", default=[1.0, 3.0])
        p.add_argument("--regions", default=None, help="FW:S: the region read-out, far weight FW and surprise S")
        p.add_argument("--trials", type=int, default=3 if p is sc else 10)
        p.add_argument("--episodes", type=int, default=50)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--jobs", type=int, default=2)
        p.add_argument("--no-progress", action="store_true")
        p.add_argument("--near-scale", type=float, default=None,
                       help="with --regions: the near-upright region's P0 factor (default: each --scales)")
        p.add_argument("--far-rank", type=int, default=0,
                       help="with --regions: the far region's P0 cut to its top R directions (0: all)")
        p.add_argument("--mirror", action="store_true", help="learn each label's mirror image (-s, -u) too")
        p.add_argument("--prior", default=None, help="the region read-out from a tools/closed_loop_prior.py "
                       "file (its means, widths x each --scales, and far weight)")
        p.add_argument("--then", default=None, help="a tools/closed_loop_prior.py file (its widths as stored) whose "
                       "read-out learns every label beside the learner and acts in its place from --switch labels on")
        p.add_argument("--switch", type=int, default=100, help="with --then: the labels after which it acts")
        p.add_argument("--bank", default=None, help="a tools/family_bank.py file: act with the read-out the labels favour")
        p.add_argument("--bank-select", choices=("readout", "expert"), default="readout",
                       help="weigh a bank read-out by its own error on the labels, or by its plant's expert's")
        p.add_argument("--bank-refine", type=float, default=0.0,
                       help="refine each bank read-out as a Kalman filter from S x the region prior's P0 (0: fixed)")
    tg.add_argument("--per-trial", action="store_true", help="print each trial's success per checkpoint too")
    sc.add_argument("--labels", type=int, default=100)
    sc.add_argument("--stream", choices=("iid", "onpolicy"), default="iid",
                    help="where the labels come from: the expert's states (the shift map's) or the controller's own")
    inn = sub.add_parser("innovations", help="how surprising each plant's labels are under the learned prior")
    inn.add_argument("--seed", type=int, default=7)
    cv = sub.add_parser("curve", help="success against labels on one plant, per trial, for each read-out")
    cv.add_argument("--plant", type=float, nargs=3, metavar=("M_C", "M_P", "L_P"), required=True)
    cv.add_argument("--regions", nargs="*", default=[], help="FW:S for each region read-out beside kbt@alpaca")
    cv.add_argument("--ranks", type=int, nargs="*", default=[],
                    help="for each R, the one read-out with P0 cut to its top R eigen-directions")
    cv.add_argument("--labels-at", type=int, nargs="+", default=[10, 25, 50, 75, 100, 200, 400])
    cv.add_argument("--trials", type=int, default=5)
    cv.add_argument("--episodes", type=int, default=20)
    cv.add_argument("--seed", type=int, default=5)
    cv.add_argument("--jobs", type=int, default=2)
    cv.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    a.parser = ap
    if a.probe == "curve":
        if (a.trials < 1 or a.episodes < 1 or min(a.plant) <= 0 or min(a.labels_at) < 1
                or list(a.labels_at) != sorted(set(a.labels_at)) or min(a.ranks, default=1) < 1):
            ap.error("curve: --plant values > 0, --labels-at increasing and >= 1, --ranks, --trials and "
                     "--episodes >= 1")
        curve(a)
        return
    if a.probe in ("scale", "target"):
        if min(a.scales) <= 0 or a.trials < 1 or a.episodes < 1 or getattr(a, "labels", 1) < 1:
            ap.error("--scales must be > 0; --labels, --trials and --episodes >= 1")
        if a.regions is None and (a.near_scale is not None or a.far_rank):
            ap.error("--near-scale and --far-rank: need --regions FW:S")
        if (a.near_scale is not None and a.near_scale <= 0) or a.far_rank < 0:
            ap.error("--near-scale must be > 0 and --far-rank >= 0")
        if a.prior is not None and (a.regions is not None or a.near_scale is not None or a.far_rank):
            ap.error("--prior: a region read-out of its own; drop --regions, --near-scale and --far-rank")
        if a.then is not None and (a.bank is not None or a.switch < 1):
            ap.error("--then: not with --bank, and --switch >= 1")
        for flag, path in (("--prior", a.prior), ("--then", a.then), ("--bank", a.bank)):
            if path is not None and not Path(path).is_file():
                ap.error(f"{flag}: no file {path}")
        if a.bank is not None and (a.prior is not None or a.regions is not None or a.scales != [1.0]):
            ap.error("--bank: a learner of its own; drop --prior and --regions, and --scales other than 1")
        if a.bank_refine < 0 or (a.bank_select == "expert" and a.bank_refine > 0):
            ap.error("--bank-refine must be >= 0, and 0 with --bank-select expert")
        bank = None if a.bank is None else (a.bank, a.bank_select, a.bank_refine)
        a.variant = (a.near_scale, a.far_rank, a.mirror, a.prior, bank, None if a.then is None else (a.then, a.switch))
        a.region_settings = None if a.regions is None else _region_settings(ap, a.regions)
        (scale if a.probe == "scale" else target)(a)
    else:
        innovations(a)


if __name__ == "__main__":
    main()
