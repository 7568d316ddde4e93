"""Every use of a library's private API in raer, in one place, each for a guarantee that
was measured or that a public API cannot keep; tests/test_model_adapters.py fails loudly,
naming the symbol, when an upgrade removes or changes one (pyproject.toml pins these
libraries to a minor version, so no install picks up a new minor release unseen).

1. instructor's v2 engine (`instructor.v2.core.*`: the mode registry, the prepared response
   model, the async retry loop) called without `instructor.patch`: a patched client renders
   every message as a Jinja template when it is given a validation context, and raer's
   messages hold seller text, which must reach the model verbatim (tests/test_model_door.py).
   The validation context is what lets a judgment inconsistent with its inputs be re-asked
   with the reason; no public entry point takes a context without templating.
2. langchain-core's `_get_data_content_block_types` cached: it works out the typing hints
   of constant TypedDicts again for every image block (~6% of a pair's CPU, benchmark).
3. ChatOpenAI's `_get_request_payload` overridden to hand the request's fields to the
   OpenAI SDK as `extra_body` (the same JSON body, without the SDK's per-parameter type
   walk: ~10% of a pair's CPU, benchmark; tests/test_openai_compatible.py compares the bodies).
"""

from __future__ import annotations

import functools
from functools import lru_cache
from typing import Any, TypeVar

import instructor
from instructor.core.hooks import Hooks
from instructor.v2.core.providers import Provider
from instructor.v2.core.registry import mode_registry
from instructor.v2.core.response_model import prepare_response_model
from instructor.v2.core.retry import retry_async_v2
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import content as _content_blocks
from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)
Message = dict[str, Any]

PRIVATE_APIS = {
    "instructor": ["instructor.v2.core.registry.mode_registry",
                   "instructor.v2.core.response_model.prepare_response_model",
                   "instructor.v2.core.retry.retry_async_v2",
                   "instructor.v2.core.providers.Provider"],
    "langchain-core": ["langchain_core.messages.content._get_data_content_block_types"],
    "langchain-openai": ["langchain_openai.ChatOpenAI._get_request_payload"],
}
"""What tests/test_model_adapters.py checks on every install."""

# langchain-core (1.8) works out the typing hints of its content-block TypedDicts again for
# every image block it formats (~6% of a pair's CPU in the benchmark); they are constants.
_block_types = getattr(_content_blocks, "_get_data_content_block_types", None)
if _block_types is not None and not hasattr(_block_types, "cache_info"):
    _content_blocks._get_data_content_block_types = functools.cache(_block_types)

# what the SDK's create() takes as arguments rather than as fields of the JSON body
_SDK_ARGUMENTS = frozenset({"model", "stream", "extra_body", "extra_headers", "extra_query",
                            "timeout"})


@lru_cache(maxsize=1)
def chat_openai_class() -> type[BaseChatModel]:
    from langchain_openai import ChatOpenAI

    class RaerChatOpenAI(ChatOpenAI):
        """ChatOpenAI whose request fields reach the OpenAI SDK as `extra_body`.

        Before sending, the SDK walks every parameter against its type, each message
        against every member of its unions of TypedDicts, and sends the same dicts
        (~10% of a pair's CPU in the benchmark). Given as extra body, the same fields go out
        in the same JSON body without that walk (tests/test_openai_compatible.py compares
        the bodies).
        LangChain's callbacks and traces still see the messages."""

        def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None,
                                 **kwargs: Any) -> dict:
            payload = super()._get_request_payload(input_, stop=stop, **kwargs)
            if "messages" not in payload:  # the Responses API: left as LangChain built it
                return payload
            body = {k: payload.pop(k) for k in list(payload) if k not in _SDK_ARGUMENTS}
            payload["extra_body"] = {**body, **(payload.get("extra_body") or {})}
            payload["messages"] = []
            return payload

    return RaerChatOpenAI


_MESSAGE_FREE = (instructor.Mode.JSON_SCHEMA, instructor.Mode.TOOLS)


@lru_cache(maxsize=64)
def _shape(schema: type[BaseModel], mode: instructor.Mode) -> tuple[type, dict[str, Any]]:
    """instructor's prepared model and request fields for a schema, made once: building
    them costs ~3.5 ms a call, a fifth of the CPU a pair takes in the benchmark."""
    handlers = mode_registry.get_handlers(Provider.OPENAI, mode)
    prepared, request = handlers.request_handler(
        response_model=prepare_response_model(schema), kwargs={"messages": [], "model": ""})
    return prepared, {k: v for k, v in request.items() if k not in ("messages", "model")}


async def instructor_call(transport: Any, mode: instructor.Mode, schema: type[T],
                      messages: list[Message], model: str, reasks: int,
                      context: dict[str, Any], hooks: Hooks) -> T:
    """instructor's request shaping, validation (with `context`) and re-asks over our
    transport. This is what `instructor.patch(create=...)` does, minus one step: patched
    clients render every message as a Jinja template when given a context, and our messages
    hold seller text, which must reach the model verbatim."""
    copies = [dict(m) for m in messages]
    if mode in _MESSAGE_FREE:  # the request's shape does not depend on the messages
        response_model, shape = _shape(schema, mode)
        request = {"messages": copies, "model": model, **shape}
    else:  # json, md_json: the schema goes into the system message
        handlers = mode_registry.get_handlers(Provider.OPENAI, mode)
        response_model, request = handlers.request_handler(
            response_model=prepare_response_model(schema),
            kwargs={"messages": copies, "model": model})
    return await retry_async_v2(func=transport, response_model=response_model,
                                provider=Provider.OPENAI, mode=mode, context=context,
                                max_retries=reasks, args=(), kwargs=request, strict=False,
                                hooks=hooks)
