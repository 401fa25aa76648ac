"""What a LocalHERO exposes: the capability scan, and capability <-> dict <-> ``inspect.Signature``.

The scan follows upstream HEROS (``../shared/SPEC.md`` 3.2): public methods, class attributes
(annotated-only ones too) and ``@event`` methods of the *class*; ``_``-prefixed names, LocalHERO's
own members and ``local_only`` methods are hidden unless marked ``force_remote``. Where upstream
misbehaves we do better: property getters are not run twice nor allowed to abort construction,
string annotations are evaluated, and ``Annotated`` metadata (units, limits, choices, docs) is
carried as extra dict keys that upstream peers ignore.
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import enum
import inspect
import logging
import numbers
import sys
import typing
from collections import ChainMap
from collections.abc import Callable
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, ClassVar

import numpy as np

from .codec import CodecError, EncodeContext, pack
from .inspect import is_force_remote, is_hero_event, is_local_only
from .meta import Choices, Range, metadata_fields

__all__ = [
    "AttributeCapability",
    "Capability",
    "EventCapability",
    "MethodCapability",
    "Parameter",
    "UNDEFINED",
    "arguments_check",
    "metadata_from_type_text",
    "scan",
    "type_to_str",
    "value_check",
]

log = logging.getLogger("heros.capabilities")

#: What upstream sends for a missing type or default.
UNDEFINED = "undefined"

_EXTRA_KEYS = ("doc", "unit", "min", "max", "step", "choices")


def type_to_str(annotation: Any) -> str:
    """The type text upstream HEROS sends for an annotation."""
    if annotation is inspect.Parameter.empty or annotation is inspect.Signature.empty:
        return UNDEFINED
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, UnionType):
        return repr(annotation)
    if annotation is None or annotation is type(None):
        return "None"
    name = getattr(annotation, "__name__", None) or getattr(annotation, "_name", None)
    return name if isinstance(name, str) else repr(annotation)


@dataclass
class _Described:
    type: str
    extra: dict[str, Any]
    enum_cls: builtins.type[enum.Enum] | None = None


def describe(annotation: Any) -> _Described:
    """Type text and extra fields (units, bounds, choices) of one (evaluated) annotation."""
    extra: dict[str, Any] = {}
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        extra.update(metadata_fields(meta))
        annotation = base
    enum_cls = None
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        enum_cls = annotation
        extra.setdefault("choices", [m.value for m in annotation])
    elif typing.get_origin(annotation) is typing.Literal:
        extra.setdefault("choices", list(typing.get_args(annotation)))
    return _Described(type_to_str(annotation), extra, enum_cls)


def metadata_from_type_text(text: str) -> tuple[str, dict[str, Any]]:
    """The type text and extra fields hidden in a type *text* such as upstream HEROS sends for a
    string annotation (``from __future__ import annotations``): ``"Literal['a', 'b']"`` gives
    choices, ``"Annotated[float, Range(0, 50), Unit('mW')]"`` limits and a unit (also
    annotated-types' ``Interval(ge=0, le=50)``, ``Ge``/``Le``/``Gt``/``Lt`` and dicts).

    The text is parsed, never evaluated; anything not understood is left as it is.
    """
    if "[" not in text:
        return text, {}
    try:
        node = ast.parse(text, mode="eval").body
        if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation, quoted again
            text = node.value
            node = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return text, {}
    return _text_metadata(node, text)


def _dotted_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _text_metadata(node: ast.AST, text: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(node, ast.Subscript):
        return text, {}
    kind = _dotted_name(node.value)
    items = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
    try:
        if kind == "Literal":
            return "Literal", {"choices": [ast.literal_eval(e) for e in items]}
        if kind == "Annotated" and items:
            base_text, extra = _text_metadata(items[0], ast.unparse(items[0]))
            for item in items[1:]:
                extra.update(_metadata_item(item))
            return base_text, extra
    except (ValueError, TypeError, SyntaxError, RecursionError):
        pass
    return text, {}


def _metadata_item(node: ast.AST) -> dict[str, Any]:
    if isinstance(node, ast.Dict):
        value = ast.literal_eval(node)
        return metadata_fields([value]) if isinstance(value, dict) else {}
    if not isinstance(node, ast.Call):
        return {}
    name = _dotted_name(node.func)
    args = [ast.literal_eval(a) for a in node.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    if name == "Range":
        return metadata_fields([Range(*args, **kwargs)])
    if name in ("Interval", "Ge", "Gt", "Le", "Lt"):
        if name != "Interval" and args:
            kwargs[name.lower()] = args[0]
        bounds = {"min": kwargs.get("ge", kwargs.get("gt")), "max": kwargs.get("le", kwargs.get("lt"))}
        return {k: v for k, v in bounds.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if name == "Unit" and args:
        return {"unit": str(args[0])}
    if name == "Doc" and args:
        return {"doc": str(args[0])}
    if name == "PublishedBy" and args:
        return {"event": str(args[0])}
    if name == "Choices":
        return metadata_fields([Choices(*args)])
    return {}


def _with_text_metadata(type_text: str, extra: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Fill in what a type text says (see ``metadata_from_type_text``) where explicit fields do not."""
    base, found = metadata_from_type_text(type_text)
    if not found:
        return type_text, extra
    return base, {**found, **extra}


def _plain(value: Any) -> bool:
    """Whether ``value`` can travel as data (not as an object reference)."""
    try:
        pack(value, EncodeContext())
    except (CodecError, RecursionError):
        return False
    return True


@dataclass
class Parameter:
    """One parameter of a method capability."""

    name: str
    type: str = UNDEFINED
    default: Any = UNDEFINED
    kind: inspect._ParameterKind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    has_default: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_signature_parameter(p: inspect.Parameter, annotation: Any = inspect.Parameter.empty) -> Parameter:
        described = describe(p.annotation if annotation is inspect.Parameter.empty else annotation)
        extra = dict(described.extra)
        default: Any = UNDEFINED
        if p.default is not inspect.Parameter.empty:
            default = p.default.value if isinstance(p.default, enum.Enum) else p.default
            if not _plain(default):
                extra["default_repr"] = True
                default = repr(p.default)
        return Parameter(p.name, described.type, default, p.kind, p.default is not inspect.Parameter.empty, extra)

    def has_default_value(self) -> bool:
        return self.has_default if self.has_default is not None else not (isinstance(self.default, str) and self.default == UNDEFINED)

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "type": self.type, "default": self.default, "kind": int(self.kind), "has_default": self.has_default_value()}
        d.update(self.extra)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any], proto_version: float = 1.0) -> Parameter:
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            raise ValueError(f"malformed parameter description {d!r:.80}")
        if proto_version > 0.1:
            kind = inspect._ParameterKind(int(d.get("kind", 1)))
        else:
            kind = inspect.Parameter.KEYWORD_ONLY if "default" in d else inspect.Parameter.VAR_POSITIONAL
        extra = {k: v for k, v in d.items() if k not in ("name", "type", "default", "kind", "has_default")}
        has_default = d.get("has_default")
        type_text, extra = _with_text_metadata(str(d.get("type", UNDEFINED)), extra)
        return Parameter(d["name"], type_text, d.get("default", UNDEFINED), kind, has_default if isinstance(has_default, bool) else None, extra)


