"""Target device profiles and whether a method fits one.

A method fits a device when its float32 parameters + learning state + buffers
(including the traced transient peak of one update, halved for float32) fit
in the device's RAM. The clock gives a rough update-time estimate at one FLOP
per cycle (a single-precision FPU without SIMD); it is an estimate, not a
measurement.

For the C export (``kbt-c``, ``rls-c``) measured figures replace both where
the Cortex-M build ran (``firmware_profile.cortex_m``): RAM is the state
struct plus the deepest stack the calls used, and the update time is the
instructions counted per ``observe`` on the device's core, turned into cycles
by the cost model (``cortex_m.CYCLE_COST``) and into time at the device's
clock. ``fits`` says which (``"source"``: ``"flops"`` or ``"counted"``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Device", "DEVICES", "custom_device", "fits"]


@dataclass(frozen=True)
class Device:
    name: str
    ram_kib: int
    clock_mhz: float | None = None
    #: the core whose counted instructions stand for this device (``cortex_m.TARGETS``)
    core: str | None = None

    @property
    def ram_bytes(self):
        return self.ram_kib * 1024


DEVICES = (
    Device("MCU 256 KiB @ 180 MHz", 256, 180.0, "cortex-m4f"),
    Device("MCU 512 KiB @ 480 MHz", 512, 480.0, "cortex-m7"),
    Device("MCU 1 MiB @ 600 MHz", 1024, 600.0, "cortex-m7"),
)


def custom_device(kib):
    if not isinstance(kib, int) or isinstance(kib, bool) or kib < 1:
        raise ValueError(f"budget_kib: expected an integer number of KiB >= 1 but found {kib!r}")
    return Device(f"custom {kib} KiB", kib, None)


def fits(total_bytes, update_flops, device: Device, counted=None):
    """{'fits': bool, 'ram_used': fraction, 'est_tick_ms', 'source'}.

    ``update_flops``: the FLOPs of one control tick (act plus observe for a learner).

    Without ``counted``: RAM ``total_bytes``, time at 1 FLOP/cycle (None without a
    clock), source ``"flops"``. With ``counted = (cycles per update, RAM bytes)`` from
    the device's core: those, source ``"counted"``.
    """
    source = "flops"
    if counted is not None:
        cycles, total_bytes = counted
        update_flops, source = cycles, "counted"
    est = None if device.clock_mhz is None or update_flops is None else update_flops / (device.clock_mhz * 1e3)
    return {"device": device.name, "fits": total_bytes <= device.ram_bytes,
            "ram_used": total_bytes / device.ram_bytes, "est_tick_ms": est, "source": source}
