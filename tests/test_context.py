"""nodes/context.py: endpoints resolved once and refused when they would lie, run identity free
of operational settings, every setting described."""

from __future__ import annotations

import dataclasses

import pytest

from raer.graph.build import build_graph
from raer.nodes.context import Context, SettingsError


def test_a_model_named_without_an_endpoint_is_refused_not_answered_by_the_offline_model():
    with pytest.raises(SettingsError, match="judge_model 'gpt-4o' has no endpoint"):
        Context(judge_model="gpt-4o")
    with pytest.raises(SettingsError, match="model 'gpt-4o-mini' has no endpoint"):
        Context(model="gpt-4o-mini")
    hosted = Context(base_url="https://api.openai.com/v1", model="gpt-4o-mini",
                     judge_model="gpt-4o")
    assert hosted.endpoints["judge"].model == "gpt-4o"
    assert hosted.endpoints["requirements"].model == "gpt-4o-mini"
    with pytest.raises(SettingsError, match="requirements has an endpoint .* but no model"):
        Context(base_url="https://api.openai.com/v1", judge_model="gpt-4o")
    offline = Context()
    assert offline.endpoints["judge"].offline
    assert offline.endpoints["judge"].model == "SmolLM2-135M-Instruct-Q4_1"
    assert offline.endpoints["vision"].local_analysis


def test_prices_and_key_variable_do_not_change_the_run():
    base = Context(base_url="http://127.0.0.1:9/v1", model="m")
    same = dataclasses.replace(base, prices='{"m": [1, 2, 0]}', api_key_env="MY_KEY",
                               max_concurrency=3, output_mode="tools")
    assert same.run_id == base.run_id
    assert dataclasses.replace(base, temperature=0.3).run_id != base.run_id


def test_the_context_schema_describes_every_setting():
    schema = build_graph().compile().get_context_jsonschema()
    missing = [name for name, spec in schema["properties"].items() if not spec.get("description")]
    assert missing == []
