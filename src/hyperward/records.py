"""`@frozen`: a frozen dataclass, built with one `exec` per class instead of one per method.

Python 3.11's dataclasses compile every generated method (__init__, __repr__, __eq__, __hash__,
__setattr__, __delattr__) from its own source string; for the 140 record classes a scan imports
that is a tenth of the scan's wall time, paid on every run before any fact is read. Here
dataclasses itself still processes the class (fields, defaults, ClassVar, inheritance,
__dataclass_fields__, __match_args__) with method generation switched off, and the six methods
are compiled together. The result is what `@dataclass(frozen=True)` gives: fields(), replace(),
asdict() and pickle work, instances compare by value, hash by their fields, and refuse
assignment (tests/test_records.py holds the two side by side). Python 3.13 generates the methods
in one exec itself; this module can go when hyperward's oldest Python does.
"""

from __future__ import annotations

import dataclasses
import operator
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_MISSING = object()


def _getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The fields' values as a tuple (attrgetter gives a bare value for one name)."""
    if not names:
        return lambda _obj: ()
    get = operator.attrgetter(*names)
    return (lambda obj: (get(obj),)) if len(names) == 1 else get


# The methods every record shares: only __init__ is compiled per class (it is the hot one).
@reprlib.recursive_repr()
def __repr__(self: Any) -> str:
    return f"{type(self).__qualname__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self._hw_repr) + ")"


def __eq__(self: Any, other: Any) -> bool:
    if other.__class__ is self.__class__:
        return bool(self._hw_compare(self) == self._hw_compare(other))  # other is of self's class
    return NotImplemented


def __hash__(self: Any) -> int:
    return hash(self._hw_hash(self))


def __setattr__(self: Any, name: str, value: object) -> None:
    if "_hw_fields" in type(self).__dict__ or name in self._hw_fields:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def __delattr__(self: Any, name: str) -> None:
    if "_hw_fields" in type(self).__dict__ or name in self._hw_fields:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)


_repr, _eq, _hash, _setattr, _delattr = __repr__, __eq__, __hash__, __setattr__, __delattr__


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(cls: type[T]) -> type[T]:
    if any(hasattr(base, "__dataclass_params__") for base in cls.__mro__[1:]):
        # a dataclass base: dataclasses' own rules for inherited fields and frozenness apply
        return dataclasses.dataclass(frozen=True)(cls)
    undocumented = not cls.__dict__.get("__doc__")
    if undocumented:
        cls.__doc__ = cls.__name__  # dataclasses would make one from inspect.signature, which tokenizes
    dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    namespace: dict[str, Any] = {
        "__hw_cls": cls,
        "__hw_set": object.__setattr__,
        "__hw_missing": _MISSING,
    }
    params, body = [], []
    for index, f in enumerate(fields):
        if not f.init:
            raise TypeError(f"{cls.__qualname__}.{f.name}: @frozen does not take init=False fields; use @dataclass")
        if f.default is not dataclasses.MISSING:
            namespace[f"__hw_d{index}"] = f.default
            params.append(f"{f.name}=__hw_d{index}")
            body.append(f"    __hw_set(self, {f.name!r}, {f.name})")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"__hw_f{index}"] = f.default_factory
            params.append(f"{f.name}=__hw_missing")
            body.append(f"    __hw_set(self, {f.name!r}, __hw_f{index}() if {f.name} is __hw_missing else {f.name})")
        else:
            params.append(f.name)
            body.append(f"    __hw_set(self, {f.name!r}, {f.name})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    names = frozenset(f.name for f in fields)
    if undocumented:
        cls.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields)})"
    source = "\n".join([f"def __init__(self, {', '.join(params)}):" if params else "def __init__(self):", *(body or ["    pass"])])
    exec(compile(source, f"<hyperward record {cls.__module__}.{cls.__qualname__}>", "exec"), namespace)  # noqa: S102
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    cls._hw_repr = tuple(f.name for f in fields if f.repr)  # type: ignore[attr-defined]
    cls._hw_compare = staticmethod(_getter([f.name for f in fields if f.compare]))  # type: ignore[attr-defined]
    cls._hw_hash = staticmethod(_getter([f.name for f in fields if (f.compare if f.hash is None else f.hash)]))  # type: ignore[attr-defined]
    cls._hw_fields = names  # type: ignore[attr-defined]
    for method in (_repr, _eq, _hash, _setattr, _delattr):
        setattr(cls, method.__name__, method)
    dc_params = cls.__dataclass_params__  # type: ignore[attr-defined]
    for name in ("init", "repr", "eq", "frozen"):
        setattr(dc_params, name, True)
    return cls
