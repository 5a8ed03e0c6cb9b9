"""A metric's formula: a small arithmetic expression over the facts recorded for a period.

``resolved_first_contact / contacts * 100`` or ``min(handled, offered) / offered``. Only
numbers, fact names, ``+ - * /``, unary minus, parentheses and ``min``/``max`` are allowed: the
text is parsed with :mod:`ast` and walked by hand, never given to ``eval``, so a scorecard file
cannot run code. A division by zero or a fact missing in a period gives no value (``None`` with
the reason), never zero or infinity: "no contacts" is not "every contact resolved".
"""

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_OPERATORS: Mapping[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_FUNCTIONS: Mapping[str, Callable[..., float]] = {"min": min, "max": max}
#: Far beyond any formula a person writes; they keep parsing and evaluation from running deep.
MAX_LENGTH = 1000
MAX_DEPTH = 100


class FormulaError(ValueError):
    """A formula that is not valid: what is wrong, in the user's terms."""


class NoValue(Exception):
    """Why a formula has no value for a period (division by zero, a missing fact)."""


@dataclass(frozen=True, slots=True)
class Formula:
    text: str
    facts: frozenset[str]
    tree: ast.expr


@dataclass(frozen=True, slots=True)
class Outcome:
    """A formula's value for one period, or ``None`` and the reason."""

    value: float | None
    reason: str | None = None


def parse_formula(text: str) -> Formula:
    """Parse and check ``text`` once, so evaluating it later cannot fail on its syntax."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise FormulaError(f"not an expression: {exc.msg}") from None
    facts: set[str] = set()
    _check(tree, facts, depth=0)
    return Formula(text=text, facts=frozenset(facts), tree=tree)


def evaluate(formula: Formula, facts: Mapping[str, float]) -> Outcome:
    try:
        value = _value(formula.tree, facts)
    except NoValue as exc:
        return Outcome(None, str(exc))
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        return Outcome(None, "the result overflows")
    return Outcome(value)


def _check(node: ast.expr, facts: set[str], *, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FormulaError(f"nested more than {MAX_DEPTH} deep")
    depth += 1
    match node:
        case ast.Constant(value=bool()):
            raise FormulaError(f"{node.value!r} is not a number")
        case ast.Constant(value=int() | float()):
            return
        case ast.Name(id=name):
            if name in _FUNCTIONS:
                raise FormulaError(f"{name} is a function: {name}(a, b)")
            facts.add(name)
        case ast.BinOp(op=op, left=left, right=right) if type(op) in _OPERATORS:
            _check(left, facts, depth=depth)
            _check(right, facts, depth=depth)
        case ast.UnaryOp(op=ast.USub() | ast.UAdd(), operand=operand):
            _check(operand, facts, depth=depth)
        case ast.Call(func=ast.Name(id=name), args=args, keywords=[]) if name in _FUNCTIONS:
            if len(args) < 2 or any(isinstance(arg, ast.Starred) for arg in args):
                raise FormulaError(f"{name} takes two or more values")
            for arg in args:
                _check(arg, facts, depth=depth)
        case _:
            raise FormulaError(
                f"{ast.unparse(node)!r} is not allowed: only numbers, facts, + - * /, "
                "parentheses, min and max"
            )


def _value(node: ast.expr, facts: Mapping[str, float]) -> float:
    """The value of a tree :func:`_check` accepted."""
    match node:
        case ast.Constant(value=int() | float() as number):
            return float(number)
        case ast.Name(id=name):
            if name not in facts:
                raise NoValue(f"fact {name!r} is not recorded")
            return float(facts[name])
        case ast.BinOp(op=ast.Div(), left=left, right=right):
            divisor = _value(right, facts)
            if divisor == 0:
                raise NoValue(f"division by zero ({ast.unparse(right)} = 0)")
            return _value(left, facts) / divisor
        case ast.BinOp(op=op, left=left, right=right):
            return _OPERATORS[type(op)](_value(left, facts), _value(right, facts))
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -_value(operand, facts)
        case ast.UnaryOp(operand=operand):
            return _value(operand, facts)
        case ast.Call(func=ast.Name(id=name), args=args):
            return _FUNCTIONS[name](*(_value(arg, facts) for arg in args))
    raise AssertionError(f"unchecked formula node {ast.dump(node)}")
