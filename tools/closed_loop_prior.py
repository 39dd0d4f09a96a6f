"""A control-oriented prior for the region read-out: its mean and widths chosen by closed-loop
success after a few labels on the family's own plants, not by how well it fits their labels
(docs/heldout-limit.md, "A closed-loop objective").

``kbt@alpaca-region`` starts each region from the learned prior N(m0, P0) of ``swingup-alpaca``
(fitted to the family's labels) and counts a label away from upright FW times noisier. Here the
prior is  m_r = m0 + L_k a_r  per region r (near upright, away from it), with L_k the top ``--k``
directions of P0 scaled by their standard deviations (each direction's sign fixed by its largest
entry), the covariances s_n P0 and s_f P0, and the
far weight FW: theta = (a_n, a_f, log s_n, log s_f, log FW), 2 k + 3 numbers. ``search`` runs an
evolution strategy (antithetic pairs, rank-shaped fitness) on the closed-loop objective: the mean
success, over ``--plants`` of the 40 training plants drawn afresh each generation, at 25, 50 and
100 labels of the plant's expert (``--streams``: i.i.d., the shift map's stream, and/or the
controller's own states; ``--episodes`` each), so a prior is scored by the controller its
posterior makes, early and late. ``--marks`` changes the label counts
scored (0: the prior alone, before any label, so that a search keeps what the prior already
swings up) and ``--drop-weight`` subtracts that weight times the mean fall below the best earlier
mark (a trial that learns and then loses it scores below one that keeps it); ``--k 0`` keeps both
means at the learned prior's and searches the widths and far weight only; ``--start FILE`` starts
from an earlier search's final mean; ``--handoff N`` scores each candidate as the second
read-out of ``HandOff``, taking over from the tool's region read-out at N labels (as
``tools/heldout_probe.py --regions 30:9 --then FILE --switch N`` runs it). No held-out plant and no TARGET
seed is seen. The search's final mean (theta) and the prior it makes are written to a file that
``tools/heldout_probe.py --prior FILE`` scores on the held-out plants and on TARGET.

    python tools/closed_loop_prior.py --generations 24 --population 12 --out results/closed_loop_prior/prior.npz
    python tools/closed_loop_prior.py --generations 20 --plants 6 --streams iid onpolicy \
        --out results/closed_loop_prior/both_streams/prior.npz
    python tools/closed_loop_prior.py --generations 20 --plants 6 --streams iid onpolicy --marks 0 25 50 100 \
        --drop-weight 1 --seed 1 --out results/closed_loop_prior/keep/seed1/prior.npz
    python tools/closed_loop_prior.py --start results/closed_loop_prior/keep/seed3/prior.npz --generations 15 --plants 6 \
        --streams iid onpolicy --marks 0 10 25 50 100 --drop-weight 1 --seed 5 \
        --out results/closed_loop_prior/keep/from_seed3/prior.npz
    python tools/closed_loop_prior.py --start results/closed_loop_prior/keep/seed3/prior.npz --handoff 51 \
        --generations 12 --plants 6 --streams iid onpolicy --marks 25 50 75 100 200 --drop-weight 1 --seed 6 \
        --out results/closed_loop_prior/handoff/search/prior.npz
    python tools/closed_loop_prior.py --start results/closed_loop_prior/handoff/search/prior.npz --handoff 51 \
        --robust 2 --generations 10 --plants 6 --streams iid onpolicy --marks 25 50 75 100 200 400 \
        --drop-weight 1 --seed 8 --out results/closed_loop_prior/handoff/search_late/prior.npz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sim.experiments.trials import run_jobs

WEIGHTS = "swingup-alpaca"
#: the objective's label checkpoints when ``--marks`` is not given
MARKS = (25, 50, 100)
#: theta's start: no mean shift, the shipped region read-out's widths and a far weight between
#: the shipped 30 and the 1 that learns the held-out plants (docs/heldout-limit.md)
START_LOG = (np.log(3.0), np.log(3.0), np.log(3.0))


def _base():
    """(m0, P0, L): the learned prior of ``swingup-alpaca``'s KBT inputs and P0's square-root
    directions, largest first (P0 = L L')."""
    from controller.weight_sets import learned_prior
    from sim.loops.methods import MethodSettings, make_controller
    from sim.world.task import SWINGUP

    c = make_controller("kbt", SWINGUP, MethodSettings(weights=WEIGHTS))
    m0, P0, _ = learned_prior(c, WEIGHTS)
    w, V = np.linalg.eigh(P0)
    order = np.argsort(w)[::-1]
    V = V[:, order]
    # each direction's sign fixed by its largest entry, so theta means the same on any LAPACK
    V = V * np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])])
    return m0, P0, V * np.sqrt(np.maximum(w[order], 0.0))


