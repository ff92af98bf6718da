"""@frozen against @dataclass(frozen=True): the same class written both ways behaves the same."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from hyperward.records import frozen


@frozen
class Rec:
    name: str
    size: int = 0
    tags: list[str] = field(default_factory=list)
    secret: str = field(default="", repr=False)
    seen: float = field(default=0.0, compare=False)
    KIND: ClassVar[str] = "record"


@dataclass(frozen=True)
class Ref:
    name: str
    size: int = 0
    tags: list[str] = field(default_factory=list)
    secret: str = field(default="", repr=False)
    seen: float = field(default=0.0, compare=False)
    KIND: ClassVar[str] = "record"


@frozen
class Point:
    x: int
    label: str = field(default="", hash=True, compare=False)


@dataclass(frozen=True)
class RefPoint:
    x: int
    label: str = field(default="", hash=True, compare=False)


@frozen
class Empty:
    pass


@frozen
class Nested:
    inner: Rec
    items: tuple[Rec, ...] = ()


def _pair(**kw: object) -> tuple[Rec, Ref]:
    return Rec(**kw), Ref(**kw)  # type: ignore[arg-type]


def test_fields_and_params_match_dataclasses() -> None:
    assert [(f.name, f.type, f.default, f.default_factory, f.repr, f.compare, f.hash, f.init) for f in dataclasses.fields(Rec)] == \
           [(f.name, f.type, f.default, f.default_factory, f.repr, f.compare, f.hash, f.init) for f in dataclasses.fields(Ref)]
    assert dataclasses.is_dataclass(Rec) and Rec.__match_args__ == Ref.__match_args__
    assert Rec.__dataclass_params__.frozen and Rec.__dataclass_params__.eq  # type: ignore[attr-defined]
    assert list(inspect.signature(Rec).parameters) == list(inspect.signature(Ref).parameters)
    assert Rec.KIND == "record" and "KIND" not in {f.name for f in dataclasses.fields(Rec)}


def test_construction_defaults_and_factories() -> None:
    a, b = _pair(name="x")
    assert (a.name, a.size, a.tags, a.secret, a.seen) == (b.name, b.size, b.tags, b.secret, b.seen) == ("x", 0, [], "", 0.0)
    assert Rec("x").tags is not Rec("x").tags  # a fresh list per instance
    with pytest.raises(TypeError):
        Rec()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Rec("x", nope=1)  # type: ignore[call-arg]
    assert Rec("x", 2, ["t"]) == Rec(name="x", size=2, tags=["t"])


def test_repr_eq_hash_match() -> None:
    a, b = _pair(name="x", size=3, tags=["a"], secret="hunter2", seen=1.5)
    assert repr(a).replace("Rec", "Ref", 1) == repr(b)
    assert "hunter2" not in repr(a)
    assert Rec("x", seen=1.0) == Rec("x", seen=2.0)  # compare=False
    assert Rec("x") != Rec("y") and Rec("x") != Ref("x") and Rec("x").__eq__(object()) is NotImplemented
    assert hash(Point(1, "a")) == hash(RefPoint(1, "a")) == hash((1, "a"))
    with pytest.raises(TypeError):
        hash(Rec("x", tags=["unhashable"]))
    assert repr(Empty()) == "Empty()" and Empty() == Empty() and hash(Empty()) == hash(())
    assert repr(Nested(Rec("a"))) == "Nested(inner=Rec(name='a', size=0, tags=[], seen=0.0), items=())"


def test_frozen_refuses_assignment_and_deletion() -> None:
    a, b = _pair(name="x")
    for obj in (a, b):
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.name = "y"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.other = 1  # type: ignore[attr-defined]
        with pytest.raises(dataclasses.FrozenInstanceError):
            del obj.name  # type: ignore[misc]


def test_replace_asdict_copy_pickle() -> None:
    a = Rec("x", 1, ["t"])
    assert dataclasses.replace(a, size=2) == Rec("x", 2, ["t"])
    assert dataclasses.asdict(Nested(a, (a,))) == {"inner": dataclasses.asdict(a), "items": (dataclasses.asdict(a),)}
    assert dataclasses.asdict(a) == dataclasses.asdict(Ref("x", 1, ["t"]))
    assert copy.deepcopy(a) == a and pickle.loads(pickle.dumps(a)) == a
    assert dataclasses.astuple(a) == dataclasses.astuple(Ref("x", 1, ["t"]))


def test_match_statement() -> None:
    match Rec("x", 5):
        case Rec(name, size):
            assert (name, size) == ("x", 5)
        case _:
            pytest.fail("positional pattern did not match")


def test_a_dataclass_base_falls_back_to_dataclasses() -> None:
    @frozen
    class Child(Ref):
        extra: int = 0

    c = Child("x", extra=1)
    assert c.extra == 1 and dataclasses.fields(c)[-1].name == "extra"
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.extra = 2  # type: ignore[misc]
