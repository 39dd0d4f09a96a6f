"""Analytic floating-point operation counts.

Convention: every add, subtract, multiply, divide, square root and exp is one
FLOP (a multiply-add is two); comparisons, copies and index arithmetic are free.

* ``force_update_flops(d_in)`` counts the Gaussian force head's Numba kernel
  ``force_update`` line by line (``controller/force_numba.py``): d_in inputs,
  one learned sample; ``force_mean_flops`` its predictive mean.
* ``kbt_observe_flops(cfg)`` / ``kbt_act_flops(cfg)`` / ``kbt_tick_flops(cfg)``: the
  fused kernels of the default KBT controller (Numba, and the C export: the same
  operations) -- T_1's features (``features_flops``) less the rows their last
  block skips (``skipped_rows_flops``: only the query row reaches h), the
  standardisation ``T (h - mean)`` (a d x d product, 3 d^2), the state skip path
  (n_state) and ``force_update`` / ``force_mean`` on d_in = d + n_state inputs;
  ``all_rows=True`` counts the plain NumPy reference, which computes every row;
  ``rls_observe_flops`` / ``rls_act_flops`` the same for ``rls`` (the state alone).
* ``head_update_flops(d, K)`` counts the softmax head's Numba kernel
  ``update_one_layer`` line by line (``controller/kalman_numba.py``): d features, K
  output bins (the paper's head, ``kbt-softmax``).
* ``head_probs_flops`` / ``decode_flops``: one predictive mean and its force.
* ``features_flops(cfg)``: T_1 for one state, linear algebra only (embedding,
  projections, attention products, feed-forward; LayerNorm, softmax and
  residual adds excluded -- under 5 % for the default sizes).
* ``retrain_update_flops``: one arrival of warm-started retraining, with the
  usual estimate backward = 2 x forward, plus Adam's ~10 FLOPs per parameter
  per step.
"""

from __future__ import annotations

import math

__all__ = ["force_update_flops", "force_mean_flops", "standardise_flops", "kbt_observe_flops", "kbt_act_flops",
           "kbt_tick_flops", "rls_observe_flops", "rls_act_flops", "skipped_rows_flops",
           "head_update_flops", "head_probs_flops", "decode_flops", "features_flops", "forward_flops",
           "retrain_update_flops", "lora_flops", "blob_update_flops", "cholesky_flops", "n_params"]


# ---------------------------------------------------------------- Gaussian force head
def force_update_flops(d_in, detect=True, robust=True, learn=True, capped=False, change=False, held=False):
    """One learned sample in ``force_numba.force_update`` with d_in inputs (n1 = d_in + 1):

    * ``_moments``: ``Pz = P z~``, ``q = z~^T Pz``, ``mu = m^T z~``: 2 n1^2 + 4 n1;
    * ``e = y - mu``, ``S = q + R + jitter``, ``x = e^2 / S``: 5;
    * the change detector (``detect``): ``g + k min(x, kappa) - nu``: 3; a detected
      change (``change``) re-opens (``R = b0 / a0`` when learning: 1) and runs
      ``_moments``, S and x again: 2 n1^2 + 4 n1 + 4;
    * the robust weight (``robust``): ``S_w = S + e^2 / c^2``: 3;
    * ``m += Pz e / S_w``: 3 n1;  ``c = 1 / S_w`` and the cap test ``0.999 / q``: 2
      (+1 when ``capped``: c = 0.999 / q);
    * ``P -= c Pz Pz^T`` on the lower triangle (mirrored): n1 + n1 (n1 + 1);
    * the learned noise (``learn``, and not ``held`` by the detector's evidence): the
      discounted a and b (x clipped at c^2), R = b / a: 7.
    """
    n1 = d_in + 1
    base = 3 * n1 * n1 + 9 * n1 + 7
    reopen = (2 * n1 * n1 + 4 * n1 + 4 + (1 if learn else 0)) if change else 0
    return (base + (3 if detect else 0) + reopen + (3 if robust else 0) + (1 if capped else 0)
            + (7 if learn and not held else 0))


def force_mean_flops(d_in):
    """``force_numba.force_mean``: mu = m^T z~ (n1 = d_in + 1 multiply-adds)."""
    return 2 * (d_in + 1)


def standardise_flops(d):
    """``h' = T (h - mean)`` as ``_kbt_inputs`` computes it: a subtract, a multiply and an add per entry of T."""
    return 3 * d * d


def _kbt_inputs_flops(cfg, skip, all_rows):
    t1 = features_flops(cfg) - (0 if all_rows else skipped_rows_flops(cfg))
    return t1 + standardise_flops(cfg.d_model) + (cfg.n_state if skip else 0)


def kbt_observe_flops(cfg, skip=True, learn=True, all_rows=False):
    """The fused ``kbt_observe`` for a ``TransformerConfig``: T_1's features (linear
    algebra only, ``features_flops``; the last block's query row only unless ``all_rows``),
    the standardisation, the state skip path (``skip``: z = [h'; s_norm]) and one learned
    ``force_update``."""
    d_in = cfg.d_model + (cfg.n_state if skip else 0)
    return _kbt_inputs_flops(cfg, skip, all_rows) + force_update_flops(d_in, learn=learn)


def kbt_act_flops(cfg, skip=True, all_rows=False):
    """The fused ``kbt_act``: features, standardisation, skip path and ``force_mean``."""
    d_in = cfg.d_model + (cfg.n_state if skip else 0)
    return _kbt_inputs_flops(cfg, skip, all_rows) + force_mean_flops(d_in)


