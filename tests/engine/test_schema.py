"""Answers held to a JSON schema through real llama.cpp grammars, the reasoning left free:
the R1-vocabulary model (random weights: whatever it "reasons", a thinking budget closes
it) and SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from r1chat.core.errors import BadSchema
from r1chat.core.events import Done
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request, Sampling
from r1chat.core.turn import Guards, run_turn
from r1chat.engine.local.engine import LocalEngine
from r1chat.launch.local import open_local
from tests.fixtures.scripted import ScriptedModel

CITY = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 24},
        "population": {"type": "integer"},
        "capital": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
    },
    "required": ["city", "population", "capital"],
    "additionalProperties": False,
}


def valid(value: Any) -> bool:
    """`value` under CITY (the few rules it uses; no jsonschema dependency for this)."""
    types = {"string": str, "integer": int, "boolean": bool, "array": list}
    if not isinstance(value, dict) or set(CITY["required"]) - set(value):
        return False
    for key, item in value.items():
        rule = CITY["properties"].get(key)
        if rule is None or not isinstance(item, types[rule["type"]]):
            return False
        if rule["type"] == "integer" and isinstance(item, bool):
            return False
    return all(isinstance(t, str) for t in value.get("tags", []))


def answer(engine: LocalEngine, seed: int, *, think: bool = True, schema: object = CITY) -> Done:
    sampling = Sampling(temperature=1.0, seed=seed, max_tokens=400, schema=json.dumps(schema))
    request = Request((Message("user", "The largest city?"),), sampling, think=think)
    events = list(run_turn(engine, request, Control(), Guards(think_budget=12)))
    done = events[-1]
    assert isinstance(done, Done)
    return done


@pytest.fixture(scope="module")
def r1_engine(r1_vocab_path: Path) -> LocalEngine:
    return open_local(r1_vocab_path, n_ctx=1024, gpu_layers=0, threads=1)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_free_reasoning_then_an_answer_under_the_schema(r1_engine: LocalEngine, seed: int):
    done = answer(r1_engine, seed)
    # it reasoned without the grammar (random text, cut by the budget), not in JSON
    assert done.reasoning and not done.reasoning.lstrip().startswith("{")
    assert done.stats.thinking_stopped_by == "budget" and done.finish_reason == "stop"
    assert valid(json.loads(done.content)), done.content


def test_no_think_holds_the_answer_from_its_first_token(r1_engine: LocalEngine):
    done = answer(r1_engine, 5, think=False)
    assert done.reasoning == "" and valid(json.loads(done.content)), done.content


def test_any_json_object(r1_engine: LocalEngine):
    done = answer(r1_engine, 6, schema={"type": "object"})
    assert isinstance(json.loads(done.content), dict)


def test_a_schema_llama_cpp_cannot_use_is_one_error(r1_engine: LocalEngine):
    with pytest.raises(BadSchema, match=r"^\$ref at properties.a: #/nowhere points at nothing$"):
        answer(r1_engine, 1, schema={"properties": {"a": {"$ref": "#/nowhere"}}})
    with pytest.raises(BadSchema, match="cannot be turned into a grammar"):  # llama.cpp's own
        answer(r1_engine, 1, schema={"type": "string", "pattern": "^(?=a)b$"})


def test_smollm2_answers_under_the_schema(smollm2_path: Path):
    engine = open_local(smollm2_path, n_ctx=1024, gpu_layers=0, threads=1)
    try:
        for seed in (1, 2):
            done = answer(engine, seed)
            assert valid(json.loads(done.content)), done.content
    finally:
        engine.close()


def test_the_reasoning_is_what_the_model_writes_unconstrained(answer_model: ScriptedModel):
    engine = open_local(answer_model.path, n_ctx=1024, gpu_layers=0, threads=1)
    try:
        sampling = Sampling(temperature=0.0, max_tokens=400, schema=json.dumps(CITY))
        request = Request((Message("user", "What is 2+2?"),), sampling)
        done = list(run_turn(engine, request, Control(), Guards()))[-1]
        assert isinstance(done, Done)
        assert done.reasoning.strip() == answer_model.reasoning.strip()  # as without a schema
        assert valid(json.loads(done.content)), done.content
    finally:
        engine.close()
