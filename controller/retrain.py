"""Warm-started retraining: the paper's baseline.

The whole transformer starts from the pre-trained weights; a FIFO memory keeps
the last ``capacity`` samples; whenever a sample arrives, ``epochs`` epochs of
Adam run over the memory (minibatches of ``batch`` samples, the memory shuffled
each epoch by a seeded generator). The optimiser's moments persist across
arrivals (one continuing training run), which is what "warm-started" means here.
"""

from __future__ import annotations

import numpy as np

from controller import transformer as tf
from controller.fifo import FifoMemory
from controller.model import TransformerPolicy
from controller.transformer import Adam
from controller.transformer_numba import FastInference
from controller.checks import as_float_array, check_int, check_positive

__all__ = ["RetrainController", "CAPACITIES"]

#: memory capacities of the paper's Figure 3
CAPACITIES = (10, 20, 25, 50, 75, 100)


class RetrainController:
    """Warm-started retraining of the whole transformer on a FIFO memory.

    Parameters
    ----------
    policy : TransformerPolicy
        Pre-trained weights (copied; the original is not modified).
    capacity : int
        Memory size C (samples).
    epochs : int
        Passes over the memory per arriving sample (paper: 100).
    lr : float
        Adam learning rate.
    batch : int
        Minibatch size (the memory is split into ceil(C / batch) steps per epoch).
    seed : int
        Seeds the shuffling.
    """

    def __init__(self, policy: TransformerPolicy, capacity=10, epochs=100, lr=1e-3, batch=32, seed=0):
        if not isinstance(policy, TransformerPolicy):
            raise ValueError(f"policy: expected a TransformerPolicy but found {type(policy).__name__}")
        self.policy = policy.copy()
        self.capacity = check_int("capacity", capacity, low=1)
        self.epochs = check_int("epochs", epochs, low=1)
        self.lr = check_positive("lr", lr)
        self.batch = check_int("batch", batch, low=1)
        self.rng = np.random.default_rng(check_int("seed", seed, low=0))
        self.tokenizer = self.policy.tokenizer
        self.memory = FifoMemory(self.capacity, self.tokenizer)
        self.opt = Adam(lr=self.lr)
        self.n_updates = 0
        self.name = f"retrain-{self.capacity}"
        self._fast = FastInference(self.policy)     # refreshed after every update

    def remember(self, state, expert_force):
        """Store a sample in the FIFO memory without training (e.g. to reach a
        full memory before profiling the steady-state update)."""
        self.memory.add(state, expert_force)

    def memory_arrays(self):
        """The arrays a device running this controller holds, by role (lists of ndarrays):
        ``params`` the transformer's weights; ``state`` Adam's first and second
        moments (arrays of the parameters' shapes before the first step);
        ``buffers`` the FIFO memory at capacity (states and target
        distributions) and single-state inference's work arrays."""
        params = self.policy.params
        moments = [opt.get(k, np.zeros_like(p)) for opt in (self.opt.m, self.opt.v) for k, p in params.items()]
        memory = [np.zeros((self.capacity, 4)), np.zeros((self.capacity, self.tokenizer.n_bins))]
        return {"params": list(params.values()), "state": moments, "buffers": memory + self._fast.buffers()}

    def act(self, states):
        """Forces for states (N, 4); one state (4,) takes the Numba single-state path."""
        if np.ndim(states) == 1:
            return self._fast.act_one(as_float_array("states", states, (4,)))
        return self.policy.act(states)

    def probs(self, states):
        """Bin probabilities (N, n_bins) of the current network."""
        return self.policy.probs(states)

    def predict(self, states):
        """Mean and variance (N,) of the predicted categorical over force bins."""
        return self.policy.predict(states)

    def observe(self, state, expert_force):
        """Store the sample (dropping the oldest beyond capacity) and retrain."""
        self.remember(state, expert_force)
        P, cfg = self.policy.params, self.policy.config
        for S, Y in self.memory.minibatches(self.rng, self.epochs, self.batch):
            _, grads = tf.loss_and_grad(P, cfg, S, Y)
            self.opt.step(P, grads)
        self._fast.refresh()
        self.n_updates += 1
