"""A bank of the family's own controllers: each training plant's least-squares read-out of
``swingup-alpaca``'s region inputs, beside the learned prior's mean, with the labels choosing
among them (docs/heldout-limit.md, "A bank of the family's controllers").

A Gaussian prior's posterior mean moves between controllers that work, through ones that do
not. A bank holds only controllers that work on some plant: each of the 40 training plants'
read-out, fitted to 10 of its expert's episodes (``alpaca.py``'s data), and the learned prior's
mean. ``BankController`` acts with the read-out the labels favour:

* ``select="readout"``: the highest posterior weight, each label adding
  -e^2 / (2 (z' P z + R)) to a component's log weight, e its read-out's error (R = 3, the head's;
  prior weights equal);
* ``refine=S > 0``: each component is also a Gaussian N(w_k, S P_r) (P_r: the region
  read-out's learned prior covariance) refined by every label, a mixture of Kalman filters
  sharing one covariance; ``refine=0`` keeps the read-outs as they are;
* ``select="expert"``: the training plant whose own expert's force is nearest the labels (the
  same log weight with that expert's error, no refining): plant identification, acting with
  that plant's read-out.

    python tools/family_bank.py build --out results/family_bank/bank.npz
    python tools/family_bank.py check results/family_bank/bank.npz
    python tools/heldout_probe.py scale --seed 5 --episodes 30 --scales 1 --bank results/family_bank/bank.npz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from alpaca_readout import _Readout, _readout_inputs

from sim.experiments.trials import run_jobs

WEIGHTS = "swingup-alpaca"
#: the head's label noise variance (N^2), as ``kbt@alpaca``'s
NOISE_VAR = 3.0


def _region(task):
    from sim.loops.methods import make_region_kbt

    return make_region_kbt(task, WEIGHTS)


def build(a):
    """The bank file: W (41, n), the learned prior's mean first; the 40 plants (m_c, m_p, l_p)."""
    from controller.region_kbt import region_prior
    from controller.weight_sets import learned_prior
    from sim.pretraining.alpaca import family_trajectories
    from sim.pretraining.family import family_members
    from sim.world.task import SWINGUP

    t0 = time.perf_counter()
    members = [(m, e) for _, m, e in family_members(SWINGUP, 40, 1)]
    data = family_trajectories(members, a.episodes, np.random.default_rng(a.seed))
    c = _region(SWINGUP)
    inputs = _readout_inputs(c, ())                 # the region read-out's inputs with its 1
    W = [np.linalg.lstsq(inputs(S), F, rcond=None)[0] for S, F, _ in data]
    m0, P0, _ = learned_prior(c, WEIGHTS)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, W=np.vstack([region_prior(m0, P0)[0]] + W),
             plants=np.array([(m.params.m_c, m.params.m_p, m.params.l_p) for m, _ in members]))
    print(f"{len(W)} read-outs and the learned prior's mean -> {out} ({time.perf_counter() - t0:.0f} s)")


