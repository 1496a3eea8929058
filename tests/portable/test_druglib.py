# The drug library: DESIGN.md's figures, validation that reports every problem, CRC.
import json

from firmware import druglib, jsonparts, libpush
from firmware.core import SafetyCore
from tests.portable.corekit import HOUR, MIN, M, library, library_text
from tests.portable.coreview import last
from tests.portable.shellkit import Host, ports, shell


def _doc():
    return json.loads(library_text())


def _load(doc, reseal=True):
    if reseal:
        doc["crc32"] = "0x%08x" % druglib.crc_of(doc)
    return druglib.load(json.dumps(doc))


def test_shipped_library_is_valid_and_identified():
    lib = library()
    assert lib.ok, lib.problems
    assert lib.name == "pumpguard-adult-icu-vasoactive"
    assert lib.version
    assert _doc()["crc32"] == "0x%08x" % lib.crc


def test_library_holds_the_six_seed_drugs():
    names = sorted(library().drugs)
    assert names == [
        "dobutamine",
        "dopamine",
        "epinephrine",
        "norepinephrine",
        "phenylephrine",
        "vasopressin",
    ]


def test_vasopressin_figures():
    v = library().drugs["vasopressin"]
    assert v.dose_unit == "units/min"
    assert v.hard_max == 40000 and v.soft_max == 30000  # 0.04 hard, 0.03 usual
    assert v.taper and v.taper_step == 5000 and v.taper_interval_ms == HOUR
    assert "norepinephrine" in v.needs_any


def test_norepinephrine_figures():
    n = library().drugs["norepinephrine"]
    assert n.dose_unit == "mcg/kg/min" and n.weight_based
    assert n.concs == (4 * M, 16 * M)
    assert n.taper and n.soft_max == M


def test_dobutamine_figures():
    d = library().drugs["dobutamine"]
    assert d.start_max == 2500000 and d.soft_max == 20 * M and d.soft_min == 2500000
    assert d.up_percent == 200 and d.up_interval_ms == 15 * MIN
    assert not d.taper


def test_second_line_drugs_carry_advisories():
    lib = library()
    assert lib.drugs["phenylephrine"].needs_any and lib.drugs["phenylephrine"].advisory
    assert lib.drugs["dopamine"].needs_any and "first line" in lib.drugs["dopamine"].advisory


def test_every_figure_in_the_file_has_a_source():
    def walk(value, path, found):
        if isinstance(value, dict):
            if "value" in value:
                found.append((path, value.get("source")))
            for key in value:
                walk(value[key], path + "." + key, found)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, path + "." + str(i), found)

    found = []
    walk(_doc()["drugs"], "drugs", found)
    assert len(found) > 60
    for path, source in found:
        assert isinstance(source, str) and len(source) > 5, path


def test_canonical_form_is_sorted_compact_and_escaped():
    text = druglib.canonical({"b": 1, "a": [True, None, 'x"y\\z\n'], "c": {}})
    assert text == '{"a":[true,null,"x\\"y\\\\z\\u000a"],"b":1,"c":{}}'


def test_crc_ignores_layout_but_not_content():
    doc = _doc()
    assert druglib.crc_of(json.loads(json.dumps(doc))) == library().crc
    doc["drugs"]["vasopressin"]["limits"]["hard_max"]["value"] = "0.4"
    assert druglib.crc_of(doc) != library().crc


def test_edit_without_reseal_is_a_bad_crc():
    doc = _doc()
    doc["drugs"]["vasopressin"]["limits"]["hard_max"]["value"] = "0.4"
    lib = _load(doc, reseal=False)
    assert not lib.ok
    assert [p for p in lib.problems if p.startswith("library.crc32: bad CRC")]


def test_every_problem_is_reported_at_once_by_drug_and_field():
    doc = _doc()
    drugs = doc["drugs"]
    drugs["vasopressin"]["limits"]["hard_max"]["value"] = "0.02"  # inside the soft max
    drugs["dobutamine"]["dose_unit"] = "mcg/kg/fortnight"
    del drugs["epinephrine"]["limits"]["soft_max"]["source"]
    drugs["norepinephrine"]["concentrations"]["allowed"][0]["value"] = 4  # a number, not text
    drugs["phenylephrine"]["titration"]["up_interval_s"]["value"] = "2 min"
    lib = _load(doc)
    text = "\n".join(lib.problems)
    assert "vasopressin.limits: need hard_min <= soft_min <= soft_max <= hard_max" in text
    assert "dobutamine.dose_unit: unknown dose unit" in text
    assert "epinephrine.limits.soft_max: missing source" in text
    assert "norepinephrine.concentrations.allowed.0:" in text
    assert "phenylephrine.titration.up_interval_s:" in text
    # the hard max lowered below the start limit too (0.03)
    assert "vasopressin.limits.start_max: must lie within the hard limits" in text
    assert len(lib.problems) == 6, lib.problems


