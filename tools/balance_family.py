"""Balance from a few labels: the family prior (mean and covariance) against today's prior
(docs/family-prior.md, "Balance").

For each data seed, a fresh controller learns 10 i.i.d. box samples labelled by
TARGET's LQR expert (``sample_dataset(LQRController(TARGET), 10, seed)``, no
label noise); success over ``--episodes`` episodes of TARGET (evaluation seed =
data seed) before any label and after 1, 2, 3, 5 and 10. Variants:

* ``kbt``            today's prior: pre-trained read-out w_0, v I
* ``kbt-cov``        family covariance, mean w_0
* ``kbt-family``     family covariance and family mean read-out (ALPaCA-style)
* ``rls``            SOURCE LQR gain, v I
* ``rls-cov``        family covariance on the state read-out, mean the SOURCE gain
* ``rls-family``     family covariance and mean, built the same way as kbt's

The families are the least-squares read-outs of the LQR experts of ``--plants``
balance plants (``sim.pretraining.family``, the balance range, TARGET's
neighbourhood left out) through each controller's own inputs, the same plants
and states for kbt and rls.

    python tools/balance_family.py --seeds 100-119 --out docs/data/balance_family_tuning.json
    python tools/balance_family.py --seeds 100-119 --variants kbt-family --eps 1e-4 1e-2 1e-1 \
        --out docs/data/balance_family_eps.json
    python tools/balance_family.py --seeds 0-19 --out docs/data/balance_family.json
"""

import argparse
import json
import time

import numpy as np

from controller.lqr import LQRController
from sim.loops.family_prior import FAMILY_EPS, prior_covariance
from sim.loops.methods import MethodSettings, make_controller
from sim.loops.stream import learning_trial
from sim.pretraining.family import family_readouts
from sim.world.cartpole import TARGET
from sim.world.data import sample_dataset
from sim.world.task import as_task

LABELS = (0, 1, 2, 3, 5, 10)
VARIANTS = ("kbt", "kbt-cov", "kbt-family", "rls", "rls-cov", "rls-family")


def _seeds(text):
    if "-" in text:
        a, b = map(int, text.split("-"))
        return list(range(a, b + 1))
    return [int(s) for s in text.split(",")]


def families(n, seed, methods=("kbt", "rls")):
    """Read-outs W (n, d + 1) per method ('kbt', 'rls') and the plants (n, 3)."""
    task = as_task(TARGET)
    out = {}
    for method in methods:
        c = make_controller(method, TARGET, MethodSettings(family=False))
        out[method], plants = family_readouts(c, task, n=n, seed=seed)
    return out, plants


def controller(variant, W, eps):
    method, _, prior = variant.partition("-")
    c = make_controller(method, TARGET, MethodSettings(family=False))
    if prior:
        c.use_prior(prior_mean=W[method].mean(axis=0) if prior == "family" else None,
                    prior_cov=prior_covariance(W[method], eps))
    return c


def run(seeds, variants, W, episodes, eps):
    expert = LQRController(TARGET)
    table = {}
    for v in variants:
        rows = []
        for seed in seeds:
            S, F = sample_dataset(expert, max(LABELS), seed=seed)
            res = learning_trial(controller(v, W, eps), TARGET, S, F, LABELS, episodes=episodes, eval_seed=seed)
            rows.append([cp.success_rate for cp in res.checkpoints])
        table[v] = np.array(rows)
        r = table[v]
        print(f"{v:>11}: mean " + " ".join(f"{m:.2f}" for m in r.mean(0)) + " | worst "
              + " ".join(f"{m:.2f}" for m in r.min(0)), flush=True)
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="100-119")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--plants", type=int, default=60)
    ap.add_argument("--family-seed", type=int, default=0)
    ap.add_argument("--eps", type=float, nargs="+", default=[FAMILY_EPS], help="several: one table each")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--out")
    a = ap.parse_args()
    t0 = time.time()
    W, plants = families(a.plants, a.family_seed, sorted({v.split("-")[0] for v in a.variants}))
    print(f"family: {len(plants)} plants, m_c {plants[:, 0].min():.2f}-{plants[:, 0].max():.2f}, m_p "
          f"{plants[:, 1].min():.2f}-{plants[:, 1].max():.2f}, l_p {plants[:, 2].min():.2f}-{plants[:, 2].max():.2f}"
          f" ({time.time() - t0:.0f} s); labels {LABELS}", flush=True)
    tables = {}
    for eps in a.eps:
        print(f"eps {eps:g}", flush=True)
        tables[f"{eps:g}"] = {v: t.tolist() for v, t in run(_seeds(a.seeds), a.variants, W, a.episodes, eps).items()}
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"seeds": a.seeds, "labels": LABELS, "plants": a.plants, "family_seed": a.family_seed,
                       "episodes": a.episodes, "success_by_eps": tables}, f, indent=1)


if __name__ == "__main__":
    main()
