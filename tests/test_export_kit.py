"""The integration kit of ``kbt export``: CMake target, PlatformIO / Arduino metadata,
and the examples (host C, C++, bare-metal Cortex-M7 in QEMU), each built by its one
documented command and checked against the compiled export run from Python."""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from firmware_profile import cortex_m
from firmware_profile.c_controller import CController
from sim.cli import main
from sim.cli.export import _demo
from sim.loops.methods import make_controller
from sim.world.cartpole import TARGET

HAVE = {t: shutil.which(t) is not None for t in ("cc", "make", "cmake", "g++")}


def _need(*tools):
    gone = [t for t in tools if not HAVE[t]]
    return pytest.mark.skipif(bool(gone), reason=f"{', '.join(gone)} not on PATH (Debian: "
                              f"apt-get install {' '.join({'cc': 'gcc', 'g++': 'g++'}.get(t, t) for t in gone)})")


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    out = tmp_path_factory.mktemp("fw")
    assert main(["export", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def expected():
    """(forces, statuses) of the demo stream through the compiled export from Python."""
    c = CController(make_controller("kbt", TARGET), u_max=TARGET.u_max)
    S, F = _demo()
    forces, learned = [], []
    for s, f in zip(S, F):
        status, u = c.act_status(s)
        assert status == 0
        forces.append(u)
        learned.append(c.observe_status(s, f))
    return np.array(forces), learned


def _forces(text):
    return np.array([float(v) for v in re.findall(r"force (-?[\d.]+) N", text)])


def test_the_kit_has_every_file_and_is_byte_identical_on_reexport(kit, tmp_path):
    want = {"kbt.h", "kbt.c", "CMakeLists.txt", "library.json", "library.properties", "examples/demo.h",
            "examples/host/main.c", "examples/host/Makefile", "examples/cpp/main.cpp", "examples/cpp/Makefile",
            "examples/mps2-an500/main.c", "examples/mps2-an500/Makefile", "examples/mps2-an500/startup.c",
            "examples/mps2-an500/link.ld"}
    have = {str(p.relative_to(kit)) for p in kit.rglob("*") if p.is_file()}
    assert want <= have
    meta = json.loads((kit / "library.json").read_text())
    assert meta["build"]["srcFilter"] == ["+<kbt.c>"] and meta["headers"] == "kbt.h"
    props = dict(line.split("=", 1) for line in (kit / "library.properties").read_text().splitlines() if "=" in line)
    assert props["includes"] == "kbt.h" and props["name"] == "kbt-controller"
    model = re.search(r'#define KBT_MODEL_ID "([0-9a-f]{16})"', (kit / "kbt.h").read_text()).group(1)
    assert model in meta["description"]
    assert main(["export", "--out", str(tmp_path)]) == 0
    for name in want:
        assert (tmp_path / name).read_bytes() == (kit / name).read_bytes(), name


@_need("cc", "make")
def test_the_host_example_builds_with_one_command_and_runs(kit, expected):
    run = subprocess.run(["make", "-s", "-C", str(kit / "examples" / "host"), "run"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    forces, learned = expected
    np.testing.assert_allclose(_forces(run.stdout), forces, atol=1e-4)
    assert re.findall(r"label [-\d.]+ N \(status (\d)\)", run.stdout) == [str(s) for s in learned]


@_need("cc", "make", "g++")
def test_a_cpp_file_that_includes_the_header_links_and_runs(kit, expected):
    env = dict(os.environ, CXX="g++")
    run = subprocess.run(["make", "-s", "-C", str(kit / "examples" / "cpp"), "run"], capture_output=True, text=True,
                         env=env)
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(_forces(run.stdout), expected[0], atol=1e-4)


@_need("cc", "cmake")
def test_the_cmake_target_builds_and_the_example_runs(kit, expected, tmp_path):
    build = tmp_path / "build"
    for cmd in (["cmake", "-S", str(kit), "-B", str(build)], ["cmake", "--build", str(build)]):
        run = subprocess.run(cmd, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (build / "libkbt.a").exists()
    run = subprocess.run([str(build / "kbt_host_example")], capture_output=True, text=True, check=True)
    np.testing.assert_allclose(_forces(run.stdout), expected[0], atol=1e-4)


@pytest.mark.skipif(bool(cortex_m.missing()) or not HAVE["make"],
                    reason=f"bare-metal example: {cortex_m.missing() or 'make not on PATH'}")
def test_the_bare_metal_example_runs_in_qemu_and_prints_its_forces(kit, expected):
    run = subprocess.run(["make", "-s", "-C", str(kit / "examples" / "mps2-an500"), "run"], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-1000:] + run.stderr[-1000:]
    assert "check ok" in run.stdout
    # printed with 4 decimals; FMA on the device
    np.testing.assert_allclose(_forces(run.stdout), expected[0], atol=2e-4)