def test_float_figures_are_refused():
    doc = _doc()
    doc["drugs"]["vasopressin"]["limits"]["hard_max"]["value"] = 0.04
    lib = druglib.load(json.dumps(doc))
    assert not lib.ok
    assert [p for p in lib.problems if p.startswith("vasopressin.limits.hard_max")]


def test_taper_drug_needs_a_step_down_limit_covering_its_taper():
    doc = _doc()
    doc["drugs"]["norepinephrine"]["taper"]["step"]["value"] = "0.5"
    lib = _load(doc)
    assert [p for p in lib.problems if p.startswith("norepinephrine.taper:")]


def test_not_json_is_a_problem_not_a_crash():
    lib = druglib.load("{not json")
    assert not lib.ok and "not valid JSON" in lib.problems[0]


def test_invalid_library_runs_no_infusion_and_says_why():
    doc = _doc()
    del doc["drugs"]["vasopressin"]["limits"]["hard_max"]
    lib = _load(doc)
    core = SafetyCore(lib)
    assert "vasopressin.limits.hard_max" in last(core.log)[5]  # said at power-on
    result = core.start(
        2, "vasopressin", 30000, "units/min", 0, conc=100000, conc_unit="units/mL", volume=50 * M
    )
    assert not result.ok and result.code == "library_invalid"
    assert "vasopressin.limits.hard_max" in result.message
    assert core.rate(2) == 0


def test_names_and_advisories_are_bounded_to_fit_the_core_messages():
    doc = _doc()
    drugs = doc["drugs"]
    drugs["norepinephrine bitartrate"] = drugs.pop("dobutamine")
    drugs["vasopressin"]["advisories"][0]["text"] = "vasopressin " + "is not alone " * 6
    drugs["phenylephrine"]["advisories"][0]["text"] = "phenyl\u00e9phrine salvage only"
    assert _load(doc).problems == [
        "norepinephrine bitartrate: a drug name is 1-16 printable ASCII characters",
        "phenylephrine.advisories.0.text: at most 80 printable ASCII characters",
        "vasopressin.advisories.0.text: at most 80 printable ASCII characters",
    ]


def test_a_drug_that_is_not_an_object_is_one_problem():
    doc = _doc()
    doc["drugs"]["dobutamine"] = "2-20 mcg/kg/min"
    lib = _load(doc)
    assert lib.problems == ["dobutamine: not an object"]


def test_library_identity_is_bounded_to_what_hello_reports():
    doc = _doc()
    doc["name"] = "pumpguard-adult-icu-vasoactive-2026"  # 35 characters
    doc["version"] = "2026.11.21-review-3"  # 19 characters
    lib = _load(doc)
    assert not lib.ok
    assert lib.problems == [
        "library.name: must be 1-32 printable ASCII characters",
        "library.version: must be 1-16 printable ASCII characters",
    ], lib.problems


def test_taper_stop_dose_must_lie_between_the_hard_min_and_the_taper_step():
    # the taper stops from stop_at: below hard_min a step could run a forbidden dose,
    # above the step the final drop to 0 would be larger than a step
    doc = _doc()
    drugs = doc["drugs"]
    drugs["norepinephrine"]["taper"]["stop_at"]["value"] = "0.005"  # hard_min 0.01
    drugs["epinephrine"]["taper"]["stop_at"]["value"] = "0.06"  # step 0.05
    # both at once: hard_min 0.005
    drugs["vasopressin"]["taper"]["step"]["value"] = "0.0025"
    drugs["vasopressin"]["taper"]["stop_at"]["value"] = "0.004"
    assert _load(doc).problems == [
        "epinephrine.taper.stop_at: must not exceed the taper step",
        "norepinephrine.taper.stop_at: must not be below limits.hard_min",
        "vasopressin.taper.stop_at: must not be below limits.hard_min",
        "vasopressin.taper.stop_at: must not exceed the taper step",
    ]


