"""Run settings (`Context`), passed as LangGraph's context_schema, and their resolved endpoints.

Every field says what it does (`metadata["description"]`, shown in LangGraph Studio) and
whether it is operational (`metadata["operational"]`): how fast, where, how much, with which
key — never what the models are asked. A run's identity (`run_id`) is a hash of the
non-operational fields and the resolved endpoints, so the same settings give the same run
(a rerun is a no-op, an interrupted run resumes), and changing a price table, a key variable
or a concurrency limit never starts a new run.

Endpoints are resolved once per `Context` into frozen `Endpoint` values (`context.endpoints`)
that the nodes and the model door read; a model named without an endpoint is refused here,
before any pair is touched (the embedded offline model would answer under the wrong name).
Environment variables are read only at the edges (CLI, server entry), never here; API keys
are named (`api_key_env`), never stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

from raer.prompts import prompt_hashes
from raer.store.redact import strip_credentials

ROLES = ("requirements", "guidelines", "vision", "judge")
OFFLINE = ""  # an empty base URL means: the embedded offline model
OFFLINE_MODEL = "SmolLM2-135M-Instruct-Q4_1"
PILLOW_VISION = "pillow"  # the offline vision default: local image analysis, not a model
OUTPUT_MODES = ("auto", "json_schema", "tools", "json", "md_json")
MAX_PRODUCTS_PER_CALL = 30
"""A listwise answer grows by ~250 tokens a product: 30 fit a 8,192-token output limit."""


class SettingsError(ValueError):
    """Run settings that cannot work together; raised before any pair is touched."""


def setting(default: Any, description: str, *, operational: bool = False) -> Any:
    return field(default=default, metadata={"description": description,
                                            "operational": operational})


def operational(default: Any, description: str) -> Any:
    """A setting that changes how a run goes, not what its models are asked."""
    return setting(default, description, operational=True)


@dataclass(frozen=True)
class Endpoint:
    """Where one role's calls go, resolved once per run."""

    role: str
    base_url: str
    """"" is the embedded offline model."""
    model: str
    """"pillow" for the vision role means local image analysis, no model."""
    api_key_env: str
    output_mode: str
    """How structured output is asked for (nodes/models/door.py); "auto" detects it."""

    @property
    def offline(self) -> bool:
        return self.base_url == OFFLINE

    @property
    def local_analysis(self) -> bool:
        return self.model == PILLOW_VISION


