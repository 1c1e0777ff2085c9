"""Push rule evaluation per (event, recipient) with the default rules, native vs pure.

Two cases over the corpus's plain ``m.room.message`` events:

* plain - the recipient is not named, so evaluation walks every override rule (three
  word-bounded body searches included) down to ``.m.rule.message``;
* display-name - the recipient's display name appears in the body, so the legacy
  ``.m.rule.contains_display_name`` rule fires.

The event is flattened once (outside the timed loop, as it is shared by every recipient);
each round evaluates all events once. When ``synapse.synapse_rust.push`` is importable
(a separate venv, see the report) the same work is timed with Synapse's Rust
``PushRuleEvaluator`` (one evaluator per event, built outside the loop, ``run`` per
recipient). Run with ``--benchmark-timer=time.process_time``; divide the median by
``extra_info["evals_per_round"]`` for the per-evaluation cost.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest

from bench.corpus import SERVER, event_corpus
from hs.core.push_rules import build_ruleset

USER = f"@recipient:{SERVER}"
DISPLAY_NAME = "Zed Recipient"

try:
    from synapse.push.bulk_push_rule_evaluator import _flatten_dict
    from synapse.synapse_rust.push import FilteredPushRules, PushRuleEvaluator, PushRules

    HAVE_SYNAPSE = True
except ImportError:  # not installed in this environment: skip the comparison
    HAVE_SYNAPSE = False


def _twins() -> list[Any]:
    params: list[Any] = [pytest.param(importlib.import_module("hs._native._push_py"), id="pure")]
    try:
        params.insert(0, pytest.param(importlib.import_module("hs._native._push_c"), id="native"))
    except ImportError:
        params.append(pytest.param(None, id="native", marks=pytest.mark.skip("not built")))
    return params


def _messages() -> list[dict[str, Any]]:
    return [
        e
        for e in event_corpus()
        if e["type"] == "m.room.message" and "m.relates_to" not in e["content"]
    ]


def _with_name(event: dict[str, Any]) -> dict[str, Any]:
    """A copy whose body mentions the recipient's display name mid-sentence."""
    words = event["content"]["body"].split(" ")
    mid = len(words) // 2
    body = " ".join([*words[:mid], DISPLAY_NAME + ",", *words[mid:]])
    return {**event, "content": {**event["content"], "body": body}}


CASES = {"plain": _messages(), "display-name": [_with_name(e) for e in _messages()]}
EXPECTED = {"plain": ".m.rule.message", "display-name": ".m.rule.contains_display_name"}
MEMBERS = 1000


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("mod", _twins())
def test_push_eval(benchmark: Any, mod: ModuleType, case: str) -> None:
    benchmark.group = f"push-{case}"
    compiled = mod.compile_rules(build_ruleset(USER), USER)
    flats = [mod.flatten_event(e) for e in CASES[case]]
    ctx = mod.PushContext(MEMBERS, 0, {"room": 50}, DISPLAY_NAME)
    for f in flats:
        assert mod.evaluate_result(compiled, f, ctx).rule_id == EXPECTED[case]
    evaluate = mod.evaluate

    def run() -> None:
        for f in flats:
            evaluate(compiled, f, ctx)

    benchmark.extra_info["evals_per_round"] = len(flats)
    benchmark(run)


@pytest.mark.skipif(not HAVE_SYNAPSE, reason="matrix-synapse not importable")
@pytest.mark.parametrize("case", list(CASES))
def test_push_eval_synapse(benchmark: Any, case: str) -> None:
    benchmark.group = f"push-{case}"
    # Synapse's base rules with MSC4210 off keep the legacy body-mention rules, like ours.
    rules = FilteredPushRules(PushRules([]), {}, False, False, False, False, False, False, False)
    evaluators = []
    for e in CASES[case]:
        evaluators.append(
            PushRuleEvaluator(
                _flatten_dict(e),
                "m.mentions" in e["content"],
                MEMBERS,
                0,
                {"room": 50},
                {},
                False,
                [],
                False,
                False,
                False,
            )
        )
    highlight = case == "display-name"
    for ev in evaluators:
        actions = ev.run(rules, USER, DISPLAY_NAME, None)
        assert ("notify" in actions) and ({"set_tweak": "highlight"} in actions) is highlight

    def run() -> None:
        for ev in evaluators:
            ev.run(rules, USER, DISPLAY_NAME, None)

    benchmark.extra_info["evals_per_round"] = len(evaluators)
    benchmark(run)


@pytest.mark.parametrize("mod", _twins())
def test_push_flatten(benchmark: Any, mod: ModuleType) -> None:
    """Once-per-event cost of the flattened view (amortised over all recipients)."""
    benchmark.group = "push-flatten"
    events = CASES["plain"]

    def run() -> None:
        for e in events:
            mod.flatten_event(e)

    benchmark.extra_info["evals_per_round"] = len(events)
    benchmark(run)
