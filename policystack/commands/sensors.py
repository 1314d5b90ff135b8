"""`policystack sensors`: list devices, preview a rig as a contact sheet, record a rig to HDF5 episodes."""

from __future__ import annotations

import json

NAME = "sensors"
HELP = "sensor rigs: list devices, preview a rig (contact-sheet PNG), record a rig to HDF5 episodes"
DESCRIPTION = """Sensor rigs (cameras, RealSense, microphones, tactile) described by one YAML file.

  policystack sensors list                              what is plugged in, with the YAML type to use
  policystack sensors preview rig.yaml -o sheet.png     a grid of every sensor at a few ticks + skews
  policystack sensors record rig.yaml -o demos.hdf5 --seconds 10 --episodes 2 --task "pour water"

Rig YAML (see docs/sensors.md):
  rate: 10
  sensors:
    - {type: opencv, name: front, source: 0, width: 640, height: 480, fps: 30}
    - {type: microphone, name: mic, device: default}
"""


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="<action>")
    ls = sub.add_parser("list", help="list cameras, tactile sensors, RealSense devices and audio inputs")
    ls.add_argument("--json", action="store_true", help="print JSON")
    pv = sub.add_parser("preview", help="open a rig and write a contact sheet PNG")
    pv.add_argument("rig", help="rig YAML file")
    pv.add_argument("-o", "--out", default="rig_preview.png", help="PNG path")
    pv.add_argument("--ticks", type=int, default=4, help="rows: observations taken")
    pv.add_argument("--interval", type=float, default=0.5, help="seconds between rows")
    rc = sub.add_parser("record", help="record a rig to HDF5 episodes (robomimic/LIBERO layout + timing)")
    rc.add_argument("rig", help="rig YAML file")
    rc.add_argument("-o", "--out", required=True, help="HDF5 file (episodes are appended)")
    rc.add_argument("--seconds", type=float, default=5.0, help="length of each episode")
    rc.add_argument("--episodes", type=int, default=1)
    rc.add_argument("--rate", type=float, default=None, help="Hz (default: the rig's rate)")
    rc.add_argument("--task", default="", help="language instruction stored with the episodes")
    rc.add_argument("--pause", type=float, default=0.0, help="seconds between episodes (reset the scene)")


def run(args) -> int:
    action = getattr(args, "action", None)
    if action == "list":
        return _list(args)
    if action == "preview":
        return _preview(args)
    if action == "record":
        return _record(args)
    print("usage: policystack sensors {list,preview,record} ... (see --help)")
    return 2


def _list(args) -> int:
    from sensors.discovery import list_devices
    devs = list_devices()
    if args.json:
        print(json.dumps(devs, indent=2))
        return 0
    print(f"video devices ({len(devs['video'])}):")
    for d in devs["video"]:
        kind = f" [{d['kind']}]" if d["kind"] else ""
        node = "" if d["capture_node"] else " (metadata node)"
        print(f"  {d['source']:14s} {d['name']}{kind} serial={d['serial'] or '-'}{node}  -> type: {d['type']}")
    print(f"realsense devices ({len(devs['realsense'])}):")
    for d in devs["realsense"]:
        print(f"  {d['name']} serial={d['serial']} firmware={d['firmware']} usb={d['usb']}  -> type: realsense")
    print(f"audio inputs ({len(devs['audio'])}):")
    for d in devs["audio"]:
        print(f"  [{d['index']}] {d['name']} ({d['hostapi']}, {d['channels']} ch, "
              f"{d['default_samplerate']:.0f} Hz)  -> type: microphone, device: {d['name']!r}")
    return 0


def _preview(args) -> int:
    from sensors.preview import preview
    from sensors.rig import Rig
    rig = Rig.from_yaml(args.rig)
    with rig:
        path = preview(rig, args.out, n=args.ticks, interval=args.interval, title=str(args.rig))
        for name, st in rig.stats().items():
            print(f"  {name:12s} {st['state']:12s} {st['fps']:8.1f}/s  reconnects={st['reconnects']}")
    print(f"wrote {path}")
    return 0


def _record(args) -> int:
    import time

    from sensors.record import record
    from sensors.rig import Rig
    rig = Rig.from_yaml(args.rig)
    with rig:
        rig.wait_ready()
        rep = record(rig, args.out, episodes=args.episodes, seconds=args.seconds, rate=args.rate, task=args.task,
                     between=(lambda i: time.sleep(args.pause)) if args.pause else None)
    for ep in rep["episodes"]:
        sk = ", ".join(f"{n} p95 {s.get('p95_ms', float('nan')):.0f} ms" for n, s in ep["skew"].items())
        print(f"  {ep['name']}: {ep['steps']} steps, {ep['stale_steps']} stale; skew {sk}")
    print(f"wrote {len(rep['episodes'])} episode(s) to {rep['path']}")
    return 0
