"""A deterministic chat model behind raer's model door, for tests.

It answers by the schema the door asks for (the json_schema name: Requirements, Guidelines,
PackshotDescription, Judgment). Each schema has a queue of answers — pydantic objects,
raw strings (to test re-asks) or exceptions — or a function of the messages. Every request
is recorded, so tests can read the exact prompts and count calls.
"""

from __future__ import annotations

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

    def _answer(self, messages: list[BaseMessage], **kwargs: Any) -> ChatResult:
        schema = kwargs["extra_body"]["response_format"]["json_schema"]["name"]
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
        message = AIMessage(content=text, usage_metadata={
            "input_tokens": prompt_chars // 4, "output_tokens": len(text) // 4,
            "total_tokens": prompt_chars // 4 + len(text) // 4,
            "input_token_details": {"cache_read": 0}})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return self._answer(messages, **kwargs)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return self._answer(messages, **kwargs)
