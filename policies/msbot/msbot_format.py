"""MS-Bot's own on-disk episodes (GeWu-Lab/MS-Bot ``data/pour/<init>-<target>-<k>/``, ``data/peg/<k>/``).

Per episode folder: ``00record.txt`` (``action,unix_time,[x, y, z, roll, pitch, yaw]`` per 5-Hz tick),
``01img.txt`` / ``02tactile.txt`` (``frame_idx,unix_time`` + a ``start`` line), ``rgb/{i}.png``
(pour) or ``rgb/{i}_rgb.png`` + ``depth/{i}_dep.png`` (peg), ``tactile/{i}.png``; pour adds
``audio.wav`` (mono int16 44.1 kHz) and ``03audio.txt`` (stream start and end time).

:func:`load_msbot_folder` applies the reference preprocessing (label relabelling, stage rules) and
returns our :class:`~policystack.dataset.Episode` per folder: per kept tick the newest frame of each
stream before the tick (resized 105x140, centre-cropped 96x128, as MS-Bot's test transform), a 3-s
16-kHz audio window ending at the tick, ``observation.state`` = the logged pose (+ the pour setting's
initial and target grams), actions as primitive vectors and per-tick stage labels in
``attrs["stages"]``. The policy then applies the same log-Mel frontend as for every other source.
:func:`write_msbot_episode` writes the format (tests, converters).
"""

from __future__ import annotations

import logging
import re
import wave
from pathlib import Path
from typing import Sequence

import numpy as np

from policystack import keys as K
from policystack.dataset import Episode
from policystack.errors import DatasetError
from policies.common.audio import resample

log = logging.getLogger(__name__)

# raw key -> primitive vector; pour actions are (dx, dpitch), peg actions (dx, dy, dz, dyaw)
POUR_PRIMITIVES = {0: (0.0, 0.0), 2: (-1.0, 0.0), 3: (0.0, 1.0), 4: (0.0, -1.0)}   # wait, x-, back, pour
PEG_PRIMITIVES = {0: (0, 0, 0, 0), 1: (1, 0, 0, 0), 2: (-1, 0, 0, 0), 3: (0, 1, 0, 0), 4: (0, -1, 0, 0),
                  5: (0, 0, -1, 0), 6: (0, 0, 0, 1)}
POUR_LABELS = (2, -1, 0, 3, 1)      # reference label_dict: raw key -> class (4 classes)
WINDOW_S = 3.0


def _read_times(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"MS-Bot episode lacks {path.name} ({path})")
    times = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or "s" in line:          # the 'start' marker line
            continue
        times.append(float(line.split(",", 1)[1]))
    return np.asarray(times)


def _read_record(path: Path) -> tuple[list[int], np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"MS-Bot episode lacks {path.name} ({path})")
    acts, times, poses = [], [], []
    for n, line in enumerate(path.read_text().splitlines()):
        m = re.match(r"\s*(\d+)\s*,\s*([0-9.eE+-]+)\s*,\s*\[(.*)\]", line)
        if not m:
            if line.strip():
                raise DatasetError(f"{path}:{n + 1}: expected 'action,time,[x, y, z, roll, pitch, yaw]'")
            continue
        acts.append(int(m.group(1)))
        times.append(float(m.group(2)))
        poses.append([float(v) for v in m.group(3).split(",")])
    return acts, np.asarray(times), np.asarray(poses, np.float32)


