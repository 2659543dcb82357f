"""Controls: a PadState -> musical Params and events, through a mapping and a calibration."""

from riffpad.controls.calibration import (
    Calibration,
    CalibrationError,
    StickCal,
    TriggerCal,
    load_calibration,
    save_calibration,
)
from riffpad.controls.core import Controls, controls_help, monitor_extra
from riffpad.controls.mapping import Mapping, MappingError, load_mapping
from riffpad.controls.params import EVENTS, PARAMS, Event, Params, ParamSpec

__all__ = [
    "EVENTS",
    "PARAMS",
    "Calibration",
    "CalibrationError",
    "Controls",
    "Event",
    "Mapping",
    "MappingError",
    "ParamSpec",
    "Params",
    "StickCal",
    "TriggerCal",
    "controls_help",
    "load_calibration",
    "load_mapping",
    "monitor_extra",
    "save_calibration",
]
