"""Selector: the Cython push rule evaluator, or its pure twin.

Type checkers see the pure twin's signatures; at run time the loader picks the twin.
"""

from typing import TYPE_CHECKING

from hs._native._loader import load

if TYPE_CHECKING:
    from hs._native._push_py import (
        CompiledRules,
        EvaluationResult,
        FlatEvent,
        PushContext,
        compile_rules,
        evaluate,
        evaluate_result,
        flatten_event,
    )
else:
    _impl = load("push")
    CompiledRules = _impl.CompiledRules
    EvaluationResult = _impl.EvaluationResult
    FlatEvent = _impl.FlatEvent
    PushContext = _impl.PushContext
    compile_rules = _impl.compile_rules
    evaluate = _impl.evaluate
    evaluate_result = _impl.evaluate_result
    flatten_event = _impl.flatten_event

__all__ = [
    "CompiledRules",
    "EvaluationResult",
    "FlatEvent",
    "PushContext",
    "compile_rules",
    "evaluate",
    "evaluate_result",
    "flatten_event",
]
