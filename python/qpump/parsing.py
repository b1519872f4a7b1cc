"""Numbers and sizes as people type them on the command line and in sweep specs.

``parse_number`` takes a number or a small arithmetic expression in ``pi`` (``-pi/2``, ``3*pi/4``,
``inf``), evaluated on the syntax tree (no ``eval``); ``parse_memory`` a size such as ``8G``. Both
raise ``argparse.ArgumentTypeError`` so that they serve directly as argparse ``type=`` functions.
"""

from __future__ import annotations

import argparse
import ast
import math
import operator
import re
from collections.abc import Callable

__all__ = ["parse_number", "parse_memory"]

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_NAMES = {"pi": math.pi, "inf": math.inf}


def parse_number(text: str) -> float:
    """Parse a number or a small arithmetic expression in ``pi`` (e.g. ``-pi/2``, ``3*pi/4``, ``inf``)."""

    def evaluate(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return evaluate(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in _NAMES:
            return _NAMES[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](evaluate(node.left), evaluate(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](evaluate(node.operand))
        raise ValueError(text)

    try:
        return float(evaluate(ast.parse(text.strip().lower(), mode="eval")))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, TypeError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number or pi expression (e.g. 2, 0.1, -pi/2, inf)"
        ) from None


_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
          "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4,
          "tb": 1024**4, "tib": 1024**4}


def parse_memory(text: str) -> int:
    """Parse a memory size such as ``8G``, ``512M``, ``1.5GiB`` or ``1000000`` (bytes; the units
    are powers of 1024) into a positive number of bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    if not match or match.group(2) not in _UNITS or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a memory size (e.g. 8G, 512M, 1.5GiB, 1000000 bytes)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])
