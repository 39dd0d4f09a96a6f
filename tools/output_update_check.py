"""What one sample at a time does to the output weights under each output update.

    python tools/output_update_check.py

Prints the largest |weight| of the head after each of the first 5 TARGET
samples for the Kalman update and the paper's target-as-posterior update.
"""

import numpy as np

from controller.kalman_head import HeadConfig
from controller.kbt_softmax import SoftmaxKBTController
from controller.lqr import LQRController
from controller.model import load_pretrained
from sim.world.cartpole import TARGET
from sim.world.data import sample_dataset


def main():
    pol = load_pretrained()
    S, F = sample_dataset(LQRController(TARGET), 5, seed=1)
    for mode, sigma_data in (("kalman", 0.0), ("paper", 0.0), ("paper", 20.0)):
        c = SoftmaxKBTController(pol, HeadConfig(output="softmax", update=mode), sigma_data=sigma_data)
        sizes = []
        for s, f in zip(S, F):
            c.observe(s, f)
            sizes.append(np.abs(c.head.layers[0].M).max())
        prior = np.abs(SoftmaxKBTController(pol).head.layers[0].M).max()
        print(f"{mode:6s} sigma_data={sigma_data:4.0f}: max|W| prior {prior:.1f} -> "
              + " ".join(f"{v:.3g}" for v in sizes))


if __name__ == "__main__":
    main()