class _ReprDefault:
    """Stands in on a proxy's signature for a default value that cannot travel."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


@dataclass
class Capability:
    """Base of the three capability flavours."""

    name: str
    flavor: ClassVar[str] = UNDEFINED
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "flavor": self.flavor}
        d.update(self.extra)
        return d

    @property
    def doc(self) -> str | None:
        return self.extra.get("doc")

    @staticmethod
    def from_dict(d: dict[str, Any], proto_version: float = 1.0) -> Capability | None:
        """Rebuild a capability; None for an unknown flavour."""
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or "flavor" not in d:
            raise ValueError(f"malformed capability description {d!r:.80}")
        cls = _FLAVORS.get(d["flavor"])
        return None if cls is None else cls.from_dict(d, proto_version)


@dataclass
class AttributeCapability(Capability):
    """An attribute: ``type`` is the type text, ``access`` "rw" or "r"."""

    flavor: ClassVar[str] = "attribute"
    type: str = UNDEFINED
    access: str = "rw"
    enum_cls: builtins.type[enum.Enum] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = Capability.to_dict(self)
        d.update({"type": self.type, "access": self.access})
        return d

    @staticmethod
    def from_dict(d: dict[str, Any], proto_version: float = 1.0) -> AttributeCapability:
        extra = {k: v for k, v in d.items() if k not in ("name", "flavor", "type", "access")}
        type_text, extra = _with_text_metadata(str(d.get("type", UNDEFINED)), extra)
        return AttributeCapability(d["name"], type=type_text, access=str(d.get("access", "rw")), extra=extra)

    @property
    def writable(self) -> bool:
        return "w" in self.access


@dataclass
class EventCapability(Capability):
    """An event: a method whose return value is published on each call."""

    flavor: ClassVar[str] = "event"

    @staticmethod
    def from_dict(d: dict[str, Any], proto_version: float = 1.0) -> EventCapability:
        return EventCapability(d["name"], extra={k: v for k, v in d.items() if k not in ("name", "flavor")})


@dataclass
class MethodCapability(Capability):
    """A method with its parameters and return type text; ``extra["return_unit"]`` is the unit of its
    result when the return annotation declares one (``-> Annotated[float, Unit("mm")]``)."""

    flavor: ClassVar[str] = "method"
    parameters: list[Parameter] = field(default_factory=list)
    return_type: str = "None"

    @staticmethod
    def from_method(m: Callable[..., Any], name: str | None = None) -> MethodCapability:
        sig = inspect.signature(m)
        hints = _hints(m)
        params = [Parameter.from_signature_parameter(p, hints.get(p.name, inspect.Parameter.empty)) for p in sig.parameters.values()]
        cap = MethodCapability(name or m.__name__, parameters=params)
        ret = hints.get("return", sig.return_annotation)
        if ret not in (inspect.Signature.empty, None, type(None)):
            described = describe(ret)
            cap.return_type = described.type
            # ``-> Annotated[float, Unit("mm")]``: the result's unit, an extra key upstream peers ignore
            if described.extra.get("unit"):
                cap.extra["return_unit"] = str(described.extra["unit"])
        doc = inspect.getdoc(m)
        if doc:
            cap.extra["doc"] = doc
        if inspect.iscoroutinefunction(m):
            cap.extra["async"] = True
        return cap

    def to_signature(self) -> inspect.Signature:
        params = []
        for p in self.parameters:
            default: Any = inspect.Parameter.empty
            if p.has_default_value():
                default = _ReprDefault(p.default) if p.extra.get("default_repr") else p.default
            annotation = p.type if p.type != UNDEFINED else inspect.Parameter.empty
            params.append(inspect.Parameter(p.name, p.kind, default=default, annotation=annotation))
        return inspect.Signature(params, return_annotation=self.return_type)

    def to_dict(self) -> dict[str, Any]:
        d = Capability.to_dict(self)
        d.update({"parameters": [p.to_dict() for p in self.parameters], "return_type": self.return_type})
        return d

    @staticmethod
    def from_dict(d: dict[str, Any], proto_version: float = 1.0) -> MethodCapability:
        params = d.get("parameters")
        if not isinstance(params, list):
            raise ValueError(f"method capability {d.get('name')!r} has no parameter list")
        extra = {k: v for k, v in d.items() if k not in ("name", "flavor", "parameters", "return_type")}
        return MethodCapability(
            d["name"],
            parameters=[Parameter.from_dict(p, proto_version) for p in params],
            return_type=str(d.get("return_type", "None")),
            extra=extra,
        )

    def call_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Protocol 0.1 call payload: arguments by parameter name (unknown keywords dropped)."""
        names = [p.name for p in self.parameters]
        d = dict(zip(names, args, strict=False))
        d.update({k: v for k, v in kwargs.items() if k in names})
        return d


