"""Files made on one machine load on another: identity from inputs, computed floats by tolerance.

A CPU of another kind gets other BLAS kernels, whose last bits differ; a
file must not be refused for that (``controller/identity.py``). Here the
other CPUs are OpenBLAS's other kernels (``OPENBLAS_CORETYPE``), each in a
fresh process, and computed arrays perturbed by a few ulps; genuinely other
weights must still be refused, naming the command that re-makes the file.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from controller.identity import COMPUTED_RTOL, check_close, digest, max_relative_difference
from controller.kbt import KBTController
from sim.loops.family_prior import family_path, load_family
from sim.loops.methods import MethodSettings, make_controller
from sim.world.task import SWINGUP, SWINGUP_TARGET

TASK = SWINGUP.on(SWINGUP_TARGET)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: OpenBLAS kernels an x86-64 CPU may run; those this CPU cannot are skipped
CORETYPES = ("Haswell", "Sandybridge", "Nehalem", "Prescott")
PROBES = np.array([[0.0, 0.0, np.pi, 0.0], [0.3, -0.5, 2.0, 1.0], [-1.0, 1.0, 0.2, -3.0]])

# learns nothing new: loads the shipped family file and a saved head, prints the forces it acts with
CHILD = """
import json, sys
import numpy as np
from sim.loops.methods import make_controller
from sim.world.task import SWINGUP, SWINGUP_TARGET
c = make_controller("kbt", SWINGUP.on(SWINGUP_TARGET))
c.load_state(sys.argv[1])
print(json.dumps({"forces": [float(f) for f in c.act(np.array(json.loads(sys.argv[2])))],
                  "fingerprint": c.fingerprint()}))
"""


def _core_in_use(coretype):
    """The OpenBLAS kernel a fresh process runs under ``OPENBLAS_CORETYPE=coretype`` (None: it crashed)."""
    env = dict(os.environ, OPENBLAS_CORETYPE=coretype, OPENBLAS_VERBOSE="2")
    r = subprocess.run([sys.executable, "-c", "import numpy as np; a = np.ones((64, 64)); print((a @ a).sum())"],
                       env=env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        return None
    cores = [line.split(":", 1)[1].strip() for line in (r.stdout + r.stderr).splitlines() if line.startswith("Core:")]
    return cores[0] if cores else None


@pytest.fixture(scope="module")
def saved_head(tmp_path_factory):
    """A swing-up head (family prior) after 30 labels, saved here; the forces it acts with."""
    c = make_controller("kbt", TASK)
    rng = np.random.default_rng(5)
    for _ in range(30):
        c.observe(rng.uniform(-1, 1, 4) * [1, 2, 3, 4], rng.normal(0, 10))
    path = tmp_path_factory.mktemp("head") / "head.npz"
    c.save_state(path)
    return path, c.act(PROBES)


@pytest.mark.slow
@pytest.mark.parametrize("coretype", CORETYPES)
def test_shipped_family_and_a_saved_head_load_under_every_blas_kernel(coretype, saved_head):
    core = _core_in_use(coretype)
    if core is None:
        pytest.skip(f"OPENBLAS_CORETYPE={coretype}: this CPU cannot run that kernel, or numpy is not on OpenBLAS")
    path, forces = saved_head
    env = dict(os.environ, OPENBLAS_CORETYPE=coretype)
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(PROBES.tolist())], env=env,
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, f"under the {core} kernel: {r.stderr.strip().splitlines()[-1:]}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["fingerprint"] == make_controller("kbt", TASK).fingerprint()
    # the same head acts the same, to BLAS rounding (forces of tens of N)
    np.testing.assert_allclose(out["forces"], forces, rtol=0, atol=1e-9)


def _nudged(a, ulps=3):
    """``a`` moved by ``ulps`` units in the last place, alternately up and down."""
    out = np.array(a, dtype=float)
    flat = out.reshape(-1)
    for i in range(flat.size):
        for _ in range(ulps):
            flat[i] = np.nextafter(flat[i], np.inf if i % 2 else -np.inf)
    return out


def test_computed_arrays_a_few_ulps_off_still_load(tmp_path):
    """What another CPU computes differs in the last bits: the family file and a saved head load."""
    a = make_controller("kbt", TASK)
    a.observe(np.array([0.1, 0.2, 3.0, -0.5]), 4.0)
    a.save_state(tmp_path / "a.npz")
    b = make_controller("kbt", TASK)
    fp = b.fingerprint()
    b.h_mean, b.h_T = _nudged(b.h_mean), _nudged(b.h_T)
    b.prior_mean = _nudged(b.prior_mean)
    b.head.prior_cov[:] = _nudged(b.head.prior_cov)
    assert b.fingerprint() == fp                       # computed arrays are no part of the identity
    assert load_family(family_path("swingup"), b.fingerprint()).shape[0] >= 2
    b.load_state(tmp_path / "a.npz")
    assert b.n_updates == 1


def test_other_weights_are_refused_naming_the_command(tmp_path):
    iso = make_controller("kbt", TASK, MethodSettings(family=False))
    policy = iso.policy.copy()
    policy.params["embed.value"][0, 0] += 1e-3         # one weight, 1e-3 off
    other = KBTController(policy)
    assert other.fingerprint() != iso.fingerprint()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with pytest.raises(ValueError) as e:
            load_family(family_path("swingup"), other.fingerprint())
    finally:
        os.chdir(cwd)
    msg = str(e.value)
    assert "\n" not in msg and "other pre-trained weights" in msg
    assert msg.endswith("re-make it with `kbt family --out controller/data/family_swingup.npz`")
    iso.save_state(tmp_path / "iso.npz")
    with pytest.raises(ValueError, match="another pre-trained model"):
        other.load_state(tmp_path / "iso.npz")


def test_a_saved_head_with_another_prior_mean_is_refused(tmp_path):
    """rls's identity is its box; its prior (the LQR gain, computed) is compared by tolerance."""
    from controller.rls import RLSController

    a = make_controller("rls", TASK)
    a.save_state(tmp_path / "rls.npz")
    near = RLSController(_nudged(-a.prior_mean[:4] * a.s_inv, ulps=2))
    near.load_state(tmp_path / "rls.npz")
    far = RLSController(-a.prior_mean[:4] * a.s_inv * (1 + 1e-6))
    with pytest.raises(ValueError, match="prior mean differs"):
        far.load_state(tmp_path / "rls.npz")


def test_digest_and_tolerance_helpers():
    a = np.arange(6.0).reshape(2, 3)
    assert digest({"x": 1}, [("a", a)]) == digest({"x": 1}, [("a", a.copy())])
    assert digest({"x": 1}, [("a", a)]) != digest({"x": 2}, [("a", a)])
    assert digest({"x": 1}, [("a", a)]) != digest({"x": 1}, [("a", a.reshape(3, 2))])   # shape counts
    assert digest({"x": 1}, [("a", a)]) != digest({"x": 1}, [("b", a)])                 # name counts
    assert max_relative_difference(a, a + 5 * COMPUTED_RTOL) == pytest.approx(COMPUTED_RTOL)
    assert max_relative_difference(a, a.T) == np.inf
    check_close("f.npz", "prior mean", a, a * (1 + 1e-12))
    with pytest.raises(ValueError, match="f.npz: its prior mean differs"):
        check_close("f.npz", "prior mean", a, a + 1e-6)