def test_a_list_or_object_where_a_text_belongs_is_a_problem_never_a_crash():
    # load() runs at every boot (firmware/main.py) and at flash: a value that cannot be
    # looked up (`in` a dict hashes it) must be a problem, never a TypeError
    def dose_unit(drugs):
        drugs["norepinephrine"]["dose_unit"] = {}

    def conc_unit(drugs):
        drugs["norepinephrine"]["concentrations"]["unit"] = ["mcg/mL"]

    def partner(drugs):
        drugs["vasopressin"]["advisories"][0]["drugs"] = [["norepinephrine"]]

    for edit, field in [
        (dose_unit, "norepinephrine.dose_unit: unknown dose unit {}"),
        (conc_unit, "norepinephrine.concentrations.unit: ['mcg/mL'] is not a mass"),
        (partner, "vasopressin.advisories.0.drugs: needs_any needs a list of drug names"),
    ]:
        doc = _doc()
        edit(doc["drugs"])
        lib = _load(doc)
        assert [p for p in lib.problems if p.startswith(field)], (field, lib.problems)


def test_a_concentration_listed_twice_is_a_problem():
    # a start picks its concentration by value: a second "16" is never a second choice
    doc = _doc()
    allowed = doc["drugs"]["norepinephrine"]["concentrations"]["allowed"]
    allowed.append({"value": "16.0", "source": "a second 16"})
    assert _load(doc).problems == [
        "norepinephrine.concentrations.allowed.2: duplicate of "
        "norepinephrine.concentrations.allowed.1"
    ]


def test_a_library_without_a_canonical_form_has_crc_0_not_none():
    # HELLO_R's library_crc is a u32 and the state record's crc32 an int: a float (no
    # canonical form) or nesting too deep for the canonical form's recursion gives 0,
    # with the library invalid and unsealed
    doc = _doc()
    doc["about"] = 1.5
    lib = druglib.load(json.dumps(doc))
    assert lib.crc == 0
    assert "library.crc32: cannot be checked: the content has no CRC" in lib.problems
    # past any library's depth: refused before either interpreter's parser recurses
    deep = druglib.load('{"about":' + "[" * 3000 + "]" * 3000 + "}")
    assert deep.crc == 0
    assert deep.problems == ["library: nested 3001 deep: a library nests at most 16"]


def test_hello_reports_crc_0_for_a_boot_library_that_has_no_crc():
    p = ports()
    doc = _doc()
    doc["drugs"]["vasopressin"]["limits"]["hard_max"]["value"] = 0.04
    p["store"].files[libpush.ACTIVE] = json.dumps(doc).encode()
    sh = shell(p)
    name, f = Host(sh, p).hello()
    assert (name, f["library_crc"]) == ("HELLO_R", 0), f


def _shipped_bytes():
    return library_text().encode()


def test_a_member_given_twice_is_a_problem_naming_it_and_its_line():
    # json keeps the last of two: a pharmacist who read the first hard_max would not see
    # the one the pump runs (the seal covers the parsed document, so it passes).
    doc = _doc()
    doc["version"] = "dup"
    doc["crc32"] = "0x%08x" % druglib.crc_of(doc)
    text = json.dumps(doc).replace('", "', '",\n"')  # lines (MicroPython has no indent)
    at = text.index('"hard_max"', text.index('"dobutamine"'))
    text = text[:at] + '"hard_max": {"value": "1", "source": "reviewed"},\n' + text[at:]
    line = text[:at].count("\n") + 2  # the second of the two, the one json keeps
    lib = druglib.load(text)
    assert not lib.ok
    expected = "library: member 'hard_max' given twice in one object (line %d)" % (line,)
    assert [p for p in lib.problems if "given twice" in p][0].startswith(expected), lib.problems


def test_the_same_key_in_different_objects_is_no_duplicate():
    assert jsonparts.census(b'{"a": {"k": 1}, "b": [{"k": 1}, {"k": 2}], "k": 0}')[2] == []
    assert jsonparts.census(b'{"s": "\\"{", "t": "\\\\", "s": 1}')[2] == [(1, "s")]
    assert jsonparts.census(_shipped_bytes())[2] == []


def test_utf16_or_a_byte_order_mark_is_invalid_on_every_interpreter():
    # CPython's json reads UTF-16 and a BOM in bytes (the host's check, flash --library),
    # MicroPython's does not (a Pico): the same file must be refused on both.
    text = library_text()
    utf16 = bytearray(b"\xff\xfe")  # text.encode("utf-16"), which MicroPython lacks
    for ch in text:
        code = ord(ch)
        utf16 += bytes((code & 0xFF, code >> 8))
    for data in (bytes(utf16), b"\xef\xbb\xbf" + text.encode()):
        lib = druglib.load(data)
        assert not lib.ok
        assert lib.problems[0].startswith("library: not UTF-8 text"), lib.problems


