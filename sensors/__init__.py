"""Sensor drivers (DESIGN.md "Sensor"): OpenCV cameras, RealSense RGB-D, microphones, tactile sensors,
and a rig that answers "the observation at time t" with the skew of each sensor.

Heavy libraries (cv2, pyrealsense2, sounddevice) are imported by the driver that needs them.
"""

from sensors.base import RingBuffer, Sample, Sensor, SensorConfig, ThreadedSensor
from sensors.errors import DeviceNotFoundError, SensorConfigError, SensorError, StaleError
from sensors.rig import SENSOR_TYPES, Rig, RigObservation, make_sensor

__all__ = ["Sample", "Sensor", "SensorConfig", "ThreadedSensor", "RingBuffer", "SensorError",
           "DeviceNotFoundError", "StaleError", "SensorConfigError", "Rig", "RigObservation", "make_sensor",
           "SENSOR_TYPES"]
