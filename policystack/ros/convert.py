"""numpy <-> standard ROS messages, with validation that names what is wrong.

Decoding is duck-typed on the message fields, so the same code validates live rclpy messages and
messages read back from a rosbag2 by ``rosbags`` (whose arrays are numpy). Encoding builds rclpy
messages (imported lazily) and fills ``uint8[]``/``float[]`` fields through ``array.array`` so a
640x480 frame costs a memcpy, not a Python loop.
"""

from __future__ import annotations

import array
import json
from typing import Any, Sequence

import numpy as np

from policystack import keys as K
from policystack.spec import Feature
from policystack.ros.topics import msg_class, short_type

# Image encodings we accept: name -> (numpy dtype, channels)
ENCODINGS = {"rgb8": ("uint8", 3), "bgr8": ("uint8", 3), "rgba8": ("uint8", 4), "bgra8": ("uint8", 4),
             "mono8": ("uint8", 1), "32FC1": ("float32", 1), "16UC1": ("uint16", 1)}


class MessageError(ValueError):
    """A message that cannot become the observation it is mapped to; the text is the reason."""


# ----- time ---------------------------------------------------------------------------------------
def stamp_ns(msg: Any) -> int | None:
    """The header stamp in ns, or None when the message has no header or a zero stamp."""
    header = getattr(msg, "header", None)
    if header is None:
        return None
    st = header.stamp
    ns = int(st.sec) * 1_000_000_000 + int(getattr(st, "nanosec", 0))
    return ns or None