def prior_of(theta, k, base=None):
    """theta -> (m_near, m_far, s_near, s_far, far_weight) (module doc)."""
    m0, _, L = _base() if base is None else base
    a_n, a_f, (ls_n, ls_f, lfw) = theta[:k], theta[k:2 * k], theta[2 * k:]
    return m0 + L[:, :k] @ a_n, m0 + L[:, :k] @ a_f, float(np.exp(ls_n)), float(np.exp(ls_f)), \
        float(max(1.0, np.exp(lfw)))


def region_controller(task, prior, robust=None):
    """``kbt@alpaca-region``'s controller on ``task`` from ``prior`` = ``prior_of``'s tuple
    (its surprise clause as shipped; ``robust``: the head's robust weight c, None for the head's
    own c = 8, as when the first searches ran)."""
    from controller.region_kbt import region_prior
    from controller.weight_sets import learned_prior
    from sim.loops.methods import make_region_kbt

    m_n, m_f, s_n, s_f, fw = prior
    c = make_region_kbt(task, WEIGHTS, far_weight=fw, robust=robust)
    m0, P0, _ = learned_prior(c, WEIGHTS)
    _, P = region_prior(m0, s_n * P0, s_f * P0)
    # region_prior's coefficients (a_n, b_n - b_f, a_f, b_f), from each region's own mean
    m = np.r_[m_n[:-1], m_n[-1] - m_f[-1], m_f]
    c.use_prior(m, P)
    return c


class HandOff:
    """Two controllers that learn every label; ``first`` acts until ``switch`` labels have been
    learned, ``then`` from there on (each label is still ``first``'s to learn after the switch).

    A prior that swings up the plants near the family's centre with no label (the learned
    prior's mean) and one whose posterior swings up more of the family after many labels (a
    closed-loop search's) disagree on the plants at the family's edge; no label-fit statistic
    told the two kinds of plant apart (docs/heldout-limit.md, "A hand-off between two priors").
    Everything but ``observe`` is the acting controller's."""

    def __init__(self, first, then, switch):
        self.heads, self.switch, self.learned = (first, then), int(switch), 0

    @property
    def acting(self):
        return self.heads[self.learned >= self.switch]

    def observe(self, state, force):
        out = [c.observe(state, force) for c in self.heads]
        self.learned += 1
        return out[self.learned >= self.switch]

    def __getattr__(self, name):
        # only names HandOff lacks come here; before __init__ (copy, pickle) ``heads`` is one
        if name.startswith("__") or name in ("heads", "switch", "learned", "acting"):
            raise AttributeError(name)
        return getattr(self.acting, name)


def score_of(success, drop_weight=0.0):
    """Success at the label marks, in order -> the objective: their mean, less ``drop_weight``
    times the mean fall below the best earlier mark (a controller that learns and then loses
    it scores below one that keeps it)."""
    s = np.asarray(success, float)
    # fall_i = max_{j <= i} s_j - s_i  (0 for a trial that never gets worse)
    return float(s.mean() - drop_weight * (np.maximum.accumulate(s) - s).mean())


