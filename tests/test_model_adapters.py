"""nodes/models/adapters.py: every private API raer uses still exists, with the shape raer
calls, on the installed versions, and the installed versions are the pinned ones. An
upgrade that moves one fails here by name, not as a broken call in the middle of a run."""

import importlib
import inspect
from importlib.metadata import version

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from raer.nodes.models.adapters import PRIVATE_APIS
from tests.conftest import REPO


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("dotted", [d for names in PRIVATE_APIS.values() for d in names])
def test_each_private_api_raer_uses_is_still_there(dotted):
    try:
        _resolve(dotted)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{dotted} is gone in this version: nodes/models/adapters.py needs "
                    f"updating ({exc})")


def test_the_private_calls_keep_the_parameters_raer_passes():
    from instructor.v2.core.retry import retry_async_v2
    from langchain_openai import ChatOpenAI

    takes = set(inspect.signature(retry_async_v2).parameters)
    assert {"func", "response_model", "provider", "mode", "context", "max_retries", "args",
            "kwargs", "strict", "hooks"} <= takes
    assert "stop" in inspect.signature(ChatOpenAI._get_request_payload).parameters


def test_the_installed_versions_are_the_pinned_minor_versions():
    """pyproject pins each library raer reaches into to one minor version range, so an
    install never brings a minor release this test has not seen."""
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {Requirement(d).name: Requirement(d).specifier for d in declared}
    for package in PRIVATE_APIS:
        spec: SpecifierSet = pins[package]
        assert version(package) in spec, (package, version(package), str(spec))
        assert any(s.operator == "<" for s in spec), f"{package} needs an upper bound"
