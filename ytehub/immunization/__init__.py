"""Immunization: the national EPI (TCMR) schedule as versioned data and its forecasting rules.

Other modules import from here only; the schedule file and loader are internals.
"""

from ytehub.immunization.schedule import (
    CVX_SYSTEM,
    SCHEDULE_PATH,
    VACCINE_SYSTEM,
    Dose,
    DoseStatus,
    DoseWindow,
    DueDose,
    Schedule,
    Span,
    Vaccine,
    dose_window,
    due_doses,
    is_on_time,
    load_schedule,
    national_schedule,
)

__all__ = [
    "CVX_SYSTEM",
    "SCHEDULE_PATH",
    "VACCINE_SYSTEM",
    "Dose",
    "DoseStatus",
    "DoseWindow",
    "DueDose",
    "Schedule",
    "Span",
    "Vaccine",
    "dose_window",
    "due_doses",
    "is_on_time",
    "load_schedule",
    "national_schedule",
]
