# The reasons' wire numbers: every decision, alarm and log entry of the safety core is
# named by a stable lower_snake reason ("above_hard_max"); the wire carries its number.
#
# The table is APPEND-ONLY: a number is never reused or renumbered, since hosts, logs
# and stored records keep it. Ranges: 0-9 accepted, 10-39 refused, 40-59 alarms and
# advisories, 60-79 log entries that record an input rather than decide anything
# (key_rotated and auth_refused, 58 and 59, are log entries of the link's security,
# numbered beside its alarms 56 and 57); from 80 on, each range's overflow once it
# filled: 80 an alarm, 81-82 accepted, 83 refused (host/pumpguard/report/parse.py).
# The safety core knows the names only; the device's shell turns them into numbers
# (number()) and the host back into names (NAME), both from this one table.
# protocol/SPEC.md section 9 renders it (tests/test_protocol_spec.py keeps them equal).
#
# One str, the names between "|" in the order of their numbers ("" where a number is
# free): a board holds 900 bytes, not two dicts of 70 entries. number() finds a name
# without allocating; NUMBER and NAME, the host's dicts, are made when read.

_TABLE = (
    # 0-9 accepted: ok, ok_override (past a soft limit: the command carried override),
    # ok_advisory (with an advisory alarm), taper_started (stop of a taper drug),
    # taper_step, rate_changed, restored (from a snapshot after a reset): log only
    "|ok|ok_override|ok_advisory|taper_started|stopped|emergency_stopped|acked"
    "|taper_step|rate_changed|restored"
    # 10-39 refused (37: a library is pushed only while no channel delivers; 38: a
    # start on a channel whose sensor still reports a fault; 39: a handover to a
    # syringe whose label is not the running program's drug and concentration)
    "|library_invalid|unknown_drug|unknown_channel|invalid_state|unknown_unit"
    "|wrong_unit_family|per_hour_unit|rate_not_dose|weight_required"
    "|weight_out_of_range|conc_required|conc_not_allowed|volume_required"
    "|volume_out_of_range|above_hard_max|below_hard_min|above_soft_max"
    "|below_soft_min|likely_unit_slip|step_up_too_large|step_down_too_large"
    "|too_soon|above_max_rate|unknown_alarm|unknown_reason|bad_value"
    "|above_start_max|library_busy|fault_active|handover_mismatch"
    # 40-50 alarms and advisories (Alarm.code): clinician is an emergency stop by the
    # clinician, second_line_alone a second-line drug without its partners,
    # resumed_after_reset a channel delivering again from a snapshot, store_lost a
    # missing or corrupt saved state (every channel starts idle)
    "|link_lost|near_empty|syringe_empty|occlusion|air_in_line|motor_fault"
    "|extravasation|clinician|second_line_alone|resumed_after_reset|store_lost"
    # 51-55 the device's own loop and store (issue 10); 56-59 the authenticated link
    # (issue 11): insecure_link LOW standing, keys_missing HIGH, key_rotated and
    # auth_refused log entries
    "|internal_fault|store_failed|record_set_aside|restore_refused"
    "|record_rolled_back|insecure_link|keys_missing|key_rotated|auth_refused"
    # 60-63 log entries of inputs (EventLog.code): received (a command as received),
    # link_back (the host heard again), library_pushed, library_switched (issue 13),
    # fault_cleared (a channel's sensor reports its fault no more)
    "|received|link_back|library_pushed|library_switched|fault_cleared|||||||||||||||"
    # 80 alarms again: library_refused, HIGH standing (the active library is invalid);
    # 81 accepted again (0-9 are full): handed_over, a program moved to another channel;
    # 82 accepted: patient_set (the patient's weight, rules.check_patient); 83 refused
    # again (10-39 are full): weight_mismatch, a start's weight not the patient's
    "|library_refused|handed_over|patient_set|weight_mismatch|"
)

# The wire number sent for a reason this table does not list: a firmware bug, never
# the number of another reason (SPEC.md section 9).
UNKNOWN = 255


def number(name):
    """The wire number of reason name; UNKNOWN for a name the table lacks."""
    t = _TABLE
    if not name or "|" in name:
        return UNKNOWN
    i = t.find(name)
    while i > 0:
        if t.startswith("|", i - 1) and t.startswith("|", i + len(name)):
            return t.count("|", 0, i) - 1
        i = t.find(name, i + 1)
    return UNKNOWN


def _names():
    return _TABLE[1:-1].split("|")


# The host's dicts: declared here, made by __getattr__ when read.
NAME: "dict[int, str]"
NUMBER: "dict[str, int]"


def __getattr__(attr):
    # The host's dicts (and a rare reader on a board: made anew at each read there).
    if attr == "NAME":
        table = dict((i, n) for i, n in enumerate(_names()) if n)
    elif attr == "NUMBER":
        table = dict((n, i) for i, n in enumerate(_names()) if n)
    else:
        raise AttributeError(attr)
    return table