def test_the_file_as_bytes_or_as_text_loads_the_same():
    a = druglib.load(_shipped_bytes())
    b = druglib.load(library_text())
    assert a.ok and b.ok and a.crc == b.crc


def _given_twice(between, second_key="hard_max"):
    """The shipped library's text, sealed for what json keeps, with dobutamine's
    limits.hard_max given twice: first the figure a pharmacist would read (40), then,
    after `between` and under second_key (the same key as json reads it), the one json
    keeps (400)."""
    doc = _doc()
    runs = {"value": "400", "source": "reviewed"}
    doc["drugs"]["dobutamine"]["limits"]["hard_max"] = runs
    doc["crc32"] = "0x%08x" % druglib.crc_of(doc)
    text = json.dumps(doc)
    member = '"hard_max": ' + json.dumps(runs)
    at = text.index(member)
    both = '"hard_max": {"value": "40", "source": "reviewed"}%s"%s": %s' % (
        between,
        second_key,
        json.dumps(runs),
    )
    return (text[:at] + both + text[at + len(member) :]).encode()


def test_a_member_given_twice_under_an_escaped_spelling_of_its_key_is_named():
    # json reads "hard_ma\u0078" as "hard_max" and keeps the last: the pump would run 400
    lib = druglib.load(_given_twice(", ", "hard_ma\\u0078"))
    assert not lib.ok
    assert [p for p in lib.problems if "'hard_max' given twice" in p], lib.problems


def test_a_member_given_twice_without_a_comma_between_is_a_problem_on_both_interpreters():
    # MicroPython's json takes a missing comma (and keeps the last), CPython's refuses
    # the text: either way the board never runs a figure the reader did not see.
    lib = druglib.load(_given_twice(" "))
    assert not lib.ok
    assert lib.problems[0].startswith("library: "), lib.problems


def test_a_key_holding_an_encoded_surrogate_given_twice_is_listed_never_raised():
    # CPython's json.loads(bytes) reads the bytes ED A0 80 (a lone surrogate); naming
    # the duplicate must not raise where the parse did not
    data = library_text().encode()
    at = data.index(b'"name"')
    lib = druglib.load(data[:at] + b'"\xed\xa0\x80": 1, "\xed\xa0\x80": 2, ' + data[at:])
    assert not lib.ok


def test_a_surrogate_escape_cut_by_a_multibyte_character_is_listed_never_raised():
    # before: "\\ud8" then half of a 3-byte character raised UnicodeDecodeError while
    # the problem quoted the escape's 4 bytes (found in review, issue 14)
    data = library_text().encode()
    at = data.index(b'"name"')
    lib = druglib.load(data[:at] + b'"about": "\\ud8\xe2\x82\xac", ' + data[at:])
    assert not lib.ok
    assert [p for p in lib.problems if p.startswith("library: a \\ud8 escape")], lib.problems


def test_a_surrogate_pair_escape_is_a_problem_on_both_interpreters():
    # CPython joins "\ud835\udc65" into one character, MicroPython's json keeps two
    # surrogates: another canonical form, so a CRC sealed on a host would fail on a
    # board. Refused on both; an escaped "\\ud835" (a backslash, then text) is not one.
    doc = _doc()
    doc["drugs"]["dobutamine"]["limits"]["hard_max"]["source"] = "ref @ p.12"
    doc["crc32"] = "0x%08x" % druglib.crc_of(doc)
    text = json.dumps(doc)
    lib = druglib.load(text.replace("@", "\\ud835\\udc65"))
    assert not lib.ok
    assert lib.problems == [
        "library: a \\ud835 escape (half of a character outside the BMP): write the "
        "character itself, in UTF-8"
    ]
    doc["drugs"]["dobutamine"]["limits"]["hard_max"]["source"] = "ref \\ud835 p.12"
    doc["crc32"] = "0x%08x" % druglib.crc_of(doc)
    assert druglib.load(json.dumps(doc)).ok


def test_nesting_past_any_library_is_the_same_problem_on_both_interpreters():
    # "about" is free text: 200 deep parses on CPython and exhausts MicroPython's stack
    doc = _doc()
    doc["about"] = "@"
    doc["crc32"] = "0x%08x" % druglib.crc_of(doc)
    lib = druglib.load(json.dumps(doc).replace('"@"', "[" * 200 + "]" * 200))
    assert lib.problems == ["library: nested 201 deep: a library nests at most 16"]
