"""Typed sensor errors: each names the sensor and the device, so a user can fix the rig without a debugger."""

from __future__ import annotations

from policystack.errors import ConfigError, PolicystackError


class SensorError(PolicystackError, RuntimeError):
    """A sensor failed: it could not be opened, it was used before open(), or its source broke."""


class DeviceNotFoundError(SensorError, LookupError):
    """The device a sensor names (index, /dev path, file, URL, serial, audio device) is not present."""


class StaleError(SensorError, TimeoutError):
    """The newest sample is older than allowed (or there is none yet); the source may have died."""


class SensorConfigError(SensorError, ConfigError):
    """A sensor setting is invalid, or the device refused it (the read-back value differs)."""
