"""How many swing-ups must 1000 labels cover? (docs/onpolicy.md, "Swing-up: coverage")

KBT, with the prior v I and with the family prior (docs/family-prior.md; the
swing-up default), learns from 1000 labels drawn uniformly, in a
random order, from the states the TARGET swing-up expert visits in E of its
own seeded episodes (600 ticks each), for E = 1, 2, 5, 20, 100; then success
over 50 TARGET evaluation episodes. E = 100 is the ``iid`` stream of
``kbt experiment swingup``; the deployed on-policy stream's 1000 labels come from one or
two episodes of the plant (E = 1-2), so the rows below E = 5 show what a
learner whose labels cover that few swing-ups can reach, even with the
expert's own states. Tuning seeds only (100..109: the expert's episodes, the
draws and the controller); about 1 s per seed, E and prior.

    python tools/swingup_coverage.py            # seeds 100..109
    python tools/swingup_coverage.py 100 104
"""

import sys

import numpy as np

from sim.loops.loop import evaluate_success
from sim.loops.methods import MethodSettings, make_controller
from sim.world.data import trajectory_states
from sim.world.experts import expert_for
from sim.world.task import SWINGUP, SWINGUP_TARGET

EPISODES = (1, 2, 5, 20, 100)
LABELS = 1000


def trial(task, expert, seed, episodes, family):
    """Success of KBT (``family``: with the family prior) after LABELS labels from ``episodes``
    expert episodes (seed ``seed``)."""
    pool = trajectory_states(task, expert, seed, episodes=episodes)
    rng = np.random.default_rng([seed, episodes])
    states = pool[rng.integers(len(pool), size=LABELS)]
    forces = expert.act(states)
    c = make_controller("kbt", task, MethodSettings(family=family), seed=seed)
    for s, f in zip(states, forces):
        c.observe(s, f)
    return evaluate_success(c, task, n_episodes=50, seed=seed).success_rate


def main(argv):
    lo, hi = (int(a) for a in argv) if argv else (100, 109)
    if lo < 100:
        raise SystemExit("seeds: tune on 100 and above (the README reports trials 0..9)")
    task = SWINGUP.on(SWINGUP_TARGET)
    expert = expert_for(task)
    print(f"KBT, {LABELS} labels from E expert episodes, success over 50 episodes, seeds {lo}..{hi}")
    for family in (False, True):
        print("family prior" if family else "prior v I")
        print(f"{'E':>4} {'mean':>6} {'worst':>6}  per seed")
        for e in EPISODES:
            s = np.array([trial(task, expert, seed, e, family) for seed in range(lo, hi + 1)])
            print(f"{e:>4} {s.mean():6.3f} {s.min():6.2f}  {' '.join(f'{v:.2f}' for v in s)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
