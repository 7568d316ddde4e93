"""Run settings (`Context`): plain strings and numbers, passed as LangGraph's context_schema.

Everything that changes a model's output is here, so that a run's identity (`run_id`) can be
derived from it: the same settings give the same run, which is what makes a rerun a no-op and
an interrupted run resumable. Environment variables are read only at the edges (CLI, server
entry), never here; API keys are named (`api_key_env`), never stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from raer.prompts import prompt_hashes
from raer.store.redact import strip_credentials

ROLES = ("requirements", "guidelines", "vision", "judge")
OFFLINE = ""  # an empty base URL means: the embedded offline model
PILLOW_VISION = "pillow"  # the offline vision default: local image analysis, not a model

# Fields that do not change what the models are asked, so they stay out of the run identity.
_OPERATIONAL = {"db_path", "run_name", "max_concurrency", "query_concurrency", "review_mode",
                "request_timeout", "max_retries", "offline_threads", "max_cost",
                "requests_per_minute", "tokens_per_minute", "batch", "batch_idle_seconds",
                "batch_poll_seconds", "batch_resubmits", "images_root", "local_images",
                "image_allow_hosts"}


@dataclass(frozen=True)
class Context:
    """How a run judges. Models per role fall back to `model` / `base_url` when left empty."""

    db_path: str = "raer.db"
    run_name: str = ""
    """Names the run explicitly; empty means the run is named by its settings' hash."""

    base_url: str = OFFLINE
    """OpenAI-compatible endpoint for every role; empty: the embedded SmolLM2 model."""
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    requirements_model: str = ""
    requirements_base_url: str = ""
    guidelines_model: str = ""
    guidelines_base_url: str = ""
    judge_model: str = ""
    judge_base_url: str = ""
    vision_model: str = ""
    """Empty: the role's model when an endpoint is set, else local Pillow analysis ("pillow")."""
    vision_base_url: str = ""

    guideline_mode: Literal["specific", "generic"] = "specific"
    describe_images: bool = True
    """False judges on product text alone (the packshot ablation)."""
    scale: Literal["three", "graded"] = "three"
    """"graded": a 0–4 grade mapped onto the three labels (4–3, 2, 1–0)."""
    review_below: float = 0.5
    """Judgments with confidence below this go to a person."""
    review_mode: Literal["queue", "interactive"] = "queue"
    temperature: float = 0.0
    max_reasks: int = 2
    """Re-asks after output that fails validation, per structured call."""
    max_retries: int = 3
    """Transport retries (429, 5xx, timeouts) inside the OpenAI client, per attempt."""
    request_timeout: float = 120.0
    max_concurrency: int = 8
    """Model calls in flight at once, across all queries of this process."""
    requests_per_minute: float = 0
    """Per endpoint; 0: no limit."""
    tokens_per_minute: float = 0
    """Per endpoint, prompt plus output-limit tokens; 0: no limit."""
    max_cost: float = 0
    """USD for the whole run; no call starts that could pass it. 0: no limit."""
    batch: bool = False
    """Send requests through the OpenAI Batch API (half price, hours not seconds)."""
    batch_idle_seconds: float = 2.0
    batch_poll_seconds: float = 30.0
    batch_resubmits: int = 2
    query_concurrency: int = 4
    image_max_side: int = 512
    images_root: str = ""
    """Local packshots must lie inside this folder. The CLI passes the pairs file's folder
    (or --images-root); empty means no confinement, for scripts that build their own pairs:
    a script judging a file it did not write should set it."""
    local_images: bool = True
    """False: no local file is read as a packshot (the LangGraph server without an images
    root)."""
    image_allow_hosts: str = ""
    """Comma-separated host names or networks (CIDR) on a private network that packshot URLs
    may reach, e.g. a shop's own CDN; every other private, loopback, link-local or metadata
    address is refused."""
    offline_threads: int = 2
    prompt_set: str = "default"
    prices: str = field(default="")
    """JSON object {model: [usd per 1M input, usd per 1M output, usd per 1M cached input]}."""

    @classmethod
    def coerce(cls, value: Any) -> Context:
        """Accept a Context, a dict (LangGraph server bodies) or None (defaults)."""
        if isinstance(value, cls):
            return value
        if value is None:
            return cls()
        if isinstance(value, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise ValueError(f"unknown run settings: {sorted(unknown)}")
            return cls(**value)
        raise TypeError(f"run settings must be a Context or a dict, not {type(value).__name__}")

    def endpoint(self, role: str) -> tuple[str, str]:
        """(base_url, model) for a role; base_url "" is the embedded model, model "pillow"
        for the vision role means local image analysis."""
        if role not in ROLES:
            raise ValueError(f"unknown model role {role!r}")
        base_url = getattr(self, f"{role}_base_url") or self.base_url
        model = getattr(self, f"{role}_model") or self.model
        if role == "vision" and not self.vision_model:
            model = self.model if base_url != OFFLINE else PILLOW_VISION
        if base_url == OFFLINE and role != "vision":
            model = model or "SmolLM2-135M-Instruct-Q4_1"
        return base_url, model

    def identity(self) -> dict[str, Any]:
        """The settings that change outputs, plus the resolved models per role. Credentials
        in endpoint URLs never reach it (it is stored and shown)."""
        data = {k: strip_credentials(v) if k.endswith("base_url") else v
                for k, v in dataclasses.asdict(self).items() if k not in _OPERATIONAL}
        data["models"] = {role: [strip_credentials(self.endpoint(role)[0]),
                                 self.endpoint(role)[1]] for role in ROLES}
        data["prompts"] = prompt_hashes(self.prompt_set, self.scale == "graded")
        return data

    @property
    def run_id(self) -> str:
        if self.run_name:
            return self.run_name
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()
        return f"run-{digest[:12]}"
