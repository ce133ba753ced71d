#!/usr/bin/env python3
"""Compare `grey-gpu-opt detect --json` with `nvidia-smi -q -x`, field by field.

Usage: gpu_compare.py detect.json nvidia-smi.xml [replay.json]
Prints one line per compared field (OK / DIFF) and a total; exit 1 on any DIFF.
"""
import json
import sys
import xml.etree.ElementTree as ET


def text(node, path):
    n = node.find(path)
    if n is None or n.text is None:
        return None
    t = n.text.strip()
    return None if t in ("", "N/A", "[N/A]") or t.startswith("[") else t


def num(s):
    if s is None:
        return None
    try:
        return float(s.split()[0])
    except ValueError:
        return None


def norm_bus(b):
    if not b:
        return None
    dom, rest = b.split(":", 1)
    return ("%04x:" % int(dom, 16)) + rest.lower()


def main():
    detect = json.load(open(sys.argv[1]))
    root = ET.parse(sys.argv[2]).getroot()
    replay = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else None
    by_bus = {g.get("device_id"): g for g in detect}
    diffs = oks = 0

    def check(bus, field, ours, theirs, tol=0.0):
        nonlocal diffs, oks
        if theirs is None:
            print(f"  {bus} {field}: nvidia-smi has no value; ours={ours!r}")
            return
        same = ours == theirs
        if not same and isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
            same = abs(ours - theirs) <= tol
        print(f"  {'OK  ' if same else 'DIFF'} {bus} {field}: ours={ours!r} nvidia-smi={theirs!r}")
        if same:
            oks += 1
        else:
            diffs += 1

    driver = text(root, "driver_version")
    cuda = text(root, "cuda_version")
    gpus = root.findall("gpu")
    print(f"nvidia-smi lists {len(gpus)} GPU(s); detect lists {len(detect)}")
    if len(gpus) != len(detect):
        diffs += 1
    for g in gpus:
        bus = norm_bus(g.get("id"))
        ours = by_bus.get(bus)
        if ours is None:
            print(f"  DIFF {bus}: missing from detect")
            diffs += 1
            continue
        check(bus, "model", ours.get("model"), text(g, "product_name"))
        check(bus, "uuid", ours.get("uuid"), text(g, "uuid"))
        check(bus, "driver", ours.get("driver"), driver)
        check(bus, "cuda_version", ours.get("cuda_version"), cuda)
        total = num(text(g, "fb_memory_usage/total"))
        check(bus, "vram_total_mb", ours.get("vram_total_mb"), int(total) if total else None)
        dev = text(g, "pci/pci_device_id")
        if dev:
            v = int(dev, 16)
            check(bus, "pci_id", ours.get("pci_id"), "%04x:%04x" % (v & 0xFFFF, v >> 16))
        clk = num(text(g, "max_clocks/graphics_clock"))
        check(bus, "clock_mhz", ours.get("clock_mhz"), int(clk) if clk else None)
        slow = num(text(g, "temperature/gpu_temp_slow_threshold"))
        shut = num(text(g, "temperature/gpu_temp_max_threshold"))
        tl = ours.get("thermal_limits") or {}
        check(bus, "slowdown_c", tl.get("slowdown_c"), int(slow) if slow else None)
        check(bus, "shutdown_c", tl.get("shutdown_c"), int(shut) if shut else None)
        pr = g.find("gpu_power_readings")
        if pr is None:
            pr = g.find("power_readings")
        if pr is not None:
            for ours_key, path in (("power_limit_min_w", "min_power_limit"),
                                   ("power_limit_max_w", "max_power_limit"),
                                   ("power_limit_default_w", "default_power_limit")):
                check(bus, ours_key, ours.get(ours_key), num(text(pr, path)), tol=0.5)
        gen = num(text(g, "pci/pci_gpu_link_info/pcie_gen/max_link_gen"))
        width = text(g, "pci/pci_gpu_link_info/link_widths/max_link_width")
        if gen and width:
            check(bus, "pci_bandwidth", ours.get("pci_bandwidth"),
                  f"Gen{int(gen)} x{int(width.rstrip('x'))}")
        mig = text(g, "mig_mode/current_mig")
        if mig in ("Enabled", "Disabled"):
            check(bus, "mig_mode", ours.get("mig_mode"), mig == "Enabled")
        if replay is not None:
            rb = {r.get("device_id"): r for r in replay}.get(bus)
            check(bus, "replay model", (rb or {}).get("model"), ours.get("model"))
            check(bus, "replay vram_total_mb", (rb or {}).get("vram_total_mb"),
                  ours.get("vram_total_mb"))
    print(f"{oks} fields agree, {diffs} differ")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
