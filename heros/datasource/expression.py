"""Conversion expressions of datasource observables, such as ``"20 * log10(x / 1e-3)"``: parsed, never evaluated.

Upstream HEROS ``eval``s a configuration string as ``lambda x: <expr>``, so a configuration document
can run any code in the datasource's process. Here the text is parsed with ``ast`` and checked
against a short grammar: numbers, the name ``x`` (the raw value), the constants ``pi`` and ``e``,
``+ - * / // % **``, unary ``-``/``+``, comparisons, and calls of the math functions of
``FUNCTIONS`` (upstream's numpy set, plus ``arctanh``, ``abs``, ``min`` and ``max``). Anything
else is refused with a ``ValueError`` naming the expression and the offending part, when the
expression is compiled, which a datasource does once per observable when it is constructed.
The accepted tree becomes a tree of Python closures; no ``eval``, ``exec`` or ``compile`` runs.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any

import numpy as np

__all__ = ["CONSTANTS", "FUNCTIONS", "Expression", "compile_expression"]

#: Longest expression text accepted (a calibration formula is a line, not a program).
MAX_LENGTH = 1000
#: Deepest nesting of operations accepted (each level is a Python call when evaluated).
MAX_DEPTH = 40
#: An integer power whose result would exceed this many bits is computed in floating point instead
#: (``9 ** 9 ** 9`` in integers would take the process's memory and minutes of CPU).
MAX_INT_POWER_BITS = 4096


def _minimum(*args: Any) -> Any:
    return np.min(args[0]) if len(args) == 1 else reduce(np.minimum, args)


def _maximum(*args: Any) -> Any:
    return np.max(args[0]) if len(args) == 1 else reduce(np.maximum, args)


#: Functions an expression may call: name -> (function, fewest arguments, most arguments or None).
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    **{name: (getattr(np, name), 1, 1) for name in (
        "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh",
        "exp", "exp2", "log", "log10", "log2", "log1p", "i0", "sinc", "sqrt",
    )},
    **{name: (getattr(np, name), 2, 2) for name in ("hypot", "arctan2", "logaddexp", "logaddexp2", "power")},
    "abs": (np.abs, 1, 1),
    "min": (_minimum, 1, None),
    "max": (_maximum, 1, None),
}

#: Names an expression may use besides ``x``.
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def _power(base: Any, exponent: Any) -> Any:
    if type(base) is int and type(exponent) is int and exponent > 0 and base.bit_length() * exponent > MAX_INT_POWER_BITS:
        return float(base) ** exponent
    return base**exponent


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}

_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}

#: How refusals name what they found.
_WHAT: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "a subscript",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.IfExp: "a conditional expression",
    ast.NamedExpr: "an assignment expression",
    ast.Starred: "a starred argument",
    ast.JoinedStr: "an f-string",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "a slice",
    ast.keyword: "the keyword argument",
}

#: How refusals spell operators outside the grammar.
_SYMBOLS: dict[type[ast.AST], str] = {
    ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
    ast.Invert: "~", ast.Not: "not", ast.And: "and", ast.Or: "or", ast.Is: "is", ast.IsNot: "is not", ast.In: "in",
    ast.NotIn: "not in",
}

_GRAMMAR = (
    "a conversion may use numbers, x, pi, e, + - * / // % **, comparisons and the functions "
    + ", ".join(sorted(FUNCTIONS))
)


class Expression:
    """A compiled conversion: call it with the raw value ``x``.

    Attributes
    ----------
    text
        The expression as written.
    """

    __slots__ = ("_func", "text")

    def __init__(self, text: str, func: Callable[[Any], Any]) -> None:
        self.text = text
        self._func = func

    def __call__(self, x: Any) -> Any:
        result = self._func(x)
        if (isinstance(result, np.ndarray) and result.ndim == 0) or isinstance(result, np.generic):
            return result.item()  # numpy scalars (and 0-d results of i0) travel and print as Python numbers
        return result

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def compile_expression(text: str, what: str = "conversion", *, functions: Mapping[str, Callable[..., Any]] | None = None,
                       constants: Mapping[str, float] | None = None) -> Expression:
    """Check ``text`` against the grammar of conversions and compile it.

    Parameters
    ----------
    text
        An expression of ``x``, such as ``"2 * x + 1"`` or ``"sqrt(x) * 1e3"``.
    what
        Names the expression in error messages (e.g. ``"conversion of observable 'T1'"``).
    functions, constants
        More names the expression may use, given by Python code (never by configuration):
        functions (called with any number of positional arguments) and numbers.

    Returns
    -------
    Expression
        A callable of one argument.

    Raises
    ------
    ValueError
        If ``text`` is not an expression or uses anything but the grammar allows; the message
        names the expression and the offending part.
    """
    if not isinstance(text, str):
        raise ValueError(f"{what} must be an expression text such as '2 * x + 1', not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"{what} {text[:40]!r}... is {len(text)} characters long, more than the {MAX_LENGTH} allowed")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"{what} {text!r} is not a valid expression: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ValueError(f"{what} {text!r} is not a valid expression") from None
    known = {name: (func, 0, None) for name, func in (functions or {}).items()}
    return Expression(text, _Compiler(text.strip(), what, {**FUNCTIONS, **known}, {**CONSTANTS, **(constants or {})})
                      .compile(tree.body, 0))


class _Compiler:
    """Turns a checked syntax tree into closures; refuses what the grammar does not allow."""

    def __init__(self, text: str, what: str, functions: Mapping[str, tuple[Callable[..., Any], int, int | None]],
                 constants: Mapping[str, float]) -> None:
        self.text = text
        self.what = what
        self.functions = functions
        self.constants = constants

    def refuse(self, node: ast.AST, description: str | None = None) -> ValueError:
        part = ast.get_source_segment(self.text, node) or type(node).__name__
        kind = description or _WHAT.get(type(node), f"{type(node).__name__} syntax")
        return ValueError(f"{self.what} {self.text!r}: {kind} {part!r} is not allowed; {_GRAMMAR}")

    def compile(self, node: ast.AST, depth: int) -> Callable[[Any], Any]:
        if depth > MAX_DEPTH:
            raise ValueError(f"{self.what} {self.text!r} nests operations more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            value = node.value
            if type(value) not in (int, float):
                raise self.refuse(node, "the constant")
            return lambda x: value
        if isinstance(node, ast.Name):
            if node.id == "x":
                return lambda x: x
            if node.id in self.constants:
                constant = self.constants[node.id]
                return lambda x: constant
            raise self.refuse(node, "the name")
        if isinstance(node, ast.BinOp):
            binary = _BINARY.get(type(node.op))
            if binary is None:
                raise self.refuse(node, self.operator(node.op))
            left, right = self.compile(node.left, depth + 1), self.compile(node.right, depth + 1)
            return lambda x: binary(left(x), right(x))
        if isinstance(node, ast.UnaryOp):
            unary = _UNARY.get(type(node.op))
            if unary is None:
                raise self.refuse(node, self.operator(node.op))
            operand = self.compile(node.operand, depth + 1)
            return lambda x: unary(operand(x))
        if isinstance(node, ast.Compare):
            return self._compare(node, depth)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.BoolOp):
            raise self.refuse(node, self.operator(node.op))
        raise self.refuse(node)

    @staticmethod
    def operator(op: ast.AST) -> str:
        return f"the operator {_SYMBOLS.get(type(op), type(op).__name__)!r} in"

    def _compare(self, node: ast.Compare, depth: int) -> Callable[[Any], Any]:
        ops = []
        for op in node.ops:
            compare = _COMPARE.get(type(op))
            if compare is None:  # is, is not, in, not in
                raise self.refuse(node, self.operator(op))
            ops.append(compare)
        terms = [self.compile(node.left, depth + 1), *(self.compile(c, depth + 1) for c in node.comparators)]

        def chain(x: Any) -> Any:
            values = [term(x) for term in terms]
            result: Any = True
            for compare, a, b in zip(ops, values, values[1:], strict=False):
                result = result & compare(a, b)  # elementwise for arrays, as numpy compares
            return result

        return chain

    def _call(self, node: ast.Call, depth: int) -> Callable[[Any], Any]:
        if not isinstance(node.func, ast.Name):
            raise self.refuse(node.func, "calling")
        name = node.func.id
        entry = self.functions.get(name)
        if entry is None:
            raise self.refuse(node.func, "a call of")
        if node.keywords:
            raise self.refuse(node.keywords[0])
        func, fewest, most = entry
        count = len(node.args)
        if count < fewest or (most is not None and count > most):
            wanted = f"{fewest}" if fewest == most else f"at least {fewest}" if most is None else f"{fewest} to {most}"
            plural = "" if wanted.split()[-1] == "1" else "s"
            raise ValueError(f"{self.what} {self.text!r}: {name}() takes {wanted} argument{plural}, "
                             f"{ast.get_source_segment(self.text, node)!r} gives {count}")
        args = [self.compile(a, depth + 1) for a in node.args]
        if len(args) == 1:
            (only,) = args
            return lambda x: func(only(x))
        return lambda x: func(*(arg(x) for arg in args))
