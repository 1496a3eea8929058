# The board's compact catalog (catalog.py) is the rich one (schema.py), written out:
# regenerate it with schema.literals() when a message changes.
from protocol import catalog, schema


def test_compact_tables_are_the_schema():
    for name, value in schema.compact().items():
        hint = f"{name} differs; paste into catalog.py:\n{schema.literals()}"
        assert getattr(catalog, name) == value, hint
    assert bytes(catalog._IDS) == bytes(m[0] for m in schema.MESSAGES)


def test_schema_hash_is_the_schema_text():
    assert catalog.SCHEMA_HASH == schema.SCHEMA_HASH == 0x0296D1EE


def test_compact_lookups_agree_with_the_rich_tables():
    for msg_id, name, _fields in schema.MESSAGES:
        assert catalog.msg_id(name) == msg_id and catalog.name(msg_id) == name
        for role in (1, 2, 3):
            assert catalog.may(msg_id, role) == (role in schema.MAY.get(msg_id, ()))
