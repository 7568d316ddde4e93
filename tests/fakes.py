"""A deterministic chat model behind raer's model door, for tests.

It answers by the schema the door asks for (the json_schema name: Requirements, Guidelines,
PackshotDescription, Judgment). Each schema has a queue of answers — pydantic objects,
raw strings (to test re-asks) or exceptions — or a function of the messages. Every request
is recorded, so tests can read the exact prompts and count calls.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, ConfigDict, Field

Answer = BaseModel | str | Exception
Responder = Callable[[list[BaseMessage]], Answer]


class FakeChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    queues: dict[str, deque] = Field(default_factory=lambda: defaultdict(deque))
    responders: dict[str, Responder] = Field(default_factory=dict)
    requests: list[tuple[str, list[BaseMessage]]] = Field(default_factory=list)
    kwargs: list[dict[str, Any]] = Field(default_factory=list)
    """Each request's other arguments (temperature, response format, tools)."""

    @property
    def _llm_type(self) -> str:
        return "raer-fake"

    def queue(self, schema: str, *answers: Answer) -> FakeChatModel:
        self.queues[schema].extend(answers)
        return self

    def respond(self, schema: str, responder: Responder) -> FakeChatModel:
        self.responders[schema] = responder
        return self

    def calls(self, schema: str | None = None) -> list[list[BaseMessage]]:
        return [m for s, m in self.requests if schema is None or s == schema]

    def _schema_asked(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        """The schema's name, whichever output mode the door used."""
        fmt = (kwargs.get("extra_body") or {}).get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return fmt["json_schema"]["name"]
        if kwargs.get("tools"):
            return kwargs["tools"][0]["function"]["name"]
        system = str(messages[0].content)  # json / md_json: the schema is in the prompt
        named = re.findall(r'"title": "(\w+)"', system)
        return next(n for n in reversed(named) if n in self.queues or n in self.responders)

    def _answer(self, messages: list[BaseMessage], **kwargs: Any) -> ChatResult:
        schema = self._schema_asked(messages, kwargs)
        self.kwargs.append(kwargs)
        self.requests.append((schema, messages))
        if self.queues[schema]:
            answer = self.queues[schema].popleft()
        elif schema in self.responders:
            answer = self.responders[schema](messages)
        else:
            raise AssertionError(f"the fake model has no answer queued for {schema}")
        if isinstance(answer, Exception):
            raise answer
        text = answer if isinstance(answer, str) else answer.model_dump_json()
        prompt_chars = sum(len(str(m.content)) for m in messages)
        usage = {"input_tokens": prompt_chars // 4, "output_tokens": len(text) // 4,
                 "total_tokens": prompt_chars // 4 + len(text) // 4,
                 "input_token_details": {"cache_read": 0}}
        if kwargs.get("tools"):
            try:
                calls = {"tool_calls": [{"name": schema, "args": json.loads(text),
                                         "id": "call_1"}]}
            except ValueError:
                calls = {"invalid_tool_calls": [{"name": schema, "args": text, "id": "call_1",
                                                 "error": None, "type": "invalid_tool_call"}]}
            message = AIMessage(content="", usage_metadata=usage, **calls)
        else:
            message = AIMessage(content=text, usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return self._answer(messages, **kwargs)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return self._answer(messages, **kwargs)