def preprocess_pour(actions: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """Reference rules -> (kept tick indices, raw actions, stages). Waits at t <= 10 are skipped; a wait
    after a backward move is relabelled 2 and dropped; a wait after a rotate-back becomes 3."""
    a = list(actions)
    kept, raw, stages = [], [], []
    stage = 0
    for t in range(len(a)):
        if a[t] == 0 and t <= 10:
            continue
        if t > 0 and a[t] == 0 and a[t - 1] == 2:
            a[t] = 2
            continue
        if t > 0 and a[t] == 0 and a[t - 1] == 3:
            a[t] = 3
        if a[t] == 4 and stage == 0:
            stage = 1
        if a[t] == 0 and stage == 1:
            stage = 2
        if a[t] == 3 and stage == 2:
            stage = 3
        kept.append(t), raw.append(a[t]), stages.append(stage)
    return kept, raw, stages


def preprocess_peg(actions: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """Every wait becomes the next non-wait action (trailing waits stay 0). Stage 0 before the first
    rotate, 1 while rotates lie ahead, 2 after the last rotate."""
    a = list(actions)
    for t in range(len(a)):
        if a[t] == 0:
            nxt = next((x for x in a[t:] if x != 0), None)
            if nxt is not None:
                a[t] = nxt
    stages, seen = [], False
    for t in range(len(a)):
        seen = seen or a[t] == 6
        stages.append(0 if not seen else (1 if 6 in a[t:] else 2))
    return list(range(len(a))), a, stages


def _image(path: Path, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    import cv2
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"cannot read image {path}")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    h, w = size
    rh, rw = int(round(h * 105 / 96)), int(round(w * 140 / 128))
    img = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_LINEAR)
    y, x = (rh - h) // 2, (rw - w) // 2
    return np.ascontiguousarray(img[y:y + h, x:x + w])


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as f:
        if f.getsampwidth() != 2:
            raise DatasetError(f"{path}: expected 16-bit PCM, got {8 * f.getsampwidth()}-bit")
        rate, ch = f.getframerate(), f.getnchannels()
        data = np.frombuffer(f.readframes(f.getnframes()), np.int16).reshape(-1, ch)
    return data.mean(1).astype(np.float32) / 32768.0, rate


def _last_before(times: np.ndarray, t: float) -> int:
    return max(0, int(np.searchsorted(times, t, side="right")) - 1)


def load_msbot_episode(folder: str | Path, task: str | None = None, image_size=(96, 128)) -> Episode:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"MS-Bot episode folder {folder} does not exist")
    task = task or ("peg" if (folder / "depth").is_dir() else "pour")
    if task not in ("pour", "peg"):
        raise DatasetError(f"MS-Bot task must be 'pour' or 'peg', got {task!r}")
    acts, tick_t, poses = _read_record(folder / "00record.txt")
    img_t = _read_times(folder / "01img.txt")
    tac_t = _read_times(folder / "02tactile.txt")
    kept, raw, stages = (preprocess_pour if task == "pour" else preprocess_peg)(acts)
    if not kept:
        raise DatasetError(f"{folder}: no control ticks left after preprocessing")
    prims = POUR_PRIMITIVES if task == "pour" else PEG_PRIMITIVES
    bad = sorted({r for r in raw if r not in prims})
    if bad:
        raise DatasetError(f"{folder}: action key(s) {bad} are not {task} primitives {sorted(prims)}")
    obs: dict[str, list] = {K.image_key("rgb"): [], K.tactile_key("gelsight"): [], K.STATE: []}
    cond: list[float] = []
    if task == "pour":
        m = re.match(r"(\d+)-(\d+)", folder.name)
        cond = [float(m.group(1)), float(m.group(2))] if m else [0.0, 0.0]
        wav, rate = read_wav(folder / "audio.wav")
        wav16 = np.asarray(resample(wav, rate, 16000), np.float32)
        a_lines = (folder / "03audio.txt").read_text().split()
        a_start, a_end = float(a_lines[0]), float(a_lines[1])
        obs[K.audio_key("mic")] = []
    else:
        obs[K.depth_key("rgb")] = []
    win = int(WINDOW_S * 16000)
    for t in kept:
        tau = tick_t[t]
        i, j = _last_before(img_t, tau), _last_before(tac_t, tau)
        if task == "pour":
            obs[K.image_key("rgb")].append(_image(folder / "rgb" / f"{i}.png", image_size))
            frac = (tau - a_start) / (a_end - a_start)
            a = int(frac * len(wav16))
            seg = wav16[max(0, a - win):max(0, a)]
            obs[K.audio_key("mic")].append(np.pad(seg, (win - len(seg), 0))[None])
        else:
            obs[K.image_key("rgb")].append(_image(folder / "rgb" / f"{i}_rgb.png", image_size))
            # reference depth: uint8-wrapped z16 through a JET colour map; kept as its RGB image
            obs[K.depth_key("rgb")].append(_image(folder / "depth" / f"{i}_dep.png", image_size))
        obs[K.tactile_key("gelsight")].append(_image(folder / "tactile" / f"{j}.png", image_size))
        obs[K.STATE].append(np.concatenate([poses[t], np.asarray(cond, np.float32)]).astype(np.float32))
    arrays = {k: np.stack(v) for k, v in obs.items()}
    if task == "peg":   # the colour-mapped depth is an RGB image: file it as a second camera
        arrays[K.image_key("depth")] = arrays.pop(K.depth_key("rgb"))
    T = len(kept)
    return Episode(obs=arrays, actions=np.asarray([prims[r] for r in raw], np.float32),
                   rewards=np.zeros(T, np.float32), dones=np.eye(1, T, T - 1, dtype=np.uint8)[0],
                   task=f"msbot {task}", attrs={"stages": np.asarray(stages, np.int64), "source": str(folder),
                                                "raw_actions": np.asarray(raw, np.int64)})


