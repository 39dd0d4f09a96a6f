"""Target device profiles and whether a method fits one.

A method fits a device when its float32 parameters + learning state + buffers
(including the traced transient peak of one update, halved for float32) fit
in the device's RAM. The clock gives a rough update-time estimate at one FLOP
per cycle (a single-precision FPU without SIMD); it is an estimate, not a
measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Device", "DEVICES", "custom_device", "fits"]


@dataclass(frozen=True)
class Device:
    name: str
    ram_kib: int
    clock_mhz: float | None = None

    @property
    def ram_bytes(self):
        return self.ram_kib * 1024


DEVICES = (
    Device("MCU 256 KiB @ 180 MHz", 256, 180.0),
    Device("MCU 512 KiB @ 480 MHz", 512, 480.0),
    Device("MCU 1 MiB @ 600 MHz", 1024, 600.0),
)


def custom_device(kib):
    if not isinstance(kib, int) or isinstance(kib, bool) or kib < 1:
        raise ValueError(f"budget_kib: expected an integer number of KiB >= 1 but found {kib!r}")
    return Device(f"custom {kib} KiB", kib, None)


def fits(total_bytes, update_flops, device: Device):
    """{'fits': bool, 'ram_used': fraction, 'est_update_ms': at 1 FLOP/cycle or None}."""
    est = None if device.clock_mhz is None or update_flops is None else update_flops / (device.clock_mhz * 1e3)
    return {"device": device.name, "fits": total_bytes <= device.ram_bytes,
            "ram_used": total_bytes / device.ram_bytes, "est_update_ms": est}
