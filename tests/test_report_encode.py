"""The one JSON encoder behind the JSON, SARIF and OCSF reports (report/common.encode_json).

It must write the values json.dumps writes, as pure printable ASCII whatever a guest named its
disks, and fail where json.dumps fails rather than serialize a record field by field."""

from __future__ import annotations

import dataclasses
import datetime
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperward.report.common import encode_json

#: what a hostile guest or tenant can put in a name: C1 CSI, a bidi override, DEL, an astral
#: character, an ESC sequence, a lone surrogate left by an undecodable file name
HOSTILE = ["\u009b2J", "evil\u202etxt.exe", "del\x7f", "\U0001f600", "\x1b]0;owned\x07", "disk-\udcff.img", "é"]


def _printable_ascii(text: str) -> bool:
    return all(" " <= c <= "~" for c in text)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_strings_come_out_escaped_and_round_trip(name):
    value = {"resource": name, "details": {"path": f"/var/lib/libvirt/images/{name}"}, "list": [name, 1, None, True]}
    text = encode_json(value)
    assert _printable_ascii(text), text
    assert json.loads(text) == value
    # the same escapes json.dumps writes, character for character
    assert text == json.dumps(value, separators=(",", ":"))


def test_what_orjson_refuses_goes_through_json_dumps():
    for value in ({"n": 2**70}, {1: "int key"}, ["\udc80"]):
        assert encode_json(value) == json.dumps(value, separators=(",", ":"))


def test_records_and_datetimes_are_refused_as_json_dumps_refuses_them():
    @dataclasses.dataclass
    class Credential:
        user: str
        password: str

    for value in ({"who": Credential("root", "hunter2")}, {"when": datetime.datetime(2026, 12, 2)}):
        with pytest.raises(TypeError):
            json.dumps(value)
        with pytest.raises(TypeError):
            encode_json(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_value_is_written_as_json_dumps_writes_it(value):
    text = encode_json(value)
    assert _printable_ascii(text)
    assert text == json.dumps(value, separators=(",", ":"))
