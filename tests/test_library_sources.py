"""Every source in the shipped drug library says where its figure comes from, in words
a pharmacist can find (issue 9, finding 11): a source that cites a seed document or
DESIGN.md's table quotes it, `seed NNN_<hash>.txt: 'words of the seed'`, and the words
are there. In single quotes: JSON writes a double one escaped, and the canonical form
the CRC covers then spells the text out character by character (a load allocated 135 KB
on WebAssembly, above tests/portable/test_druglib_memory.py's 128 KB). A figure no
document gives says "pharmacist to review" (or, recalled from a product label, "verify
against the current label"). The seeds and DESIGN.md's clinical table are kept in
docs/sources/, copied as they are (a pharmacist checks a source there, and the quote
test runs on every machine); the figures corrected for finding 11 are pinned here with
their quotes."""

import json
import re

import pytest

from tests.librarykit import ROOT, shipped

# a citation: a seed file or DESIGN.md's table, then the quoted words, up to a quote
# that ends the text or comes before ";", ":", ",", ")" or " (" (an apostrophe inside,
# "Ringer's", or a quote the seed makes, 'renal protection', does not end it)
CITATION = re.compile(r"(seed \d{3}_[0-9a-f]{16}\.txt|DESIGN\.md table): '(.+?)'(?=$|[;:,)]| \()")
# any mention of a seed file or of DESIGN.md (each must be a citation)
MENTION = re.compile(r"seed \d{3}|DESIGN\.md")
REVIEWED = ("pharmacist to review", "verify against the current label")
# The seeds are UTF-8 prose; the library is ASCII: these are written the ASCII way, and
# the seeds' own double quotes as single ones.
ASCII = {"\u2265": ">=", "\u2264": "<=", "\u03bc": "mc", "\u2013": "-", "\u2014": "-"}
ASCII.update(dict.fromkeys("\u2018\u2019", "'"))
ASCII.update(dict.fromkeys('"\u201c\u201d', "'"))


def sources(value, path=""):
    """(where, value or None, source) of every member of the library with a source."""
    if isinstance(value, dict):
        if isinstance(value.get("source"), str):
            yield path, value.get("value", value.get("required")), value["source"]
        for key, item in value.items():
            yield from sources(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from sources(item, f"{path}[{i}]")


SOURCES = list(sources(shipped()))


def normal(text):
    for odd, plain in ASCII.items():
        text = text.replace(odd, plain)
    return " ".join(text.split())


DOCUMENTS = ROOT / "docs" / "sources"  # the seeds, and DESIGN.md's table (design-table.md)


def test_every_mention_of_a_seed_or_the_design_is_a_quote():
    loose = [
        (where, source)
        for where, _, source in SOURCES
        if len(MENTION.findall(source)) != len(CITATION.findall(source))
    ]
    assert not loose, "cites without quoting:\n" + "\n".join(map(repr, loose))


def test_a_figure_no_document_gives_is_for_the_pharmacist():
    # null and 0 are "no limit": what the library does not check, said so
    bare = [
        (where, value, source)
        for where, value, source in SOURCES
        if value not in (None, 0, True)
        and not CITATION.search(source)
        and not any(words in source for words in REVIEWED)
    ]
    assert not bare, "neither quoted nor for review:\n" + "\n".join(map(repr, bare))


def test_every_quote_is_in_the_document_it_cites():
    texts = {"DESIGN.md table": normal((DOCUMENTS / "design-table.md").read_text("utf-8"))}
    for seed in DOCUMENTS.glob("*.txt"):
        texts[f"seed {seed.name}"] = normal(seed.read_text(encoding="utf-8"))
    missing = [
        (where, document, quote)
        for where, _, source in SOURCES
        for document, quote in CITATION.findall(source)
        if normal(quote) not in texts.get(document, "")
    ]
    assert not missing, "not in the document cited:\n" + "\n".join(map(repr, missing))


def test_no_figure_rests_on_seed_004s_unit_error():
    # seed 004 writes norepinephrine in mg/kg/min, a thousandfold error (DESIGN.md)
    assert not [where for where, _, source in SOURCES if "mg/kg/min" in source]


def _figure(*path):
    value = shipped()
    for key in path:
        value = value[key]
    return value["value"], value["source"]


# finding 11's figures: (path, value, words its source must hold)
CORRECTED = [
    (
        ("drugs", "norepinephrine", "limits", "start_max"),
        "0.1",
        "seed 003_1d7e3b770c50f250.txt: 'weight-based initial dose of 0.05 to 0.1",
    ),
    (
        ("drugs", "norepinephrine", "limits", "soft_min"),
        "0.02",
        "site default: pharmacist to review",
    ),
    (("volume_ml", "max"), "1000", "site default: pharmacist to review"),
    (
        ("drugs", "phenylephrine", "limits", "hard_max"),
        "200",
        "DESIGN.md table: 'typical 10-200 mcg/min'",
    ),
    (("drugs", "dopamine", "limits", "soft_min"), "5", "site default: pharmacist to review"),
]


@pytest.mark.parametrize(
    ("path", "value", "words"), CORRECTED, ids=[".".join(c[0]) for c in CORRECTED]
)
def test_finding_11s_figures_say_what_their_source_says(path, value, words):
    figure, source = _figure(*path)
    assert (figure, words in source) == (value, True), source


def test_phenylephrines_ceiling_is_its_labels():
    # a soft max above the label's 200 mcg/min would be no better than a hard one
    limits = shipped()["drugs"]["phenylephrine"]["limits"]
    assert [limits[k]["value"] for k in ("soft_max", "hard_max")] == ["200", "200"]


def test_the_shipped_library_is_ascii_with_no_escape():
    # an escape costs every load (above): the sources quote in single quotes
    text = (ROOT / "firmware" / "druglib.json").read_text(encoding="utf-8")
    assert text.isascii() and "\\" not in text and json.loads(text)
