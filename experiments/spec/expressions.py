"""Claim metrics as data: a small arithmetic language over a table's columns, parsed into an
allowlisted tree and evaluated on numpy arrays, never by `eval`.

What an expression may hold: column names; numbers; `+ - * / **`; unary minus and plus;
comparisons (`< <= > >= == !=`, chained as in Python); `&`, `|` and `~` on comparisons; and the
functions in `FUNCTIONS` (`abs`, `log`, `exp`, `sqrt`, `minimum`, `maximum`, ...). Anything else
(attributes, subscripts, strings, lambdas, keywords, calls of other names) is refused when the
expression is parsed, naming what is not allowed. Arithmetic follows numpy: NaN propagates, a
comparison with NaN is false, and booleans count as 1 and 0.
"""

import ast
import math
import operator

import numpy as np

FUNCTIONS = {
    "abs": (np.abs, 1), "log": (np.log, 1), "log10": (np.log10, 1), "exp": (np.exp, 1), "sqrt": (np.sqrt, 1),
    "minimum": (np.minimum, 2), "maximum": (np.maximum, 2),
}
BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.Pow: operator.pow, ast.BitAnd: np.logical_and, ast.BitOr: np.logical_or}
UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: np.logical_not}
COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
           ast.Eq: operator.eq, ast.NotEq: operator.ne}
ALLOWED = ("column names, numbers, + - * / **, unary -, comparisons, & | ~, and "
           + ", ".join(f"{name}()" for name in FUNCTIONS))
MAX_LENGTH = 1000


def parse(text):
    """The checked tree of an expression.

    Raises:
        ValueError: one line naming what is not allowed, or why the text is not an expression.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"metric {text!r} is not an expression over the runs table's columns, like 'test_accuracy'")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"metric is {len(text)} characters long; at most {MAX_LENGTH}")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"metric {text!r} is not an expression over the runs table's columns, "
                         "like 'test_accuracy'") from None
    for node in ast.walk(tree):
        _check_node(node, text)
    return tree


def _check_node(node, text):
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"metric {text!r}: the constant {value!r} is not allowed; numbers only")
    elif isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS or node.keywords:
            what = "a keyword argument" if name in FUNCTIONS else \
                f"the function {name!r}" if name else "calling anything but a function name"
            raise ValueError(f"metric {text!r}: {what} is not allowed; allowed: {ALLOWED}")
        if len(node.args) != FUNCTIONS[name][1]:
            raise ValueError(f"metric {text!r}: {name}() takes {FUNCTIONS[name][1]} argument(s), got {len(node.args)}")
    elif isinstance(node, ast.operator | ast.unaryop | ast.cmpop):
        if type(node) not in BINARY and type(node) not in UNARY and type(node) not in COMPARE:
            raise ValueError(f"metric {text!r}: the operator {type(node).__name__} is not allowed; allowed: {ALLOWED}")
    elif not isinstance(node, ast.BinOp | ast.UnaryOp | ast.Compare | ast.Name | ast.Load):
        raise ValueError(f"metric {text!r}: {type(node).__name__} syntax is not allowed; allowed: {ALLOWED}")


def columns(tree):
    """The column names an expression reads (function names are not columns)."""
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called})


def evaluate(tree, table):
    """The expression on a DataFrame's columns: a float array with one value per row."""
    with np.errstate(all="ignore"):  # log(0), x / 0: -inf, inf or NaN, as a claim's `fill` expects
        value = _value(tree, table)
    return np.broadcast_to(np.asarray(value, dtype="float64"), (len(table),)).copy()


def _value(node, table):
    if isinstance(node, ast.Constant):
        return np.float64(node.value)  # numpy arithmetic: overflow is inf, not an exception
    if isinstance(node, ast.Name):
        return table[node.id].to_numpy(dtype="float64")
    if isinstance(node, ast.UnaryOp):
        return UNARY[type(node.op)](_value(node.operand, table))
    if isinstance(node, ast.BinOp):
        return BINARY[type(node.op)](_value(node.left, table), _value(node.right, table))
    if isinstance(node, ast.Compare):
        left, result = _value(node.left, table), True
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _value(right_node, table)
            result = np.logical_and(result, COMPARE[type(op)](left, right))
            left = right
        return result
    function = FUNCTIONS[node.func.id][0]
    return function(*[_value(arg, table) for arg in node.args])
