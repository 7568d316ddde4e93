"""Prompt files: placeholders checked, hashes change with the text."""

import pytest

from raer.prompts import EXPECTED_PLACEHOLDERS, PromptError, load_prompt, parse_prompt


def test_every_packaged_prompt_loads_with_exactly_its_placeholders():
    for name in EXPECTED_PLACEHOLDERS:
        prompt = load_prompt(name)
        assert prompt.system and prompt.user and len(prompt.hash) == 12


def test_a_missing_placeholder_is_an_error_naming_it():
    with pytest.raises(PromptError, match=r"missing placeholders \['language'\]"):
        parse_prompt("extract_requirements", "[system]\nx\n[user]\n{query}")


def test_an_unexpected_placeholder_is_an_error():
    with pytest.raises(PromptError, match=r"unexpected \['colour'\]"):
        parse_prompt("extract_requirements", "[system]\n{colour}\n[user]\n{query} {language}")


def test_changing_the_text_changes_the_hash():
    a = parse_prompt("extract_requirements", "[system]\nA\n[user]\n{query} {language}")
    b = parse_prompt("extract_requirements", "[system]\nB\n[user]\n{query} {language}")
    assert a.hash != b.hash


def test_a_custom_prompt_set_folder_is_used(tmp_path):
    (tmp_path / "extract_requirements.md").write_text(
        "[system]\nCustom.\n[user]\nQ={query} L={language}")
    prompt = load_prompt("extract_requirements", str(tmp_path))
    assert prompt.render(query="jeans", language="English") == ("Custom.", "Q=jeans L=English")
