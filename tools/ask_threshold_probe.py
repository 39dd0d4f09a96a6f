"""How the asking threshold trades labels for success (docs/onpolicy.md).

KBT on the balance task's TARGET, on-policy, 400 ticks, data seeds 0 and 1:
labels by the end and success (50 episodes) per checkpoint, for labelling
every tick and for ``labels="uncertain"`` at several thresholds. About 15 s.

    python tools/ask_threshold_probe.py
"""

from sim.world.cartpole import TARGET
from sim.loops.deploy import DeployConfig, run_deployment
from sim.loops.methods import make_controller


def main():
    for labels, threshold in [("always", 1.0), ("uncertain", 2.0), ("uncertain", 1.0), ("uncertain", 0.5),
                              ("uncertain", 0.2)]:
        for seed in (0, 1):
            c = make_controller("kbt", TARGET)
            c.warm_up()
            cfg = DeployConfig(samples=400, episodes=50, seed=seed, stream="onpolicy", labels=labels,
                               ask_above=threshold)
            rows = run_deployment(c, TARGET, cfg).rows
            name = labels if labels == "always" else f"uncertain, {threshold:g} N"
            print(f"{name:>18} seed {seed}: labels {rows[-1]['labels']:>3}; success by tick "
                  + " ".join(f"{r['samples']}:{r['success_rate']:.2f}" for r in rows))


if __name__ == "__main__":
    main()
