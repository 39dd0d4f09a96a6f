"""Swing-up: what a Bayesian linear read-out of T_1 can do, offline and in closed loop
(docs/family-pretraining.md, "Capacity" and "Which labels hurt").

``capacity``: offline, how far more of the last block in the read-out goes: the
least-squares read-out of all 20 000 pool labels (data seed 1) over today's head inputs
z~ = [h'; s_norm; 1] and over z~ with the last block's activations at the query row beside
it (the ReLU hidden units, the attention output before its projection, the normalised
residual before the MLP): held-out force RMSE (data seed 99) and success over 50 TARGET
episodes (seeds 7, 8). A read-out over the attention output o and the hidden units r is the
last block's output projections adapted with it (h = x + o W_o + b_o + r W_2 + b_2 at the
query row, linear in W_o and W_2).

``wide``: closed loop with a Bayesian linear read-out (NumPy, fixed R, no robust weight or
detector) over z~ and over a ``capacity`` set (``--extra``; none: z~ alone), with the
empirical prior of the seed-1 training family's least-squares read-outs through those
inputs (mean, Cov + 1e-3 I) or the weight set's learned prior (``--prior learned``); labels
more than 0.35 rad from upright may count as noisier (``--far-weight``, ``--far-surprise``),
and ``--gated`` gives each region a read-out of its own. Success at 10/25/50/100/200 labels
(``--long``: and 400, 1000) per trial, i.i.d. and on-policy (probing as kbt's).

    python tools/alpaca_readout.py capacity --weights swingup-alpaca
    python tools/alpaca_readout.py wide --weights shipped --extra hidden attention --trials 100-109
    python tools/alpaca_readout.py wide --weights swingup-alpaca --prior learned --extra --gated --far-weight 30
"""

import argparse
import json

import numpy as np

from alpaca import LABELS, PLANTS, TASK, _members, _settings, held
from controller.weight_sets import learned_prior as learned_prior_of_set
from sim.loops.deploy import DeployConfig, iid_samples, run_deployment
from sim.loops.loop import evaluate_success
from sim.loops.methods import make_controller
from sim.pretraining.alpaca import family_trajectories
from sim.world.experts import expert_for
from sim.world.task import SWINGUP, wrap_angle


#: the last block's activations at the query row a capacity read-out may add to z~
#: (name -> (cache entry of ``transformer.block``, index in it)): ReLU hidden (d_ff), attention
#: output before W_o (d), LN2's normalised residual (d)
ACTIVATIONS = {"hidden": (3, 2), "attention": (1, 5), "ln2": (2, 0)}
#: the capacity read-outs: name -> the activations beside z~
CAPACITY_SETS = {"z~ (the head today)": (), "z~ + hidden": ("hidden",), "z~ + attention": ("attention",),
                 "z~ + hidden + attention": ("hidden", "attention"),
                 "z~ + hidden + attention + ln2": ("hidden", "attention", "ln2")}


def _readout_inputs(c, names):
    """X (N, 4) -> [z~ without its 1; the ``names`` activations of the last block; 1] for controller ``c``."""
    from controller.transformer import features

    def inputs(X):
        X = np.atleast_2d(X)
        cols = [c.inputs(X)]
        if names:
            _, (_, _, caches, _) = features(c.policy.params, c.policy.config, X, return_cache=True)
            for n in names:
                entry, index = ACTIVATIONS[n]
                cols.append(caches[-1][entry][index][:, -1, :])     # [N, T, width] -> the query row
        return np.hstack(cols + [np.ones((len(X), 1))])
    return inputs


class _Readout:
    """Force = inputs(s) w for fixed weights w."""

    def __init__(self, inputs, w):
        self.inputs, self.w = inputs, w

    def act(self, states):
        f = self.inputs(states) @ self.w
        return float(f[0]) if np.ndim(states) == 1 else f