@dataclass(frozen=True)
class Context:
    """How a run judges. Models per role fall back to `model` / `base_url` when left empty."""

    db_path: str = operational("raer.db", "The SQLite store.")
    run_name: str = operational(
        "", "Names the run explicitly; empty: the run is named by its settings' hash.")

    base_url: str = setting(OFFLINE, "OpenAI-compatible endpoint for every role; empty: "
                            "the embedded SmolLM2 model.")
    model: str = setting("", "Model for every role (needs an endpoint).")
    api_key_env: str = operational("OPENAI_API_KEY",
                                   "Name of the environment variable holding the API key.")
    requirements_model: str = setting("", "Model extracting requirements; empty: `model`.")
    requirements_base_url: str = setting("", "Endpoint for requirements; empty: `base_url`.")
    guidelines_model: str = setting("", "Model drafting guidelines; empty: `model`.")
    guidelines_base_url: str = setting("", "Endpoint for guidelines; empty: `base_url`.")
    judge_model: str = setting("", "Model judging pairs; empty: `model`.")
    judge_base_url: str = setting("", "Endpoint for the judge; empty: `base_url`.")
    vision_model: str = setting("", "Model describing packshots; empty: the role's model "
                                "when an endpoint is set, else local Pillow analysis "
                                "(\"pillow\").")
    vision_base_url: str = setting("", "Endpoint for packshots; empty: `base_url`.")
    output_mode: Literal["auto", "json_schema", "tools", "json", "md_json"] = operational(
        "auto", "How structured output is asked for: a JSON schema response format, a tool "
        "call, JSON mode or JSON in a markdown block; auto: the first the endpoint accepts.")

    guideline_mode: Literal["specific", "generic"] = setting(
        "specific", "Query-specific guidelines, or the generic rubric (no model call).")
    describe_images: bool = setting(
        True, "False judges on product text alone (the packshot ablation).")
    scale: Literal["three", "graded"] = setting(
        "three", "Three labels, or a 0–4 grade mapped onto them (4–3, 2, 1–0).")
    review_below: float = setting(0.5, "Judgments with confidence below this go to a person.")
    learn_from_reviews: bool = setting(
        False, "People's resolved reviews of a query become examples in its guidelines "
        "(versioned in the guidelines key: only that query's pairs are judged again).")
    review_mode: Literal["queue", "interactive"] = operational(
        "queue", "Queue doubtful pairs for review, or pause the thread for a person.")
    temperature: float = setting(0.0, "Sampling temperature of the first attempt.")
    check_consistency: Literal["auto", "on", "off"] = setting(
        "auto", "Re-ask a judgment inconsistent with its inputs (a verdict for a requirement "
        "never extracted; 'highly relevant' with a must unmet) and, when the re-asks run out, "
        "send it to a person; auto: on, except for the embedded offline model, whose answers "
        "fail it most of the time.")
    max_reasks: int = setting(2, "Re-asks after output that fails validation, per call.")
    products_per_call: int = setting(
        1, "Products judged in one judge call (listwise); 1: one call per pair. A query's "
        "products are shuffled (list_seed), cut into chunks of this size, and each product is "
        "cached on its own, so a chunk never pays again for a product already judged.")
    list_seed: int = setting(0, "Seed of the order products are listed in (listwise).")
    context_tokens: int = setting(
        0, "The judge model's context window in tokens: listwise chunks are cut so that each "
        "prompt and its answers fit. 0: the offline model's slot, else the model table's "
        "(nodes/models/prices.toml), else no cut.")
    first_stage: str = operational(
        "", "A first-stage model file (`raer cascade fit`): pairs it labels with confidence at "
        "or above its threshold are recorded with no model call; the rest are judged. Runs "
        "only (the CLI, the Python API, workers, Ray), not the LangGraph server.")
    first_stage_digest: str = setting(
        "", "The first-stage model's content digest, read from the file (part of the run's "
        "identity: another model is another run).")
    max_retries: int = operational(
        3, "Transport retries (429, 5xx, timeouts) inside the OpenAI client, per attempt.")
    request_timeout: float = operational(120.0, "Seconds per request.")
    max_concurrency: int = operational(
        8, "Model calls in flight at once, across all queries of this process.")
    requests_per_minute: float = operational(0, "Per endpoint; 0: no limit.")
    tokens_per_minute: float = operational(
        0, "Per endpoint, prompt plus output-limit tokens; 0: no limit.")
    max_cost: float = operational(
        0, "USD for the whole run; no call starts that could pass it. 0: no limit.")
    batch: bool = operational(
        False, "Send requests through the OpenAI Batch API (half price, hours not seconds).")
    batch_idle_seconds: float = operational(2.0, "Batch mode: wait this long for more "
                                            "requests before submitting a batch.")
    batch_poll_seconds: float = operational(30.0, "Batch mode: seconds between polls.")
    batch_resubmits: int = operational(2, "Batch mode: resubmissions of a missing request.")
    query_concurrency: int = operational(4, "Queries judged at once.")
    image_max_side: int = setting(512, "Packshots are downscaled to this many pixels a side.")
    images_root: str = operational(
        "", "Local packshots must lie inside this folder, and relative image paths resolve "
        "against it. The CLI passes the pairs file's folder (or --images-root); empty means "
        "no confinement, for scripts that build their own pairs.")
    local_images: bool = operational(
        True, "False: no local file is read as a packshot (the LangGraph server without an "
        "images root).")
    image_allow_hosts: str = operational(
        "", "Comma-separated host names or networks (CIDR) on a private network that packshot "
        "URLs may reach, e.g. a shop's own CDN; every other private, loopback, link-local or "
        "metadata address is refused.")
    offline_threads: int = operational(2, "CPU threads of the embedded offline model.")
    min_free_mb: float = operational(
        64, "A run stops, before paying for a call, when the store's disk has less free "
        "space than this (MB): an answer that cannot be stored is paid again. 0: no check.")
    prompt_set: str = setting("default", "\"default\" or a folder of prompt files; a file "
                              "it lacks falls back to the shipped one.")
    prices: str = operational("", "JSON object {model: [usd per 1M input, usd per 1M output, "
                              "usd per 1M cached input]}.")

    def __post_init__(self) -> None:
        if self.output_mode not in OUTPUT_MODES:
            raise SettingsError(f"output_mode must be one of {list(OUTPUT_MODES)}, "
                                f"not {self.output_mode!r}")
        if not 1 <= self.products_per_call <= MAX_PRODUCTS_PER_CALL:
            raise SettingsError(f"products_per_call must be 1 to {MAX_PRODUCTS_PER_CALL}, "
                                f"not {self.products_per_call}")
        if self.context_tokens < 0:
            raise SettingsError(f"context_tokens must be 0 or more, not {self.context_tokens}")
        if self.first_stage and not self.first_stage_digest:  # read once, where it is given
            from raer.nodes.models.first_stage import FirstStageError, load_first_stage

            try:
                digest = load_first_stage(self.first_stage).digest
            except FirstStageError as exc:
                raise SettingsError(str(exc)) from exc
            object.__setattr__(self, "first_stage_digest", digest)
        # a digest without a file: a stored run's settings (retry-failed), whose first stage
        # has labelled its pairs already; the run keeps its id and nothing is split again
        self.endpoints  # noqa: B018 — resolve now: a wrong combination fails at once
        if self.max_cost:
            self._check_priced()

    def _check_priced(self) -> None:
        """--max-cost counts a model it has no price for as free, so it could not stop the
        spend: refuse it by name (it was costed at zero before)."""
        from raer.nodes.models.prices import price_of, table_meta

        for role, endpoint in self.endpoints.items():
            if endpoint.offline or endpoint.local_analysis or (
                    role == "vision" and not self.describe_images):
                continue
            if price_of(endpoint.model, self.prices) is None:
                raise SettingsError(
                    f"--max-cost cannot cap {role} model {endpoint.model!r}: it is not in "
                    f"raer's price table (as of {table_meta()['as_of']}); give its price "
                    f"with --prices '{{\"{endpoint.model}\": [usd per 1M input, usd per 1M "
                    f"output, usd per 1M cached input]}}'")

    @classmethod
    def coerce(cls, value: Any) -> Context:
        """Accept a Context or a dict of its fields. None is refused: a graph invoked
        without `context=` once judged on the defaults into ./raer.db without a word."""
        if isinstance(value, cls):
            return value
        if value is None:
            raise SettingsError("no run settings: invoke the graph with context=Context(...) "
                                "(raer.nodes.settings builds one for each door)")
        if isinstance(value, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise SettingsError(f"unknown run settings: {sorted(unknown)}")
            return cls(**value)
        raise TypeError(f"run settings must be a Context or a dict, not {type(value).__name__}")

    @cached_property
    def endpoints(self) -> MappingProxyType[str, Endpoint]:
        """Each role's endpoint, resolved once (a frozen Context never changes)."""
        return MappingProxyType({role: self._resolve(role) for role in ROLES})

    def _resolve(self, role: str) -> Endpoint:
        base_url = getattr(self, f"{role}_base_url") or self.base_url
        named = getattr(self, f"{role}_model") or self.model
        if role == "vision" and self.vision_model == PILLOW_VISION:
            model = PILLOW_VISION
        elif base_url == OFFLINE:
            allowed = {"", OFFLINE_MODEL} | ({PILLOW_VISION} if role == "vision" else set())
            if named not in allowed:
                which = f"{role}_model" if getattr(self, f"{role}_model") else "model"
                raise SettingsError(
                    f"{which} {named!r} has no endpoint: set {role}_base_url or base_url "
                    f"(e.g. https://api.openai.com/v1). With no endpoint the embedded offline "
                    f"model ({OFFLINE_MODEL}) would answer, recorded under the wrong name.")
            model = PILLOW_VISION if role == "vision" else OFFLINE_MODEL
        else:
            model = named
            if not model and not (role == "vision" and not self.describe_images):
                raise SettingsError(
                    f"{role} has an endpoint ({strip_credentials(base_url)}) but no model: "
                    f"set {role}_model or model")
        return Endpoint(role=role, base_url=base_url, model=model,
                        api_key_env=self.api_key_env, output_mode=self.output_mode)

    def identity(self) -> dict[str, Any]:
        """The settings that change outputs, plus the resolved models per role. Credentials
        in endpoint URLs never reach it (it is stored and shown)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not f.metadata.get("operational")}
        data = {k: strip_credentials(v) if k.endswith("base_url") else v
                for k, v in data.items()}
        if not self.listwise:  # pairwise runs keep the ids they had before listwise existed
            del data["products_per_call"], data["list_seed"]
        if not self.first_stage_digest:  # runs without a first stage keep their ids
            del data["first_stage_digest"]
        if not (self.listwise and self.context_tokens):  # 0 is the model's: ids stay
            del data["context_tokens"]
        data["models"] = {role: [strip_credentials(e.base_url), e.model]
                          for role, e in self.endpoints.items()}
        data["prompts"] = prompt_hashes(self.prompt_set, self.scale == "graded",
                                        self.listwise)
        return data

    @property
    def listwise(self) -> bool:
        return self.products_per_call > 1

    @property
    def run_id(self) -> str:
        if self.run_name:
            return self.run_name
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()
        return f"run-{digest[:12]}"


def operational_fields() -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(Context)
                     if f.metadata.get("operational"))