def set_stamp(msg: Any, ns: int, frame_id: str = "") -> None:
    msg.header.stamp.sec = int(ns // 1_000_000_000)
    msg.header.stamp.nanosec = int(ns % 1_000_000_000)
    if frame_id:
        msg.header.frame_id = frame_id


# ----- decoding -----------------------------------------------------------------------------------
def _check_shape(arr: np.ndarray, feature: Feature | None, what: str) -> np.ndarray:
    if feature is None:
        return arr
    shape = tuple(feature.shape)
    if len(shape) != arr.ndim or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        raise MessageError(f"{what} has shape {arr.shape}, the policy expects {shape}")
    return arr


def decode_image(msg: Any, feature: Feature | None = None) -> np.ndarray:
    enc = str(msg.encoding)
    if enc not in ENCODINGS:
        raise MessageError(f"unsupported image encoding {enc!r} (accepted: {', '.join(ENCODINGS)})")
    dtype, ch = ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    item = np.dtype(dtype).itemsize
    if h <= 0 or w <= 0:
        raise MessageError(f"image is {h}x{w}")
    if step < w * ch * item:
        raise MessageError(f"image step {step} < width {w} x {ch} channel(s) x {item} byte(s)")
    buf = np.frombuffer(msg.data, dtype=np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data.view(np.uint8)
    if buf.size != step * h:
        raise MessageError(f"image data has {buf.size} bytes, {enc} {h}x{w} with step {step} needs {step * h}")
    rows = buf.reshape(h, step)[:, : w * ch * item]
    dt = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<") if item > 1 else np.dtype(dtype)
    img = np.ascontiguousarray(rows).view(dt).reshape(h, w, ch) if ch > 1 else \
        np.ascontiguousarray(rows).view(dt).reshape(h, w)
    want = feature.dtype if feature is not None else None
    if enc in ("rgb8", "bgr8", "rgba8", "bgra8"):
        if want is not None and (want != "uint8" or len(feature.shape) != 3):
            raise MessageError(f"a colour {enc} image cannot feed {feature.key!r} ({want} {feature.shape})")
        img = img[..., :3]
        if enc.startswith("bgr"):
            img = img[..., ::-1]
        img = np.ascontiguousarray(img)
    elif enc == "mono8":
        if want is not None and (want != "uint8" or len(feature.shape) != 2):
            raise MessageError(f"a mono8 image cannot feed {feature.key!r} ({want} {feature.shape})")
    else:  # depth: 32FC1 metres or 16UC1 millimetres -> float32 metres
        if want is not None and (want != "float32" or len(feature.shape) != 2):
            raise MessageError(f"a {enc} depth image cannot feed {feature.key!r} ({want} {feature.shape})")
        img = img.astype(np.float32) * (np.float32(0.001) if enc == "16UC1" else np.float32(1.0))
    return _check_shape(img, feature, f"{enc} image")


def decode_compressed(msg: Any, feature: Feature | None = None) -> np.ndarray:
    import cv2
    fmt = str(msg.format).lower()
    if not any(t in fmt for t in ("jpeg", "jpg", "png")):
        raise MessageError(f"unsupported CompressedImage format {msg.format!r} (jpeg or png)")
    buf = np.frombuffer(msg.data, np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        raise MessageError(f"CompressedImage ({msg.format}) does not decode")
    return _check_shape(np.ascontiguousarray(img[..., ::-1]), feature, "compressed image")


def decode_joint_state(msg: Any, feature: Feature | None = None, joint_names: Sequence[str] = (),
                       field: str = "position") -> np.ndarray:
    values = np.asarray(getattr(msg, field), np.float64)
    if joint_names:
        names = list(msg.name)
        missing = [n for n in joint_names if n not in names]
        if missing:
            raise MessageError(f"JointState lacks joint(s) {missing} (has {names})")
        if len(values) != len(names):
            raise MessageError(f"JointState has {len(names)} names but {len(values)} {field} values")
        values = values[[names.index(n) for n in joint_names]]
    out = values.astype(np.float32 if feature is None or feature.dtype == "str" else feature.dtype)
    return _check_shape(out, feature, f"JointState.{field}")


def decode_multiarray(msg: Any, feature: Feature | None = None) -> np.ndarray:
    data = np.asarray(msg.data)
    dims = [int(d.size) for d in msg.layout.dim]
    shape: tuple
    if feature is not None:
        shape = tuple(feature.shape)
        if None in shape:
            if dims and len(dims) == len(shape):
                shape = tuple(d if s is None else s for s, d in zip(shape, dims))
            else:
                known = int(np.prod([s for s in shape if s is not None])) or 1
                if shape.count(None) != 1 or data.size % known:
                    raise MessageError(f"{data.size} values cannot fill shape {feature.shape}")
                shape = tuple(data.size // known if s is None else s for s in shape)
    else:
        shape = tuple(dims) if dims else (data.size,)
    if int(np.prod(shape)) != data.size:
        raise MessageError(f"MultiArray has {data.size} values, shape {shape} needs {int(np.prod(shape))}")
    dtype = feature.dtype if feature is not None and feature.dtype != "str" else data.dtype
    return data.reshape(shape).astype(dtype, copy=False)


def decode(msg: Any, type_name: str, feature: Feature | None = None, joint_names: Sequence[str] = (),
           field: str = "position") -> np.ndarray | str:
    """Message -> observation value, or MessageError with the reason."""
    t = short_type(type_name)
    if t == "Image":
        return decode_image(msg, feature)
    if t == "CompressedImage":
        return decode_compressed(msg, feature)
    if t == "JointState":
        return decode_joint_state(msg, feature, joint_names, field)
    if t in ("Float32MultiArray", "Float64MultiArray"):
        return decode_multiarray(msg, feature)
    if t == "String":
        return str(msg.data)
    raise MessageError(f"{type_name} is not an observation message")


# ----- encoding -----------------------------------------------------------------------------------
def _fill(typecode: str, arr: np.ndarray) -> array.array:
    out = array.array(typecode)
    out.frombytes(np.ascontiguousarray(arr).tobytes())
    return out


def encode_image(arr: np.ndarray, stamp: int = 0, frame_id: str = "", encoding: str | None = None):
    Image = msg_class("Image")
    arr = np.asarray(arr)
    if encoding is None:
        if arr.dtype == np.uint8:
            encoding = "rgb8" if arr.ndim == 3 and arr.shape[2] == 3 else "mono8"
        elif arr.dtype in (np.float32, np.float64) and arr.ndim == 2:
            encoding = "32FC1"
        else:
            raise MessageError(f"no image encoding for a {arr.dtype} array of shape {arr.shape}")
    dtype, ch = ENCODINGS[encoding]
    arr = arr.astype(dtype, copy=False)
    if (ch == 1 and arr.ndim != 2) or (ch > 1 and (arr.ndim != 3 or arr.shape[2] != ch)):
        raise MessageError(f"{encoding} needs {'HxW' if ch == 1 else f'HxWx{ch}'}, got {arr.shape}")
    msg = Image()
    set_stamp(msg, stamp, frame_id)
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(arr.shape[1] * ch * arr.dtype.itemsize)
    msg.data = _fill("B", arr.view(np.uint8) if arr.dtype != np.uint8 else arr)
    return msg


def encode_joint_state(values: np.ndarray, names: Sequence[str] | None = None, stamp: int = 0, frame_id: str = ""):
    msg = msg_class("JointState")()
    set_stamp(msg, stamp, frame_id)
    v = np.asarray(values, np.float64).reshape(-1)
    msg.name = list(names) if names else [f"q{i}" for i in range(v.size)]
    msg.position = _fill("d", v)
    return msg


def encode_multiarray(values: np.ndarray, labels: Sequence[str] | None = None, double: bool = False):
    cls = msg_class("Float64MultiArray" if double else "Float32MultiArray")
    from std_msgs.msg import MultiArrayDimension
    v = np.asarray(values, np.float64 if double else np.float32)
    msg = cls()
    strides = [int(np.prod(v.shape[i:])) for i in range(v.ndim)]
    labels = list(labels or [f"dim{i}" for i in range(v.ndim)])
    msg.layout.dim = [MultiArrayDimension(label=lab, size=int(s), stride=st)
                      for lab, s, st in zip(labels, v.shape, strides)]
    msg.data = _fill("d" if double else "f", v.reshape(-1))
    return msg


def encode_string(text: str):
    return msg_class("String")(data=str(text))


def encode(value: Any, feature: Feature, type_name: str | None = None, stamp: int = 0, frame_id: str = ""):
    """Observation value -> the standard message for its key (see topics.default_type)."""
    from policystack.ros.topics import default_type
    t = short_type(type_name or default_type(feature))
    if t == "String":
        return encode_string(value)
    if t == "Image":
        return encode_image(value, stamp, frame_id)
    if t == "JointState":
        return encode_joint_state(value, feature.names, stamp, frame_id)
    if t in ("Float32MultiArray", "Float64MultiArray"):
        labels = ("channels", "samples") if K.modality_of(feature.key) == "audio" and np.ndim(value) == 2 else None
        return encode_multiarray(value, labels, double=t == "Float64MultiArray")
    raise MessageError(f"cannot encode {feature.key!r} as {t}")


def action_msg(action: np.ndarray, stamp: int | None = None):
    """The raw action on /policy/action: Float64MultiArray with one 'action' dimension.

    In lockstep the dimension label carries the stamp of the observation it answers ("action@<ns>"), so a
    simulator can drop a late duplicate answer instead of applying it to the next step.
    """
    label = "action" if stamp is None else f"action@{int(stamp)}"
    return encode_multiarray(np.asarray(action, np.float64).reshape(-1), [label], double=True)


def action_stamp(msg: Any) -> int | None:
    """The observation stamp an action answers (lockstep), or None when the publisher did not tag it."""
    dims = getattr(getattr(msg, "layout", None), "dim", None) or []
    label = dims[0].label if dims else ""
    if not label.startswith("action@"):
        return None
    try:
        return int(label[len("action@"):])
    except ValueError:
        raise MessageError(f"malformed action label {label!r}") from None


def action_from_msg(msg: Any) -> np.ndarray:
    a = np.asarray(msg.data, np.float64).reshape(-1)
    if a.size == 0:
        raise MessageError("empty action")
    return a


def json_msg(payload: dict):
    return encode_string(json.dumps(payload, default=_json_default, separators=(",", ":")))


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
