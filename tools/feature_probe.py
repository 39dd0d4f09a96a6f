"""How much of the TARGET policy can a linear read-out of T_1's features recover?

For each weights file: least squares from [h, 1] to the TARGET LQR force on
10 000 box samples, its held-out RMSE, the success of that linear read-out as a
controller on TARGET, and the R^2 of each state variable from h. This bounds
what a single-layer head can learn, whatever the update rule.

    python tools/feature_probe.py NAME=PATH [NAME=PATH ...]
"""

import sys

import numpy as np

from controller.lqr import LQRController
from controller.model import TransformerPolicy
from sim.world.cartpole import TARGET
from sim.world.data import sample_dataset
from sim.loops.loop import evaluate_success


def probe(pol):
    S, F = sample_dataset(LQRController(TARGET), 20000, seed=0)
    X = np.hstack([pol.features(S), np.ones((len(S), 1))])
    w, *_ = np.linalg.lstsq(X[:10000], F[:10000], rcond=None)
    rmse = float(np.sqrt(np.mean((X[10000:] @ w - F[10000:]) ** 2)))

    class Readout:
        def act(self, s):
            h = pol.features(s)
            return np.hstack([h, np.ones((len(h), 1))]) @ w

    success = evaluate_success(Readout(), TARGET, 100, seed=0).success_rate
    r2 = []
    for j in range(4):
        v, *_ = np.linalg.lstsq(X[:10000], S[:10000, j], rcond=None)
        e = X[10000:] @ v - S[10000:, j]
        r2.append(1 - e.var() / S[10000:, j].var())
    return rmse, success, r2


def main():
    print("| features | read-out RMSE (N) | read-out success on TARGET | R^2 of x, x_dot, theta, theta_dot |")
    print("|---|---|---|---|")
    for item in sys.argv[1:]:
        name, path = item.split("=", 1)
        rmse, success, r2 = probe(TransformerPolicy.load(path))
        print(f"| {name} | {rmse:.2f} | {success:.2f} | {', '.join(f'{v:.3f}' for v in r2)} |", flush=True)


if __name__ == "__main__":
    main()