_FLAVORS: dict[str, Any] = {"attribute": AttributeCapability, "method": MethodCapability, "event": EventCapability}


# --- checking what a remote peer sends against the declared type, range and choices ------------------


def _is_integer(v: Any) -> bool:
    if type(v) is int:  # the common case first: the check runs for every argument of every call
        return True
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v: Any) -> bool:
    if type(v) is float or type(v) is int:
        return True
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


#: Type texts whose values can be checked, and the check (anything else is not checked).
_TYPE_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "int": ("an int", _is_integer),
    "float": ("a number", _is_real),
    "complex": ("a number", lambda v: isinstance(v, numbers.Number) and not isinstance(v, (bool, np.bool_))),
    "bool": ("a bool", lambda v: isinstance(v, (bool, np.bool_))),
    "str": ("a str", lambda v: isinstance(v, str)),
    "bytes": ("bytes", lambda v: isinstance(v, (bytes, bytearray))),
    "list": ("a list", lambda v: isinstance(v, (list, tuple))),  # upstream peers send tuples as lists and back
    "tuple": ("a tuple", lambda v: isinstance(v, (list, tuple))),
    "dict": ("a dict", lambda v: isinstance(v, dict)),
    "set": ("a set", lambda v: isinstance(v, (set, frozenset, list))),
    "None": ("None", lambda v: v is None),
    "NoneType": ("None", lambda v: v is None),
}