def capacity(a):
    """The least-squares read-outs of ``CAPACITY_SETS`` (module doc, ``capacity``)."""
    c = make_controller("kbt", TASK, _settings(a.weights, 3.0, "known"))
    S, F = iid_samples(expert_for(TASK), 1, 0, 20000, task=TASK)
    Sh, Fh = iid_samples(expert_for(TASK), 99, 0, 5000, task=TASK)
    out = {}
    for name, names in CAPACITY_SETS.items():
        inputs = _readout_inputs(c, names)
        Z = inputs(S)
        w = np.linalg.lstsq(Z, F, rcond=None)[0]
        rmse = float(np.sqrt(np.mean((inputs(Sh) @ w - Fh) ** 2)))
        rates = [evaluate_success(_Readout(inputs, w), TASK, 50, s).success_rate for s in (7, 8)]
        out[name] = {"n1": Z.shape[1], "heldout_rmse_N": rmse, "success_seeds_7_8": rates}
        print(f"{name:>32}: n1 {Z.shape[1]:3d}, held-out RMSE {rmse:.3f} N, success "
              + " ".join(f"{r:.2f}" for r in rates), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"weights": a.weights, "labels": len(F), "results": out}, f, indent=1)


class _WideBLR:
    """Bayesian linear regression on ``inputs(s)`` with prior (m0, P0) and fixed noise R: act is the
    posterior mean, observe one closed-form update (the head's equations without its robust
    weight and detector), act_split / predict_split as the controllers' (probing needs q)."""

    def __init__(self, inputs, m0, P0, R, far_weight=1.0, far_surprise=0.0):
        self.inputs, self.m, self.P, self.R = inputs, np.array(m0, float), np.array(P0, float), float(R)
        self.far_weight, self.far_surprise = float(far_weight), float(far_surprise)

    def act(self, states):
        f = self.inputs(states) @ self.m
        return float(f[0]) if np.ndim(states) == 1 else f

    def predict_split(self, states):
        Z = self.inputs(states)
        return Z @ self.m, np.full(len(Z), self.R), np.einsum("qi,ij,qj->q", Z, self.P, Z)

    def act_split(self, state):
        mu, _, q = self.predict_split(state)
        return float(mu[0]), max(float(q[0]), 0.0)

    def observe(self, state, y):
        z = self.inputs(state)[0]
        Pz = self.P @ z
        # a label away from upright (|theta| > CATCH) counts as far_weight times noisier, unless its
        # standardised innovation e^2 / (q + R) exceeds far_surprise (> 0): then it counts as any label
        q, e = z @ Pz, y - z @ self.m
        far = _far(state)[0] and not (self.far_surprise > 0 and e * e / (q + self.R) > self.far_surprise)
        S = q + self.R * (self.far_weight if far else 1.0)
        self.m = self.m + Pz * e / S
        self.P = self.P - np.outer(Pz, Pz) / S
        return True


#: |theta| (rad) below which the swing-up expert hands over to its LQR catch
CATCH = 0.35


def _far(states):
    """True per state (N,) when the pole is more than ``CATCH`` from upright."""
    return np.abs(wrap_angle(np.atleast_2d(states)[:, 2])) > CATCH


def _gated(inputs):
    """[z g, z (1 - g)] with g = 1 near upright: one read-out for the catch, one for the pumping."""
    def gated(X):
        Z = inputs(X)
        g = (~_far(X)).astype(float)[:, None]
        return np.hstack([Z * g, Z * (1.0 - g)])
    return gated


def _wide_prior(a, c, inputs, fam):
    """(m0, P0): the empirical family prior through ``inputs`` (``--prior family``), or the weight
    set's learned prior on z~ (``--prior learned``); doubled block-diagonally for ``--gated``."""
    if a.prior == "learned":
        m0, P0, _ = learned_prior_of_set(c, a.weights)
    else:
        W = np.array([np.linalg.lstsq(inputs(S), F, rcond=None)[0] for S, F, _ in fam])
        m0, P0 = W.mean(0), np.cov(W.T) + 1e-3 * np.eye(W.shape[1])
    if a.gated:
        n = len(m0)
        m0, P0 = np.r_[m0, m0], np.block([[P0, np.zeros((n, n))], [np.zeros((n, n)), P0]])
    return m0, P0


