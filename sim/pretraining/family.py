"""A family prior for the KBT head: how the read-out moved between other plants.

For ``n`` plants drawn log-uniformly from a range around SOURCE, with the
neighbourhoods of the plants the experiments adapt to left out, take the
expert designed for that plant and the least-squares read-out of its force
through the KBT head's frozen inputs z~ = [h'; s_norm; 1], on the states
that expert visits on its own plant:

    w_i = argmin_w sum_t (w^T z~(s_t) - F_i(s_t))^2          (one plant i, n_i states)

The head's prior is then N(w_0, P0) with P0 = Cov(w_1, ..., w_n) + eps I and
as its mean the pre-trained read-out w_0 or the family's mean read-out
(``sim.loops.family_prior``, docs/family-prior.md): a label that teaches the
weights along one direction also moves the directions that moved with it
across the family.

On swing-up the states are those the plant's expert visits on its own plant;
on balance (the LQR expert, linear in the state) they are i.i.d. states of the
fine-tuning box, the states the i.i.d. stream draws. The read-outs are computed once (``kbt family``, about a
minute) and shipped beside the pre-trained weights they belong to.
"""

from __future__ import annotations

import numpy as np

from controller.checks import check_int, check_positive
from sim.loops.family_prior import member_readout
from sim.world.cartpole import TARGET, CartPoleParams
from sim.world.task import SWINGUP_SHIFT2, SWINGUP_TARGET, as_task

__all__ = ["FAMILY_RANGE", "FAMILY_SIZE", "LEFT_OUT", "family_plants", "family_members", "family_readouts"]

#: (m_c, m_p, l_p) bounds the family's plants are drawn from, log-uniformly, per task
FAMILY_RANGE = {"swingup": ((0.5, 0.05, 0.3), (3.0, 0.4, 2.0)),
                "balance": ((0.5, 0.05, 0.3), (3.0, 2.0, 6.0))}
#: family members per task (``kbt family``'s default)
FAMILY_SIZE = {"swingup": 40, "balance": 60}
#: plants whose neighbourhood (every parameter within a factor LEFT_OUT_FACTOR) is left out:
#: the ones the experiments adapt to
LEFT_OUT = {"swingup": (SWINGUP_TARGET, SWINGUP_SHIFT2), "balance": (TARGET,)}
LEFT_OUT_FACTOR = 1.5
#: an expert counts when it swings up (balances) its own plant in this share of 10 episodes
EXPERT_SUCCESS = 0.9


def _left_out(params, task_name):
    f = LEFT_OUT_FACTOR
    for p in LEFT_OUT[task_name]:
        if all(1.0 / f <= a / b <= f for a, b in ((params.m_c, p.m_c), (params.m_p, p.m_p), (params.l_p, p.l_p))):
            return True
    return False


def family_plants(task, rng):
    """Candidate plants, one at a time: log-uniform in ``FAMILY_RANGE``, ``LEFT_OUT`` skipped."""
    task = as_task(task)
    lo, hi = (np.log(b) for b in FAMILY_RANGE[task.name])
    while True:
        m_c, m_p, l_p = np.exp(rng.uniform(lo, hi))
        p = CartPoleParams(m_c=float(m_c), m_p=float(m_p), l_p=float(l_p), g=task.params.g, tau=task.params.tau,
                           integrator=task.params.integrator, u_max=task.params.u_max)
        if not _left_out(p, task.name):
            yield p


def family_members(task, n, seed=0):
    """The first ``n`` candidate plants (``family_plants``, seeded) whose expert swings up (balances)
    its own plant in ``EXPERT_SUCCESS`` of 10 episodes: (plant, member task, expert) each."""
    from sim.loops.loop import evaluate_success
    from sim.world.experts import expert_for

    task = as_task(task)
    if task.name not in FAMILY_RANGE:
        raise ValueError(f"task: a family is defined for {', '.join(FAMILY_RANGE)} but not {task.name!r}")
    n = check_int("n", n, low=2)
    found = 0
    for p in family_plants(task, np.random.default_rng(seed)):
        member = task.on(p)
        expert = expert_for(member)
        if evaluate_success(expert, member, n_episodes=10, seed=seed + 1).success_rate < EXPERT_SUCCESS:
            continue
        found += 1
        yield p, member, expert
        if found == n:
            return


def family_readouts(controller, task, n=40, seed=0, episodes=10, progress=None):
    """Read-outs W (n, d_in + 1) and plants (n, 3) of the ``n`` ``family_members``;
    ``controller`` supplies the inputs z(s)."""
    W, plants = [], []
    for p, member, expert in family_members(task, n, seed):
        W.append(member_readout(controller, member, expert, seed, episodes))
        plants.append((p.m_c, p.m_p, p.l_p))
        if progress is not None:
            progress(len(W))
    return np.array(W), np.array(plants)
