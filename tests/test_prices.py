"""The price table (nodes/models/prices.toml): providers beyond OpenAI, image tokens by each
provider's rule, and --max-cost refusing a model it cannot price (it counted as free)."""

import pytest

from raer.nodes.context import Context, SettingsError
from raer.nodes.models.door import estimate_prompt_tokens
from raer.nodes.models.prices import estimate_cost, image_tokens, price_of, table_meta


def test_the_table_has_its_date_sources_and_real_providers():
    meta = table_meta()
    assert meta["as_of"] and len(meta["sources"]) >= 3
    for model in ("gpt-4o", "claude-3-5-haiku-20241022", "gemini-2.0-flash-001",
                  "gpt-4o-2024-08-06", "llama-3.3-70b-versatile"):
        assert price_of(model) is not None, model
    assert price_of("gpt-4o-mini-2024-07-18").input == 0.15  # the longest entry wins
    assert price_of("mistral-unknown") is None and estimate_cost("mistral-unknown", 1, 1, 0) \
        is None


@pytest.mark.parametrize("model, width, height, tokens", [
    # OpenAI's worked examples (images-vision guide): 1024 x 1024 on gpt-4o is 765 tokens,
    # 2048 x 4096 is 1105; gpt-4o-mini bills the same image at 2833 + 5667 per tile
    ("gpt-4o", 1024, 1024, 765), ("gpt-4o", 2048, 4096, 1105),
    ("gpt-4o-mini", 512, 512, 2833 + 5667),
    # patches: 1024 x 1024 is 32 x 32 = 1024 patches, x 1.62 on gpt-4.1-mini
    ("gpt-4.1-mini", 1024, 1024, 1659),
    # Anthropic: 1000 x 1000 / 750 = 1334
    ("claude-3-5-haiku", 1000, 1000, 1334),
    # Gemini 2.x: small images 258; 1024 x 1024 is 2 x 2 tiles of 768
    ("gemini-2.0-flash", 384, 384, 258), ("gemini-2.0-flash", 1024, 1024, 1032),
    ("pillow", 512, 512, 0), ("someone-elses-model", 512, 512, 1100),
])
def test_image_tokens_follow_each_providers_rule(model, width, height, tokens):
    assert image_tokens(model, width, height) == tokens


def test_the_spending_limit_reserves_what_an_image_really_costs():
    """A packshot was reserved as 1,100 tokens on every model; on gpt-4o-mini it bills 8,500,
    so --max-cost let calls start that passed the limit."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "describe"},
                                             {"type": "image_url", "image_url": {"url": "x"}}]}]
    assert estimate_prompt_tokens(messages, "gpt-4o-mini", 512) > 8500
    assert estimate_prompt_tokens(messages, "gpt-4o", 512) < 300


def test_max_cost_refuses_a_model_it_cannot_price():
    with pytest.raises(SettingsError, match="cannot cap judge model 'my-finetune'"):
        Context(base_url="http://127.0.0.1:9/v1", model="gpt-4o-mini",
                judge_model="my-finetune", max_cost=5.0)
    Context(base_url="http://127.0.0.1:9/v1", model="my-finetune", max_cost=5.0,
            prices='{"my-finetune": [1.0, 2.0, 0.5]}', vision_model="pillow")
    Context(base_url="http://127.0.0.1:9/v1", model="my-finetune")  # no limit: no price needed
    Context(max_cost=1.0)  # the embedded model is free


def test_the_dry_run_says_whether_the_judge_prefix_reaches_the_cache_minimum(tmp_path):
    """The shared per-query prefix (~620 tokens) is below OpenAI's 1,024-token minimum: the
    cached-rate saving raer's layout was built for is billed on no call. The dry run now
    says so instead of leaving it to be found on the invoice."""
    import json

    from click.testing import CliRunner

    from raer.cli import main
    from tests.conftest import REPO

    def dry(model):
        result = CliRunner().invoke(main, [
            "judge", str(REPO / "demo" / "pairs.jsonl"), "--db", str(tmp_path / "x.db"),
            "--dry-run", "--json", "--base-url", "http://127.0.0.1:9/v1", "--model", model])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["judge_prefix"]

    prefix = dry("gpt-4o")
    assert 400 < prefix["tokens"] < 1024 and prefix["cache_minimum"] == 1024
    assert prefix["cached"] is False
    assert dry("claude-haiku-4-5")["cache_minimum"] == 4096
    assert dry("llama-3.3-70b-versatile")["cache_minimum"] is None  # the host caches nothing


def test_the_dry_run_works_out_whether_padding_the_prefix_to_the_minimum_pays():
    """Padded, a query's first judge call pays the minimum in full and the others the cached
    rate; as it is, every call pays the short prefix in full. With 5 calls a query it
    (barely) pays at gpt-4o's prices; with one call a query (listwise) it cannot."""
    from raer.nodes.models.prices import price_of
    from raer.run.estimate import padding_pays

    gpt4o = price_of("gpt-4o")
    five = padding_pays(621, 1024, 5, gpt4o)
    assert five["usd_per_query_as_is"] == pytest.approx(5 * 621 * 2.50 / 1e6, abs=1e-6)
    assert five["usd_per_query_padded"] == pytest.approx(
        (1024 * 2.50 + 4 * 1024 * 1.25) / 1e6, abs=1e-6)
    assert five["pays"] is True
    assert padding_pays(621, 1024, 1, gpt4o)["pays"] is False
