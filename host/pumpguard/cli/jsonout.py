"""``--json``: an answer of the API as JSON, generically: a dataclass is an object of
its fields (in their order), a ``Decimal`` the exact decimal as a string ("0.1": a JSON
number would be read back as a float), a tuple a list. A field the API adds to an
answer appears without a change here."""

import dataclasses
import json
from decimal import Decimal


def jsonable(value):
    """``value`` as what ``json.dumps`` writes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def print_json(value, out):
    """One line of JSON (one object per line where a command prints several)."""
    print(json.dumps(jsonable(value)), file=out)