def load_msbot_folder(root: str | Path, task: str | None = None, limit: int | None = None,
                      image_size=(96, 128)) -> list[Episode]:
    """Every episode folder under ``root`` (itself one episode if it holds ``00record.txt``)."""
    root = Path(root)
    if (root / "00record.txt").is_file():
        folders = [root]
    else:
        folders = sorted(p for p in root.iterdir() if (p / "00record.txt").is_file()) if root.is_dir() else []
    if not folders:
        raise DatasetError(f"no MS-Bot episode folders (with 00record.txt) under {root}")
    return [load_msbot_episode(f, task, image_size) for f in folders[:limit]]


def write_msbot_episode(folder: str | Path, actions: Sequence[int], tick_times: Sequence[float],
                        poses: np.ndarray, rgb: Sequence[np.ndarray], rgb_times: Sequence[float],
                        tactile: Sequence[np.ndarray], tactile_times: Sequence[float],
                        audio: np.ndarray | None = None, audio_rate: int = 44100,
                        audio_span: tuple[float, float] | None = None,
                        depth: Sequence[np.ndarray] | None = None) -> Path:
    """Write one episode in MS-Bot's layout (pour when ``audio`` is given, peg when ``depth`` is)."""
    import cv2
    folder = Path(folder)
    (folder / "rgb").mkdir(parents=True, exist_ok=True)
    (folder / "tactile").mkdir(parents=True, exist_ok=True)
    lines = [f"{a},{t},[{', '.join(f'{v:.6f}' for v in p)}]" for a, t, p in zip(actions, tick_times, poses)]
    (folder / "00record.txt").write_text("\n".join(lines) + "\n")
    peg = depth is not None
    for name, frames, times, sub in (("01img.txt", rgb, rgb_times, "rgb"),
                                     ("02tactile.txt", tactile, tactile_times, "tactile")):
        rows = [f"{i},{t}" for i, t in enumerate(times)]
        rows.insert(min(len(rows), 1), "start")
        (folder / name).write_text("\n".join(rows) + "\n")
        for i, img in enumerate(frames):
            fname = f"{i}_rgb.png" if (peg and sub == "rgb") else f"{i}.png"
            cv2.imwrite(str(folder / sub / fname), cv2.cvtColor(np.asarray(img, np.uint8), cv2.COLOR_RGB2BGR))
    if peg:
        (folder / "depth").mkdir(exist_ok=True)
        for i, img in enumerate(depth):
            cv2.imwrite(str(folder / "depth" / f"{i}_dep.png"), cv2.cvtColor(np.asarray(img, np.uint8),
                                                                             cv2.COLOR_RGB2BGR))
    if audio is not None:
        pcm = (np.clip(np.asarray(audio, np.float32), -1, 1) * 32767).astype(np.int16)
        with wave.open(str(folder / "audio.wav"), "wb") as f:
            f.setnchannels(1), f.setsampwidth(2), f.setframerate(audio_rate)
            f.writeframes(pcm.tobytes())
        start, end = audio_span if audio_span else (tick_times[0], tick_times[-1])
        (folder / "03audio.txt").write_text(f"{start}\n{end}\n")
    return folder