class BankController:
    """Acts with the bank's read-out the labels favour (module doc)."""

    def __init__(self, task, path, select="readout", refine=0.0):
        from controller.region_kbt import region_prior
        from controller.weight_sets import learned_prior

        with np.load(path) as f:
            self.W, plants = f["W"].copy(), f["plants"]
        self.c = _region(task)
        self.readout_inputs = _readout_inputs(self.c, ())     # the region read-out's inputs with its 1
        self.logw = np.zeros(len(self.W))
        self.P = None
        if refine > 0:
            m0, P0, _ = learned_prior(self.c, WEIGHTS)
            self.P = refine * region_prior(m0, P0)[1]
        self.experts = None
        if select == "expert":
            from sim.world.experts import expert_for

            self.experts = [expert_for(task.on(task.params.with_(m_c=p[0], m_p=p[1], l_p=p[2]))) for p in plants]
            self.logw[0] = -np.inf                # the prior's mean has no plant of its own
        self.best = int(np.argmax(self.logw))

    def act(self, states):
        f = self.readout_inputs(states) @ self.W[self.best]
        return float(f[0]) if np.ndim(states) == 1 else f

    def observe(self, state, force):
        if self.experts is not None:
            # e_k: the k-th training plant's expert's error on this label
            e = force - np.array([float(np.ravel(x.act(state))[0]) for x in self.experts])
            self.logw[1:] += -0.5 * e ** 2 / NOISE_VAR
            self.best = int(np.argmax(self.logw))
            return
        z = self.readout_inputs(state)[0]
        if self.P is None:
            self.logw += -0.5 * (force - self.W @ z) ** 2 / NOISE_VAR
        else:
            # one Kalman update per component, one shared gain: S = z' P z + R, K = P z / S
            e = force - self.W @ z
            Pz = self.P @ z
            S = z @ Pz + NOISE_VAR
            self.logw += -0.5 * e ** 2 / S
            self.W += np.outer(e, Pz / S)
            self.P -= np.outer(Pz, Pz) / S
        self.best = int(np.argmax(self.logw))


def _check_job(args):
    """One plant -> each bank read-out's success on it (``episodes``, seed 7)."""
    from sim.loops.loop import evaluate_success
    from sim.world.task import SWINGUP

    plant, W, episodes = args
    task = SWINGUP.on(SWINGUP.params.with_(m_c=plant[0], m_p=plant[1], l_p=plant[2]))
    inputs = _readout_inputs(_region(task), ())
    return [evaluate_success(_Readout(inputs, w), task, episodes, 7).success_rate for w in W]


def check(a):
    """Each read-out on its own plant, and every read-out on TARGET and the held-out plants."""
    from heldout_probe import inside_cells

    with np.load(a.bank) as f:
        W, plants = f["W"], f["plants"]
    t0 = time.perf_counter()
    own = run_jobs(_check_job, [(p, W[i + 1:i + 2], a.episodes) for i, p in enumerate(plants)], workers=a.jobs,
                   label="own plants", progress=not a.no_progress)
    print(f"each training plant's read-out on its own plant ({a.episodes} episodes): mean "
          f"{np.mean([o[0] for o in own]):.2f}, below 0.9 on {sum(o[0] < 0.9 for o in own)} of {len(own)}")
    cells = [(1.0, 0.2, 1.0)] + inside_cells()
    res = run_jobs(_check_job, [(c, W, a.episodes) for c in cells], workers=a.jobs, label="held-out plants",
                   progress=not a.no_progress)
    print(f"{'plant (m_c, m_p, l_p)':>24} {'prior':>5} {'read-outs >= 0.9':>16} {'best':>5}")
    for cell, r in zip(cells, res):
        name = "TARGET" if cell == (1.0, 0.2, 1.0) else "(%g, %g, %g)" % cell
        print(f"{name:>24} {r[0]:5.2f} {int(np.sum(np.array(r[1:]) >= 0.9)):>11} / {len(r) - 1} {max(r[1:]):5.2f}")
    print(f"({time.perf_counter() - t0:.0f} s)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="fit each training plant's read-out and write the bank file")
    b.add_argument("--episodes", type=int, default=10, help="expert episodes per plant")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", default="results/family_bank/bank.npz")
    c = sub.add_parser("check", help="the bank's read-outs on their own plants, TARGET and the held-out plants")
    c.add_argument("bank")
    c.add_argument("--episodes", type=int, default=10)
    c.add_argument("--jobs", type=int, default=2)
    c.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    if a.episodes < 1 or getattr(a, "jobs", 1) < 1:
        ap.error("--episodes and --jobs must be >= 1")
    if a.command == "check" and not Path(a.bank).is_file():
        ap.error(f"bank: no file {a.bank}")
    (build if a.command == "build" else check)(a)


if __name__ == "__main__":
    main()
