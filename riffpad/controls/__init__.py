"""Controls: a PadState -> musical Params and events, through a mapping and a calibration."""

from riffpad.controls.calibration import (
    Calibration,
    CalibrationError,
    StickCal,
    TriggerCal,
    load_calibration,
    save_calibration,
)
from riffpad.controls.core import Controls, Params, monitor_extra
from riffpad.controls.mapping import EVENTS, PARAMS, Mapping, MappingError, load_mapping

__all__ = [
    "EVENTS",
    "PARAMS",
    "Calibration",
    "CalibrationError",
    "Controls",
    "Mapping",
    "MappingError",
    "Params",
    "StickCal",
    "TriggerCal",
    "load_calibration",
    "load_mapping",
    "monitor_extra",
    "save_calibration",
]