def wide(a):
    """``wide`` (module doc): per inputs, mean (worst) success at each label count over the trials."""
    a0, b0 = map(int, a.trials.split("-"))
    task = SWINGUP.on(PLANTS[a.plant])
    c = make_controller("kbt", TASK, _settings(a.weights, 3.0, "known"))
    a.plants, a.family_seed = 40, 1
    fam = family_trajectories(_members(a), 10, np.random.default_rng(0)) if a.prior == "family" else None
    sets = [("z~", ())] + ([("z~ + " + " + ".join(a.extra), tuple(a.extra))] if a.extra else [])
    out = {}
    for name, names in sets:
        base = _readout_inputs(c, names)
        m0, P0 = _wide_prior(a, c, base, fam)
        inputs = _gated(base) if a.gated else base
        out[name] = {}
        for stream in a.streams:
            rows = []
            for seed in range(a0, b0 + 1):
                marks = LABELS + ((400, 1000) if a.long else ())
                cfg = DeployConfig(samples=max(marks), stream=stream, episodes=a.episodes, seed=seed,
                                   checkpoints=marks)
                res = run_deployment(_WideBLR(inputs, m0, P0, a.R, a.far_weight, a.far_surprise), task, cfg)
                rows.append([r["success_rate"] for r in res.rows if r["samples"] in marks])
                print(f"  {name} {stream} trial {seed}: " + " ".join(f"{v:.2f}" for v in rows[-1]), flush=True)
            r = np.array(rows)
            out[name][stream] = rows
            print(f"{name} (n1 {len(m0)}) {stream}: mean " + " ".join(f"{v:.2f}" for v in r.mean(0))
                  + " | worst " + " ".join(f"{v:.2f}" for v in r.min(0))
                  + f" | per-trial rule kept {sum(held(x) for x in rows)} / {len(rows)}", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"weights": a.weights, "extra": a.extra, "R": a.R, "prior": a.prior, "plant": a.plant,
                       "far_weight": a.far_weight, "far_surprise": a.far_surprise, "gated": a.gated,
                       "labels": LABELS + ((400, 1000) if a.long else ()),
                       "episodes": a.episodes, "trials": a.trials, "results": out}, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    cp = sub.add_parser("capacity")
    cp.add_argument("--weights", default="swingup-alpaca")
    cp.add_argument("--out")
    w = sub.add_parser("wide")
    w.add_argument("--weights", default="shipped")
    w.add_argument("--extra", nargs="*", choices=tuple(ACTIVATIONS), default=["hidden", "attention"],
                   help="activations beside z~ (none: z~ alone)")
    w.add_argument("--R", type=float, default=3.0)
    w.add_argument("--prior", choices=("family", "learned"), default="family",
                   help="learned: the weight set's learned prior (z~ only)")
    w.add_argument("--far-weight", type=float, default=1.0,
                   help="labels more than 0.35 rad from upright count as this many times noisier")
    w.add_argument("--far-surprise", type=float, default=0.0,
                   help="a far label whose e^2 / (q + R) exceeds this counts as any label (0: off)")
    w.add_argument("--gated", action="store_true", help="one read-out near upright, one away from it")
    w.add_argument("--plant", choices=tuple(PLANTS), default="target")
    w.add_argument("--long", action="store_true", help="on to 1000 labels (checkpoints 400 and 1000 added)")
    w.add_argument("--trials", default="100-109")
    w.add_argument("--episodes", type=int, default=50)
    w.add_argument("--streams", nargs="+", default=["iid", "onpolicy"])
    w.add_argument("--out")
    a = ap.parse_args()
    {"capacity": capacity, "wide": wide}[a.cmd](a)


if __name__ == "__main__":
    main()
