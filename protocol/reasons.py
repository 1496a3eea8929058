# The reasons' wire numbers: every decision, alarm and log entry of the safety core is
# named by a stable lower_snake reason ("above_hard_max"); the wire carries its number.
#
# The table is APPEND-ONLY: a number is never reused or renumbered, since hosts, logs
# and stored records keep it. Ranges: 0-9 accepted, 10-39 refused, 40-59 alarms and
# advisories, 60-79 log entries that record an input rather than decide anything
# (key_rotated and auth_refused, 58 and 59, are log entries of the link's security,
# numbered beside its alarms 56 and 57), 80-99 alarms again (40-59 are full).
# The safety core knows the names only; the device's shell turns them into numbers
# (number()) and the host back into names (NAME), both from this one table.
# protocol/SPEC.md section 9 renders it (tests/test_protocol_spec.py keeps them equal).

_CODES = (
    # accepted
    ("ok", 0),
    ("ok_override", 1),  # accepted past a soft limit because the command carried override
    ("ok_advisory", 2),  # accepted, with an advisory alarm (e.g. vasopressin alone)
    ("taper_started", 3),  # stop of a taper drug: the library's taper now runs
    ("stopped", 4),
    ("emergency_stopped", 5),
    ("acked", 6),
    ("taper_step", 7),  # one step of a running taper (log only)
    ("rate_changed", 8),  # the motor's rate changed (log only)
    ("restored", 9),  # the core was restored from a snapshot after a reset (log only)
    # refused
    ("library_invalid", 10),
    ("unknown_drug", 11),
    ("unknown_channel", 12),
    ("invalid_state", 13),
    ("unknown_unit", 14),
    ("wrong_unit_family", 15),
    ("per_hour_unit", 16),
    ("rate_not_dose", 17),
    ("weight_required", 18),
    ("weight_out_of_range", 19),
    ("conc_required", 20),
    ("conc_not_allowed", 21),
    ("volume_required", 22),
    ("volume_out_of_range", 23),
    ("above_hard_max", 24),
    ("below_hard_min", 25),
    ("above_soft_max", 26),
    ("below_soft_min", 27),
    ("likely_unit_slip", 28),
    ("step_up_too_large", 29),
    ("step_down_too_large", 30),
    ("too_soon", 31),
    ("above_max_rate", 32),
    ("unknown_alarm", 33),
    ("unknown_reason", 34),
    ("bad_value", 35),
    ("above_start_max", 36),
    # alarms and advisories (Alarm.code)
    ("link_lost", 40),
    ("near_empty", 41),
    ("syringe_empty", 42),
    ("occlusion", 43),
    ("air_in_line", 44),
    ("motor_fault", 45),
    ("extravasation", 46),
    ("clinician", 47),  # emergency stop by the clinician
    ("second_line_alone", 48),  # a second-line drug runs with none of its partners
    ("resumed_after_reset", 49),  # a channel delivers again after a reset, from a snapshot
    ("store_lost", 50),  # the saved state was missing or corrupt: every channel starts idle
    # log entries of inputs (EventLog.code)
    ("received", 60),  # a command as received (kind: its name); its decision follows
    ("link_back", 61),  # the host is heard again after link_lost
    # alarms of the device's own loop and store (issue 10)
    ("internal_fault", 51),  # an exception inside a turn: channels held safe, link served
    ("store_failed", 52),  # a save failed: degraded mode, the current safe state kept
    ("record_set_aside", 53),  # a record that failed to boot twice was moved aside
    ("restore_refused", 54),  # a restored channel failed re-verification: stays stopped
    ("record_rolled_back", 55),  # the record is older than the board's record counter
    # the authenticated link (issue 11)
    ("insecure_link", 56),  # LOW, standing: the emulator runs --insecure (all-zero keys)
    ("keys_missing", 57),  # HIGH: no valid keys file on the board, every AUTH is refused
    ("key_rotated", 58),  # log entry: the key of a role was replaced (KEY)
    ("auth_refused", 59),  # log entry: an AUTH proof was refused
    # library push (issue 13)
    ("library_busy", 37),  # refused: a library is pushed only while no channel delivers
    ("library_pushed", 62),  # log entry: a pushed library passed its checks on the board
    ("library_switched", 63),  # log entry: the core now runs another library
    # alarms (continued: 40-59 are taken)
    ("library_refused", 80),  # HIGH, standing: the active library is invalid, nothing runs
)

NUMBER = dict(_CODES)
NAME = dict((number, name) for name, number in _CODES)

# The wire number sent for a reason this table does not list: a firmware bug, never
# the number of another reason (SPEC.md section 9).
UNKNOWN = 255


def number(name):
    """The wire number of reason name; UNKNOWN for a name the table lacks."""
    return NUMBER.get(name, UNKNOWN)
