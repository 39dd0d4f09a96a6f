"""Why on-policy KBT trials fail, and what probing does about it (docs/onpolicy.md, "Probing").

``diagnose``: single on-policy runs of KBT on the balance task's TARGET (400 ticks,
the expert labelling every visited state), without and with the probing force; per
run: success over 50 evaluation episodes, the spread of the visited states, the
learned controller's local linear gain next to TARGET's LQR gain, and the head's
epistemic std at the evaluation starts and along each state axis at 0.05
(the evaluation starts' half-width). About 3 s per run.

``sweep``: success (50 episodes) at 400 ticks and falls, over single-run seeds,
for probing gains k, signal correlation times and caps given as K:MEMORY:MAX
(K = 0: no probing). About 1.5 s per seed and setting on a free core.

``family``: the alternatives that were measured and not shipped, on single-run
seeds without probing: a *family prior covariance* (the covariance of the
least-squares read-outs of the LQR experts of 60 other balance plants drawn
log-uniformly, m_c 0.5-3, m_p 0.05-2, l_p 0.3-6 with TARGET's neighbourhood m_p
0.5-2, l_p 2.5-10 left out, plus 1e-3 I; prior mean the pre-trained read-out as
shipped, or ``alpaca``: the family's mean read-out), and *cautious* control (the
learner's force shrunk where it is unsure, u = mu^3 / (mu^2 + q)). Success (50
episodes) at 10, 50 and 400 ticks. About 2 s per seed and variant.

    python tools/onpolicy_probe.py diagnose 120 133 3
    python tools/onpolicy_probe.py sweep 100-169 0:1:5 1:10:5
    python tools/onpolicy_probe.py family 112,114,120,133,137,139,151,155,160,166
"""

import sys

import numpy as np

from controller.lqr import LQRController
from sim.world.cartpole import TARGET
from sim.loops.deploy import DeployConfig, run_deployment
from sim.loops.loop import evaluate_success
from sim.loops.methods import make_controller
from sim.world.task import as_task

TASK = as_task(TARGET)


def _run(seed, probe, memory=10.0, cap=5.0, method="kbt", on_tick=None):
    c = make_controller(method, TARGET)
    cfg = DeployConfig(samples=400, episodes=50, seed=seed, stream="onpolicy", checkpoints=(400,),
                       probe=probe, probe_memory=memory, probe_max=cap)
    return c, run_deployment(c, TARGET, cfg, on_tick=on_tick)


def diagnose(seeds):
    lqr = LQRController(TARGET)
    print("TARGET LQR local gain -K:", np.round(-lqr.K, 2))
    for seed in seeds:
        for probe in (0.0, None):
            visited = []
            c, res = _run(seed, probe, on_tick=lambda s, f, r: visited.append(s.copy()))
            V = np.array(visited)
            ev = evaluate_success(c, TASK, n_episodes=50, seed=seed)
            _, _, q0 = c.predict_split(ev.initial_states)
            axes = np.vstack([0.05 * np.eye(4), -0.05 * np.eye(4)])
            _, _, qa = c.predict_split(axes)
            S = np.random.default_rng(0).uniform(-0.05, 0.05, (2000, 4))
            w, *_ = np.linalg.lstsq(np.c_[S, np.ones(len(S))], c.act(S), rcond=None)
            name = "no probing" if probe == 0.0 else "probing (default)"
            print(f"seed {seed}, {name}: success {ev.success_rate:.2f}, falls {res.plant_failures}, "
                  f"probing ticks {res.probe_ticks}")
            print(f"  visited |state| max (x, x_dot, theta, theta_dot): {np.round(np.abs(V).max(0), 3)}")
            print(f"  learned local gain: {np.round(w[:4], 2)}")
            print(f"  epistemic std at the evaluation starts: median {np.median(np.sqrt(q0)):.2f} N, "
                  f"max {np.sqrt(q0).max():.2f} N; at 0.05 along each axis: "
                  f"{np.round(np.sqrt(np.maximum(qa[:4], qa[4:])), 2)} N")


def _seeds(text):
    if "-" in text:
        a, b = map(int, text.split("-"))
        return list(range(a, b + 1))
    return [int(s) for s in text.split(",")]


def sweep(seeds, settings):
    for spec in settings:
        k, memory, cap = map(float, spec.split(":"))
        succ, falls = [], 0
        for seed in seeds:
            _, res = _run(seed, k, memory, cap)
            succ.append(res.rows[-1]["success_rate"])
            falls += res.plant_failures
        succ = np.array(succ)
        print(f"k {k:g}, memory {memory:g} ticks, cap {cap:g} N: mean {succ.mean():.3f}, worst {succ.min():.2f}, "
              f"below 0.95: {int(np.sum(succ < 0.95))} of {len(succ)}, falls {falls}", flush=True)


def family_readouts(c, n=60, seed=0):
    """Least-squares read-outs (n, d_in + 1) of the LQR experts of ``n`` balance plants
    drawn log-uniformly, TARGET's neighbourhood left out, on KBT's box states."""
    from controller.features import box_states
    from sim.world.cartpole import CartPoleParams

    rng = np.random.default_rng(seed)
    S = box_states(c.policy)
    Z = np.c_[c.inputs(S), np.ones(len(S))]
    W = []
    while len(W) < n:
        m_c, m_p, l_p = np.exp(rng.uniform(np.log([0.5, 0.05, 0.3]), np.log([3.0, 2.0, 6.0])))
        if 0.5 <= m_p <= 2.0 and 2.5 <= l_p <= 10.0:
            continue
        K = LQRController(CartPoleParams(m_c=m_c, m_p=m_p, l_p=l_p)).K
        W.append(np.linalg.lstsq(Z, -(S @ K), rcond=None)[0])
    return np.array(W)


class _Cautious:
    """The learner's force shrunk where its epistemic variance is large: mu^3 / (mu^2 + q)."""

    def __init__(self, c):
        self.c, self.observe, self.predict_split = c, c.observe, c.predict_split

    def act(self, s):
        if np.ndim(s) == 1:
            mu, q = self.c.act_split(s)
            return mu ** 3 / (mu * mu + q + 1e-12)
        return self.c.act(s)


def family(seeds):
    for variant in ("shipped prior", "family covariance", "alpaca", "cautious"):
        succ, falls = [], 0
        for seed in seeds:
            c = make_controller("kbt", TARGET)
            if variant in ("family covariance", "alpaca"):
                W = family_readouts(c)
                layer = c.head.core.layers[0]
                layer.S[0][...] = np.cov(W.T) + 1e-3 * np.eye(W.shape[1])
                if variant == "alpaca":
                    layer.M[:, 0] = W.mean(axis=0)
            run = _Cautious(c) if variant == "cautious" else c
            cfg = DeployConfig(samples=400, episodes=50, seed=seed, stream="onpolicy", probe=0.0,
                               checkpoints=(10, 50, 400))
            res = run_deployment(run, TARGET, cfg)
            succ.append([r["success_rate"] for r in res.rows[1:]])
            falls += res.plant_failures
        succ = np.array(succ)
        print(f"{variant:>18}: mean at 10 / 50 / 400 ticks {np.round(succ.mean(0), 3).tolist()}, worst at 400 "
              f"{succ[:, -1].min():.2f}, falls {falls}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("diagnose", "sweep", "family"):
        sys.exit(__doc__)
    if sys.argv[1] == "diagnose":
        diagnose([int(s) for s in sys.argv[2:]])
    elif sys.argv[1] == "family":
        family(_seeds(sys.argv[2]))
    else:
        sweep(_seeds(sys.argv[2]), sys.argv[3:])