def _learner(member, prior, handoff=None, robust=None):
    """The candidate's region read-out on ``member``, or with ``handoff`` = N labels the hand-off to
    it from the tool's region read-out (the learned prior, far weight 30, surprise 9, the head's
    c = 8: ``tools/heldout_probe.py --regions 30:9``), as ``--then FILE --switch N`` runs it."""
    from sim.loops.methods import make_region_kbt

    c = region_controller(member, prior, robust)
    return c if handoff is None else HandOff(make_region_kbt(member, WEIGHTS, 30.0, 9.0), c, handoff)


def _job(args):
    """One candidate on one plant -> ``score_of`` its success at ``marks`` labels (0: the prior alone)."""
    from sim.loops.deploy import DeployConfig, run_deployment

    prior, member, expert, episodes, seed, stream, marks, drop_weight, handoff, robust = args
    cfg = DeployConfig(samples=marks[-1], stream=stream, episodes=episodes, seed=seed, labels="always",
                       checkpoints=tuple(m for m in marks if m))
    rows = run_deployment(_learner(member, prior, handoff, robust), member, cfg, expert=expert).rows
    success = {r["labels"]: r["success_rate"] for r in rows}
    return score_of([success[m] for m in marks], drop_weight)


def search(a):
    from sim.pretraining.family import family_members
    from sim.world.task import SWINGUP

    members = [(m, e) for _, m, e in family_members(SWINGUP, 40, 1)]
    base = _base()
    dim = 2 * a.k + 3
    theta = np.r_[np.zeros(2 * a.k), START_LOG] if a.start is None else a.start
    rng = np.random.default_rng(a.seed)
    history, thetas = [], [theta.copy()]
    t0 = time.perf_counter()
    for g in range(a.generations):
        picks = rng.choice(len(members), size=a.plants, replace=False)
        eps = rng.normal(size=(a.population // 2, dim))
        cands = [theta] + [theta + s * a.sigma * e for e in eps for s in (1.0, -1.0)]
        seed = int(rng.integers(1 << 30))
        jobs = [(prior_of(c, a.k, base), *members[i], a.episodes, seed + i, st, a.marks, a.drop_weight, a.handoff,
                 a.robust)
                for c in cands for i in picks for st in a.streams]
        res = np.array(run_jobs(_job, jobs, workers=a.jobs, label=f"generation {g}", progress=False))
        score = res.reshape(len(cands), -1).mean(axis=1)
        # rank-shaped fitness of the antithetic pairs -> a step along their weighted directions
        ranks = np.argsort(np.argsort(score[1:])) / (len(score) - 2) - 0.5
        grad = ((ranks[0::2] - ranks[1::2])[:, None] * eps).sum(axis=0) / (len(eps) * a.sigma)
        theta = theta + a.lr * grad
        thetas.append(theta.copy())
        history.append((g, float(score[0]), float(score[1:].mean()), float(score[1:].max())))
        print(f"generation {g}: mean {score[0]:.3f}, candidates {score[1:].mean():.3f} (best {score[1:].max():.3f}); "
              f"s_n {np.exp(theta[-3]):.2f} s_f {np.exp(theta[-2]):.2f} FW {max(1, np.exp(theta[-1])):.2f}; "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    m_n, m_f, s_n, s_f, fw = prior_of(theta, a.k, base)
    np.savez(out, theta=theta, k=a.k, thetas=np.array(thetas), history=np.array(history),
             m_near=m_n, m_far=m_f, s_near=s_n, s_far=s_f, far_weight=fw,
             **({} if a.robust is None else {"robust": a.robust}))
    print(f"the search's final mean -> {out}")


def _read(path):
    """(``load``'s prior, ``robust_of``'s c) from one read of a file the search wrote."""
    with np.load(path) as f:
        prior = f["m_near"], f["m_far"], float(f["s_near"]), float(f["s_far"]), float(f["far_weight"])
        return prior, (float(f["robust"]) if "robust" in f.files else None)


def load(path):
    """The prior (``prior_of``'s tuple) in a file the search wrote: its means and widths as
    stored, not re-made from theta (the prior, not its coordinates, is the result)."""
    return _read(path)[0]


def robust_of(path):
    """The robust weight c a file's search ran its read-out with (``--robust``), None for the
    head's own (files written before the option, or without it)."""
    return _read(path)[1]


def region_controller_from(task, path, scale=1.0):
    """``region_controller`` on ``task`` from a file the search wrote: its prior with both widths
    x ``scale``, and its robust weight."""
    (m_n, m_f, s_n, s_f, fw), robust = _read(path)
    return region_controller(task, (m_n, m_f, scale * s_n, scale * s_f, fw), robust)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=24)
    ap.add_argument("--population", type=int, default=12, help="candidates per generation (even)")
    ap.add_argument("--plants", type=int, default=8, help="training plants per generation")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--k", type=int, default=5,
                    help="directions of P0 the means move along (0: the means stay the learned prior's)")
    ap.add_argument("--streams", nargs="+", choices=("iid", "onpolicy"), default=["iid"],
                    help="label streams the objective scores: the expert's states, the controller's own, or both")
    ap.add_argument("--marks", type=int, nargs="+", default=list(MARKS),
                    help="label counts the objective scores, rising (0: the prior alone, before any label)")
    ap.add_argument("--drop-weight", type=float, default=0.0,
                    help="weight of the mean fall below the best earlier mark (0: the marks' mean alone)")
    ap.add_argument("--start", default=None,
                    help="a file this tool wrote: the search starts from its final mean (same --k)")
    ap.add_argument("--handoff", type=int, default=None,
                    help="score each candidate as the second read-out of a hand-off from the region "
                         "read-out at N labels (heldout_probe.py's --then FILE --switch N)")
    ap.add_argument("--robust", type=float, default=None,
                    help="the candidate read-out's robust weight c (default: the head's own, 8); stored "
                         "in the file, and heldout_probe.py builds its read-out with it")
    ap.add_argument("--sigma", type=float, default=0.3)
    ap.add_argument("--lr", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="results/closed_loop_prior/prior.npz")
    a = ap.parse_args(argv)
    if (a.generations < 1 or a.population < 2 or a.population % 2 or not 1 <= a.plants <= 40
            or a.episodes < 1 or not 0 <= a.k <= 21 or a.sigma <= 0 or a.lr <= 0 or a.jobs < 1):
        ap.error("--generations, --episodes, --jobs >= 1; --population even >= 2; --plants 1..40; "
                 "--k 0..21; --sigma, --lr > 0")
    if min(a.marks) < 0 or not 1 <= max(a.marks) <= 1000 or list(a.marks) != sorted(set(a.marks)):
        ap.error("--marks: label counts 0..1000, rising, each once, one at least 1")
    if not 0 <= a.drop_weight <= 100:
        ap.error("--drop-weight: 0..100")
    if a.robust is not None and not a.robust > 0:
        ap.error(f"--robust: expected c > 0 but found {a.robust:g}")
    if a.handoff is not None and not 1 <= a.handoff < max(a.marks):
        ap.error(f"--handoff: 1 .. {max(a.marks) - 1} labels (before the last of --marks)")
    a.marks = tuple(a.marks)
    if a.start is not None:
        try:
            with np.load(a.start) as f:
                a.start, k = np.array(f["theta"], float), int(f["k"])
        except (OSError, KeyError, ValueError) as e:
            ap.error(f"--start: not a file this tool wrote ({e})")
        if k != a.k:
            ap.error(f"--start: its search had --k {k}, this one --k {a.k}")
    search(a)


if __name__ == "__main__":
    main()
