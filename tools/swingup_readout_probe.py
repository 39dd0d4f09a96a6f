"""What limits KBT on the swing-up task: the features, or the linear read-out?

Draws i.i.d. states from the TARGET swing-up expert's own episodes (the
``iid`` stream of ``kbt experiment swingup``, data seed 1) and compares

* the best linear read-out of the frozen pre-trained inputs [h'; s_norm]
  (least squares on 20 000 samples) -- what KBT's posterior mean tends to;
* the same read-out on the state alone and on the features alone;
* KBT's own posterior mean after 25, 100, 300 and 1000 samples (with the prior
  v I; the family prior, docs/family-prior.md, is measured by swingup_coverage.py);

by held-out force RMSE (all states, near upright: |theta| < 0.35 rad,
where the expert hands over to LQR, and away from it) and by swing-up success on TARGET (100
episodes, seed 0). Prints a table; about 30 s.

    python tools/swingup_readout_probe.py
"""

import numpy as np

from sim.loops.deploy import iid_samples
from sim.world.experts import expert_for
from sim.loops.loop import evaluate_success
from sim.loops.methods import MethodSettings, make_controller
from sim.world.task import SWINGUP, SWINGUP_TARGET


class Readout:
    """Force = [inputs(s), 1] w for fixed weights w (a frozen linear read-out)."""

    def __init__(self, inputs, w):
        self.inputs, self.w = inputs, w

    def act(self, states):
        S = np.atleast_2d(states)
        f = np.hstack([self.inputs(S), np.ones((len(S), 1))]) @ self.w
        return float(f[0]) if np.ndim(states) == 1 else f


def rmse(pred, target, mask=None):
    mask = np.ones(len(target), bool) if mask is None else mask
    return float(np.sqrt(np.mean((pred[mask] - target[mask]) ** 2)))


def main():
    task = SWINGUP.on(SWINGUP_TARGET)
    expert = expert_for(task)
    S, F = iid_samples(expert, 1, 0, 20000, task=task)
    Sh, Fh = iid_samples(expert, 99, 0, 5000, task=task)
    near = np.abs(Sh[:, 2]) < 0.35
    kbt = make_controller("kbt", task, MethodSettings(family=False))     # the prior v I (docs/swingup.md)
    d = kbt.policy.config.d_model
    rows = []
    for name, cols in (("features + state", slice(None)), ("state only", slice(d, None)),
                       ("features only", slice(0, d))):
        def inputs(X, cols=cols):
            return kbt.inputs(X)[:, cols]
        w, *_ = np.linalg.lstsq(np.hstack([inputs(S), np.ones((len(S), 1))]), F, rcond=None)
        ro = Readout(inputs, w)
        pred = ro.act(Sh)
        rows.append((f"least squares, {name}, 20000", rmse(pred, Fh), rmse(pred, Fh, near), rmse(pred, Fh, ~near),
                     evaluate_success(ro, task, 100, 0).success_rate))
    for n in range(1, 1001):
        kbt.observe(S[n - 1], F[n - 1])
        if n in (25, 100, 300, 1000):
            pred = kbt.act(Sh)
            rows.append((f"KBT posterior mean, {n}", rmse(pred, Fh), rmse(pred, Fh, near), rmse(pred, Fh, ~near),
                         evaluate_success(kbt, task, 100, 0).success_rate))
    print(f"held-out states near upright (|theta| < 0.35 rad): {near.mean():.3f}")
    print(f"{'read-out, samples':>40} {'RMSE (N)':>9} {'near upright':>13} {'away':>6} {'success':>8}")
    for name, a, b, c, s in rows:
        print(f"{name:>40} {a:>9.3f} {b:>13.3f} {c:>6.3f} {s:>8.2f}")


if __name__ == "__main__":
    main()
