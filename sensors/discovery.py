"""What is plugged in: V4L2 cameras (and which are tactile sensors), RealSense devices, audio inputs."""

from __future__ import annotations

from typing import Any

from sensors.tactile import KINDS, list_video_devices


def list_devices() -> dict[str, list[dict[str, Any]]]:
    """Every device the drivers could open, with the YAML ``type`` that opens it."""
    from sensors.microphone import list_inputs
    from sensors.realsense import list_realsense
    cams = []
    for d in list_video_devices():
        text = " ".join(filter(None, [d.name, d.model] + d.by_id)).lower()
        kind = next((k for k, v in KINDS.items() if v[0] and any(n.lower() in text for n in v[0])), None)
        cams.append({"type": "tactile" if kind else "opencv", "kind": kind, "source": d.devnode, "name": d.name,
                     "serial": d.serial, "capture_node": d.index == 0, "by_id": d.by_id})
    realsense = [{"type": "realsense", **d} for d in list_realsense()]
    audio = [{"type": "microphone", **d} for d in list_inputs()]
    return {"video": cams, "realsense": realsense, "audio": audio}