#: For each checked type text, the exact types its check always passes: what a peer sends almost
#: every time (decoded msgpack), taken with one set lookup instead of the check's calls.
_PASSING: dict[str, frozenset[type]] = {
    "int": frozenset({int}),
    "float": frozenset({float, int}),
    "complex": frozenset({complex, float, int}),
    "bool": frozenset({bool}),
    "str": frozenset({str}),
    "bytes": frozenset({bytes, bytearray}),
    "list": frozenset({list, tuple}),
    "tuple": frozenset({list, tuple}),
    "dict": frozenset({dict}),
    "set": frozenset({set, frozenset, list}),
    "None": frozenset({type(None)}),
    "NoneType": frozenset({type(None)}),
}


#: ``_type_check`` of each single type text, made once (every check of every HERO shares them).
_SINGLE = {t: (name, test, _PASSING[t]) for t, (name, test) in _TYPE_CHECKS.items()}
#: One object for each set of passing types (every check of every HERO shares them).
_SHARED: dict[frozenset[type], frozenset[type]] = {}
_NONE_PASS: frozenset[type] = frozenset()


def _shared(types: frozenset[type]) -> frozenset[type]:
    return _SHARED.setdefault(types, types)


def _type_check(type_text: str) -> tuple[str, Callable[[Any], bool], frozenset[type]] | None:
    """The check of a type text (``"float"``, ``"int | None"``, ``"Optional[str]"``): (what it
    wants, the test, the exact types that pass it), or None when it cannot be checked."""
    text = type_text.strip()
    if text.startswith("Optional[") and text.endswith("]"):
        text = f"{text[9:-1]} | None"
    parts = [t.strip() for t in text.split("|")]
    checks = [_TYPE_CHECKS.get(t) for t in parts]
    if not checks or any(c is None for c in checks):
        return None
    if len(checks) == 1:
        return _SINGLE[parts[0]]
    passing = _shared(frozenset().union(*(_PASSING[t] for t in parts)))
    names = " or ".join(c[0] for c in checks)  # type: ignore[index]
    tests = [c[1] for c in checks]  # type: ignore[index]
    return names, lambda v: any(t(v) for t in tests), passing


def value_check(type_text: str, extra: dict[str, Any], what: str, *, allow_none: bool = False) -> Callable[[Any], None] | None:
    """A function that raises ``TypeError``/``ValueError`` naming the limit for a value outside the
    declared type, range or choices of ``what`` (``"attribute 'power' of HERO 'laser'"``); None
    when nothing about it can be checked. ``allow_none`` lets None through (a default of None)."""
    return _value_check(type_text, extra, what, allow_none)[0]


