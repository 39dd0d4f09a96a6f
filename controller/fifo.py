"""The FIFO sample memory and minibatch schedule shared by the gradient baselines
(warm-started retraining and BLoB): whenever a sample arrives it is stored,
the oldest beyond ``capacity`` dropped, and ``epochs`` passes over the memory
run in shuffled minibatches."""

from __future__ import annotations

from collections import deque

import numpy as np

from controller.checks import as_float_array, check_int

__all__ = ["FifoMemory"]


class FifoMemory:
    """The last ``capacity`` (state, target distribution) pairs."""

    def __init__(self, capacity, tokenizer):
        self.capacity = check_int("capacity", capacity, low=1)
        self.tokenizer = tokenizer
        self.states = deque(maxlen=self.capacity)
        self.targets = deque(maxlen=self.capacity)

    def __len__(self):
        return len(self.states)

    def add(self, state, expert_force):
        """Validate and store one sample (its force encoded as the training target)."""
        s = as_float_array("state", state, (4,))
        f = as_float_array("expert_force", expert_force, ())
        self.states.append(s.copy())
        self.targets.append(self.tokenizer.encode(f)[0])

    def minibatches(self, rng, epochs, batch):
        """Yield (states, targets) minibatches: ``epochs`` shuffled passes."""
        S, Y = np.array(self.states), np.array(self.targets)
        n = len(S)
        for _ in range(epochs):
            order = rng.permutation(n)
            for start in range(0, n, batch):
                idx = order[start:start + batch]
                yield S[idx], Y[idx]