def kbt_tick_flops(cfg, skip=True, learn=True, all_rows=False):
    """One on-policy tick (act on s, then learn s's label) with the input map run once:
    ``kbt_act_flops`` + ``force_update_flops`` (the update re-reads z~; docs/tick.md)."""
    d_in = cfg.d_model + (cfg.n_state if skip else 0)
    return kbt_act_flops(cfg, skip=skip, all_rows=all_rows) + force_update_flops(d_in, learn=learn)


def rls_observe_flops(n_state=4, learn=True):
    """``rls_observe``: s_norm = s * s_inv and one learned ``force_update`` on it."""
    return n_state + force_update_flops(n_state, learn=learn)


def rls_act_flops(n_state=4):
    return n_state + force_mean_flops(n_state)


# ---------------------------------------------------------------- the paper's softmax head
def cholesky_flops(n):
    """``numba_ops.cholesky_inplace`` on n x n: column j costs 2j + 1 (diagonal: j
    multiply-subtracts and a sqrt) and (n - 1 - j)(2j + 1) below it."""
    return sum(2 * j + 1 + (n - 1 - j) * (2 * j + 1) for j in range(n))


def head_update_flops(d, K, data_cov=False):
    """One ``kalman_numba.update_one_layer``: d features (z~ has n1 = d + 1 entries), K bins."""
    n1 = d + 1
    gq = K * n1 * (2 * n1 + 2)            # g_k = S_k z~ (n1 dot products), q_k = z~^T g_k
    softmax = K * (2 * n1 + 4)            # mu_u = M^T z~, exp(u - max), sum, divide
    sigma_up = 3 * K * K                  # J_kj = [k=j] p_k - p_k p_j, times q_k
    a = 4 * K**3                          # A = J Sigma_up: J_km (2) + multiply-add (2)
    sym = K * (K - 1) + 2 * K             # (A + A^T) / 2 below the diagonal; + r + jitter
    cov = K * K if data_cov else 0        # + Sigma_data
    solve = 2 * K**3                      # K right-hand sides, forward + back substitution n^2 each
    final = K * (5 * K + 5 + n1 * n1 + 4 * n1)   # dmu (3K), dS (2K), scalars, M column, S_k triangle
    return gq + softmax + sigma_up + a + sym + cov + cholesky_flops(K) + solve + final


def head_probs_flops(d, K):
    """mu_p = softmax(M^T [h; 1]) (``kalman_numba.softmax_probs``)."""
    return K * (2 * (d + 1) + 4)


def decode_flops(K):
    """Expected-value decoding: sum_k p_k a_k."""
    return 2 * K


def features_flops(cfg):
    """T_1 for one state (linear algebra only), for a ``TransformerConfig``."""
    n, d, f, L, H = cfg.n_state, cfg.d_model, cfg.d_ff, cfg.n_layers, cfg.n_heads
    T = n + 1
    embed = 2 * n * d + (2 * n * d + d if cfg.query == "state" else 0)
    per_layer = (4 * (2 * T * d * d + T * d)      # q, k, v, o projections with bias
                 + 2 * T * T * d + H * T * T        # scores (all heads) and their scaling
                 + 2 * T * T * d                    # attention-weighted values
                 + 2 * T * d * f + T * f            # feed-forward in
                 + 2 * T * f * d + T * d)           # feed-forward out
    return embed + L * per_layer


def skipped_rows_flops(cfg):
    """FLOPs of ``features_flops`` the fused kernels (Numba and the C export) do not do:
    their last block computes only the query token's row after the keys and values (the
    other n_state rows never reach h), so per skipped row the query and output
    projections, the row's attention scores, their scaling and weighted values, and the
    feed-forward are saved."""
    n, d, f, H = cfg.n_state, cfg.d_model, cfg.d_ff, cfg.n_heads
    T = n + 1
    per_row = 2 * (2 * d * d + d) + 2 * T * d + H * T + 2 * T * d + 2 * d * f + f + 2 * f * d + d
    return n * per_row


def forward_flops(cfg):
    """Features, head logits and decoding for one state."""
    K = cfg.n_bins
    return features_flops(cfg) + head_probs_flops(cfg.d_model, K) + decode_flops(K)


def n_params(cfg):
    from controller.transformer import param_shapes

    return sum(math.prod(s) for s in param_shapes(cfg).values())


def retrain_update_flops(cfg, memory, epochs, batch, trained_params=None):
    """One arrival of warm-started retraining with ``memory`` samples stored
    (``trained_params``: parameters Adam updates, default all of them)."""
    steps = epochs * math.ceil(memory / batch)
    trained = n_params(cfg) if trained_params is None else trained_params
    return epochs * memory * 3 * forward_flops(cfg) + steps * 10 * trained


def lora_flops(cfg, rank):
    """Extra FLOPs of BLoB's adapters for one state with flipout noise: per
    adapted weight (in x out) applied to T tokens, x M and the flipped noise
    term (2 in r each, plus sign and noise products) and the B product (2 r out)."""
    T = cfg.n_state + 1
    d, K = cfg.d_model, cfg.n_bins
    per_token = lambda n_in, n_out: 4 * n_in * rank + 3 * n_in + 2 * rank + 2 * rank * n_out
    return cfg.n_layers * 4 * T * per_token(d, d) + per_token(d, K)


def blob_update_flops(cfg, memory, epochs, batch, rank, trained_params):
    """One arrival of sequential BLoB: retraining's estimate on the adapted model."""
    steps = epochs * math.ceil(memory / batch)
    per_state = forward_flops(cfg) + lora_flops(cfg, rank)
    return epochs * memory * 3 * per_state + steps * 10 * trained_params