def _value_check(type_text: str, extra: dict[str, Any], what: str, allow_none: bool) -> tuple[Callable[[Any], None] | None, frozenset[type]]:
    """``value_check``, and the exact types of value it always lets through without a call (for
    a type only: a range or choices are checked on every value)."""
    typed = _type_check(type_text)
    low, high = extra.get("min"), extra.get("max")
    ranged = isinstance(low, (int, float)) or isinstance(high, (int, float))
    choices = extra.get("choices") if isinstance(extra.get("choices"), list) else None
    if typed is None and not ranged and choices is None:
        return None, _NONE_PASS
    unit = f" {extra['unit']}" if extra.get("unit") else ""
    passing = _shared(typed[2] | {type(None)} if allow_none else typed[2]) if typed is not None and not ranged and choices is None else _NONE_PASS

    def check(value: Any) -> None:
        if type(value) in passing:  # (the value of almost every call or write)
            return
        if value is None and allow_none:
            return
        if choices is not None:
            if not any(_same_choice(value, c) for c in choices):
                raise ValueError(f"{what} must be one of {', '.join(map(repr, choices))}{unit}, not {value!r:.60}")
            return
        if typed is not None and not typed[1](value):
            raise TypeError(f"{what} must be {typed[0]}, not {type(value).__name__} ({value!r:.60})")
        if ranged and _is_real(value):
            v = float(value)
            if v != v or (isinstance(low, (int, float)) and v < low) or (isinstance(high, (int, float)) and v > high):
                span = f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
                raise ValueError(f"{what} must be within {span}{unit}, not {value!r}")

    return check, passing


def _same_choice(value: Any, choice: Any) -> bool:
    """Whether ``value`` is the choice ``choice`` (``True`` is not the choice ``1``)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool) != isinstance(choice, bool):
        return False
    try:
        return bool(value == choice)
    except Exception:  # noqa: BLE001 - arrays and other odd equality
        return False


def arguments_check(cap: MethodCapability, what: str) -> Callable[[list[Any], dict[str, Any]], None] | None:
    """A function that checks a call's arguments against the declared parameters of ``cap`` (see
    ``value_check``), or None when no parameter can be checked. Arguments it cannot place are left
    to the method's own signature to refuse."""
    positional: list[Callable[[Any], None] | None] = []
    passing: list[frozenset[type]] = []  # per positional parameter (``_value_check``)
    named: dict[str, Callable[[Any], None] | None] = {}
    star: Callable[[Any], None] | None = None
    double_star: Callable[[Any], None] | None = None
    for p in cap.parameters:
        check, passes = _value_check(p.type, p.extra, f"argument {p.name!r} of {what}", p.has_default_value() and p.default is None)
        if p.kind == inspect.Parameter.VAR_POSITIONAL:
            star = check
        elif p.kind == inspect.Parameter.VAR_KEYWORD:
            double_star = check
        else:
            if p.kind != inspect.Parameter.KEYWORD_ONLY:
                positional.append(check)
                passing.append(passes)
            if p.kind != inspect.Parameter.POSITIONAL_ONLY:
                named[p.name] = check
    if not any(positional) and not any(named.values()) and star is None and double_star is None:
        return None
    n = len(positional)

    def check_arguments(args: list[Any], kwargs: dict[str, Any]) -> None:
        for i, value in enumerate(args):
            if i < n:
                if type(value) in passing[i]:  # (no call for the arguments of almost every call)
                    continue
                check = positional[i]
            else:
                check = star
            if check is not None:
                check(value)
        for key, value in kwargs.items():
            check = named.get(key, double_star) if key in named else double_star
            if check is not None:
                check(value)

    return check_arguments


def _hints(obj: Any) -> dict[str, Any]:
    """Evaluated annotations with ``Annotated`` extras; raw ones where evaluation fails."""
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception:  # noqa: BLE001 - forward references that cannot be resolved stay strings
        return dict(getattr(obj, "__annotations__", {}) or {})


def _class_hints(cls: type) -> dict[str, Any]:
    """Annotations of every class in the MRO (earlier classes win), evaluated where possible."""
    raw = dict(ChainMap(*(inspect.get_annotations(c) for c in cls.__mro__)))
    out = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        globalns = dict(vars(module)) if module else {}
        for name, ann in inspect.get_annotations(klass).items():
            for _ in range(2):  # a quoted annotation under `from __future__ import annotations` is text twice
                if not isinstance(ann, str):
                    break
                try:
                    ann = eval(ann, globalns, dict(vars(klass)))  # what typing.get_type_hints does
                except Exception:  # noqa: BLE001 - an unresolvable forward reference stays text
                    break
            out[name] = ann
    return {name: out.get(name, ann) for name, ann in raw.items()}


def _marker_targets(static: Any) -> list[Any]:
    if isinstance(static, (staticmethod, classmethod)):
        return [static, static.__func__]
    if isinstance(static, property):
        return [static, static.fget]
    return [static]


def scan(hero: Any, hidden: set[str] | frozenset[str]) -> list[Capability]:
    """The capabilities of ``hero``: members of its class, minus ``hidden`` names, by SPEC 3.2.

    Parameters
    ----------
    hero
        The LocalHERO instance (its class is scanned; the instance resolves events and methods).
    hidden
        Names that belong to LocalHERO itself and are never exposed unless ``force_remote``.
    """
    cls = type(hero)
    hints = _class_hints(cls)
    names = dict.fromkeys(dir(cls))
    names.update(dict.fromkeys(hints))
    caps: list[Capability] = []
    for name in names:
        static = inspect.getattr_static(cls, name, _MISSING)
        targets = _marker_targets(static) if static is not _MISSING else []
        forced = any(is_force_remote(t) for t in targets)
        if not forced and (name.startswith("_") or name in hidden or any(is_local_only(t) for t in targets)):
            continue
        try:
            cap = _build(hero, cls, name, static, hints.get(name, _MISSING))
        except Exception as exc:  # noqa: BLE001 - one odd member must not stop the HERO
            log.warning("HERO %s: member %r is not exposed: %s", getattr(hero, "_name", "?"), name, exc)
            continue
        if cap is not None:
            caps.append(cap)
    return caps


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _build(hero: Any, cls: type, name: str, static: Any, annotation: Any) -> Capability | None:
    if annotation is not _MISSING and typing.get_origin(annotation) is not collections.abc.Callable:
        if typing.get_origin(annotation) is typing.ClassVar and typing.get_args(annotation):
            annotation = typing.get_args(annotation)[0]
        d = describe(annotation)
        access = "r" if isinstance(static, property) and static.fset is None else "rw"
        return AttributeCapability(name, type=d.type, access=access, enum_cls=d.enum_cls, extra=_with_doc(d.extra, static))
    if isinstance(static, property):
        ret = _hints(static.fget).get("return", _MISSING) if static.fget else _MISSING
        if ret is _MISSING:
            try:  # unannotated property: its value's type, read once, and a failing getter only loses the type
                d = describe(type(static.__get__(hero, cls)))
            except Exception:  # noqa: BLE001
                d = _Described(UNDEFINED, {})
        else:
            d = describe(ret)
        access = "r" if static.fset is None else "rw"
        return AttributeCapability(name, type=d.type, access=access, enum_cls=d.enum_cls, extra=_with_doc(d.extra, static))
    value = getattr(hero, name)
    if callable(value):
        if is_hero_event(value):
            extra: dict[str, Any] = {"doc": inspect.getdoc(value)} if inspect.getdoc(value) else {}
            if getattr(value, "reliable", False):
                extra["reliable"] = True
            return EventCapability(name, extra=extra)
        try:
            return MethodCapability.from_method(value, name)
        except (ValueError, TypeError):
            log.warning("HERO member %r is not exposed: its signature cannot be inspected", name)
            return None
    d = describe(type(value))
    return AttributeCapability(name, type=d.type, access="rw", enum_cls=d.enum_cls, extra=d.extra)


def _with_doc(extra: dict[str, Any], static: Any) -> dict[str, Any]:
    if "doc" not in extra and isinstance(static, property) and static.__doc__:
        extra = {**extra, "doc": inspect.cleandoc(static.__doc__)}
    return extra


def capability_map(caps: list[Capability]) -> dict[str, Capability]:
    """Capabilities by name."""
    return {c.name: c for c in caps}

