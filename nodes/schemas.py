"""Pydantic structures: what comes in (pairs), and what each model call must return.

Output fields run reasoning → evidence → label → confidence → flags, and their descriptions
double as instructions. Small local models do not honour numeric bounds or string lengths in
a grammar, so confidence is offered as an enum and free text is capped in a validator
(truncated, not rejected) as the last line of defence. The caps also keep the longest answer
a schema allows within the door's output-token limit, so a rambling model still finishes
valid JSON.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from raer.store.scale import GRADE_TO_LABEL, LABELS  # noqa: E402,F401 (the scale's own home)

TIE_RULES = ("median", "lower", "higher")
"""How a tie between annotators' labels is broken (evals/agreement.py)."""
Label = Literal[LABELS]  # type: ignore[valid-type]
JudgeLabel = Literal[(*LABELS, "cannot judge")]  # type: ignore[valid-type]
CONFIDENCE_STEPS = [round(i / 10, 1) for i in range(11)]


def capped(n: int, description: str = ""):
    """A string the model sees with maxLength n, truncated rather than rejected when longer."""

    def cut(value: Any) -> Any:
        return value[:n] if isinstance(value, str) else value

    return Annotated[str, BeforeValidator(cut), Field(max_length=n, description=description)]


def _clamp_confidence(value: Any) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    if number > 1.0 and number <= 100.0:
        number = number / 100.0
    return round(min(1.0, max(0.0, number)), 1)


def first(n: int) -> BeforeValidator:
    """Keep the first n items of a list the model made too long (truncate, not reject)."""
    return BeforeValidator(lambda value: value[:n] if isinstance(value, list) else value)


Confidence = Annotated[
    float,
    BeforeValidator(_clamp_confidence),
    Field(json_schema_extra={"enum": CONFIDENCE_STEPS},
          description="How sure you are, 0.0 (guess) to 1.0 (certain)."),
]


# ---------------------------------------------------------------- inputs

class Product(BaseModel):
    """One product as the search engine returned it. Text fields are untrusted seller data."""

    # attribute docstrings become the field descriptions Studio and the server's schemas show
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    product_id: str = Field(min_length=1)
    """The shop's id of the product; one id names one product."""
    title: str = Field(min_length=1)
    """The product's title, as the shop shows it."""
    brand: str = ""
    """The brand, if the catalogue has one."""
    colour: str = ""
    """The colour, as the catalogue names it."""
    category: str = ""
    """The shop's category path or name."""
    description: str = ""
    """The seller's description (untrusted text, cut to a stated length in the prompt)."""
    attributes: dict[str, str] = Field(default_factory=dict)
    """Further catalogue attributes, name to value."""
    image: str = ""
    """Local path, http(s) URL or data URL; empty when the product has no packshot."""
    engine: str = ""
    """Which engine or configuration returned the product."""
    rank: int | None = None
    """Its position in that engine's results (1 = first)."""

    @field_validator("title", "product_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("product_id", "engine", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("rank", mode="before")
    @classmethod
    def _empty_rank(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        if value in ("", None):
            return {}
        if isinstance(value, str):
            value = json.loads(value)  # a ValueError here becomes a field error
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @field_validator("brand", "colour", "category", "description", "image", mode="before")
    @classmethod
    def _none_as_empty(cls, value: Any) -> Any:
        return "" if value is None else value


# ---------------------------------------------------------------- model outputs

RequirementKind = Literal[
    "product type", "category", "brand", "colour", "pattern", "material", "size/fit",
    "gender/age", "style", "price", "other",
]


class Requirement(BaseModel):
    kind: RequirementKind
    value: capped(40, "The words from the query this requirement is about.")
    importance: Literal["must", "should", "nice"]
    brand_or_literal: bool = Field(
        default=False,
        description="True if the term could be a brand name or an ordinary word.",
    )


class Requirements(BaseModel):
    reasoning: capped(200, "Short analysis of what the shopper wants.")
    requirements: Annotated[list[Requirement], first(6)] = Field(max_length=6)

    @property
    def ambiguous_terms(self) -> list[str]:
        return [r.value for r in self.requirements if r.brand_or_literal]


class Guidelines(BaseModel):
    highly_relevant: capped(300, "What makes a product highly relevant for this query.")
    acceptable_substitute: capped(300, "What makes a product an acceptable substitute.")
    irrelevant: capped(300, "What makes a product irrelevant for this query.")


class PackshotDescription(BaseModel):
    product_type: capped(60, "What the product is, as seen.")
    colours: Annotated[list[capped(30)], first(5)] = Field(
        max_length=5, description="Main colours, most first.")
    pattern: capped(60, "Pattern, e.g. plain, striped, checked, floral, logo print.")
    visible_text: capped(120, "Text or logo visible on the product, copied exactly; empty if none.")
    details: capped(300, "Cut, material and notable details.")



class RequirementVerdict(BaseModel):
    requirement: capped(40, "The requirement's value.")
    verdict: Literal["met", "partly", "not met", "cannot tell"]


def _same_requirement(verdict: str, value: str) -> bool:
    a, b = " ".join(verdict.casefold().split()), " ".join(value.casefold().split())
    return bool(a and b) and (a == b or a in b or b in a)


def check_against_inputs(verdicts: list[RequirementVerdict], label: str,
                         info: ValidationInfo) -> None:
    """A judgment must agree with its own inputs (the validation context the judge node
    passes: the query's requirements). Inconsistent answers are re-asked with the reason:
    a verdict about a requirement that was never extracted, or "highly relevant" while a
    must-requirement is "not met". Without a context (a cached answer read back) nothing
    is checked."""
    requirements = (info.context or {}).get("requirements")
    if not requirements:
        return
    values = [r["value"] for r in requirements]
    unknown = [v.requirement for v in verdicts
               if not any(_same_requirement(v.requirement, value) for value in values)]
    if unknown:
        raise ValueError(f"verdicts name requirements that were not extracted: {unknown}; "
                         f"give one verdict per requirement among {values}")
    if label == "highly relevant":
        musts = [r["value"] for r in requirements if r.get("importance") == "must"]
        unmet = [v.requirement for v in verdicts if v.verdict == "not met"
                 and any(_same_requirement(v.requirement, m) for m in musts)]
        if unmet:
            raise ValueError(f"label 'highly relevant' while must-requirements are not met: "
                             f"{unmet}; change the label or the verdicts")




class _Reasoned(BaseModel):
    """What every judgment starts with: the reasoning, then a verdict per requirement.
    Subclasses add the label (or grade) after them, keeping reasoning before the answer."""

    reasoning: capped(400, "Step by step: check each requirement against the product.")
    verdicts: Annotated[list[RequirementVerdict], first(6)] = Field(max_length=6)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> _Reasoned:
        check_against_inputs(self.verdicts, self.as_judgment()["label"], info)
        return self

    def as_judgment(self) -> dict[str, Any]:
        return self.model_dump()


class Judgment(_Reasoned):
    label: JudgeLabel
    confidence: Confidence
    brand_check: Literal["matches", "differs", "cannot confirm", "no brand asked"] = Field(
        description="Does the product's brand match a brand the query asks for?",
    )


class GradedJudgment(_Reasoned):
    """The 0–4 scale of Zalando's later production variant; mapped onto the three labels."""

    grade: Literal[0, 1, 2, 3, 4] = Field(description="4 exact … 0 irrelevant.")
    confidence: Confidence
    brand_check: Literal["matches", "differs", "cannot confirm", "no brand asked"]

    def as_judgment(self) -> dict[str, Any]:
        return {**self.model_dump(), "label": GRADE_TO_LABEL[self.grade]}


ErrorCategory = Literal["brand", "product type", "category", "attribute too strict",
                        "too lenient", "query misread", "other"]


class DisagreementCause(BaseModel):
    """Why a judge and people disagree by two steps (the paper's error analysis)."""

    explanation: capped(300, "What went wrong, in one or two sentences.")
    category: ErrorCategory


# ---------------------------------------------------------------- listwise judging

def list_ids(size: int) -> tuple[str, ...]:
    """The ids a listwise prompt gives its products: short, ours, never seller text."""
    return tuple(f"p{i}" for i in range(1, size + 1))


def _one_entry_per_position(schema: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    """The schema's list as a tuple: position k holds the judgment of product pk, the id a
    constant. A grammar-constrained model (llama.cpp turns `prefixItems` and `const` into
    its grammar) then writes every id once, in order, and cannot leave one out — measured on
    the offline demo, the 135M model left products out of a plain list. Validation stays the
    list's (fewer entries, other ids): what a provider that only reads the schema as a hint
    returns is still screened per product."""
    array = schema["properties"]["judgments"]
    item = schema["$defs"].pop("ListedJudgment")
    positions = []
    for pid in ids:
        entry = copy.deepcopy(item)
        entry["properties"]["product"] = {"const": pid, "type": "string",
                                          "description": "The product's id as listed."}
        positions.append(entry)
    array.pop("items")
    array["prefixItems"] = positions
    return schema


@lru_cache(maxsize=128)
def judgment_list(size: int, graded: bool = False) -> type[BaseModel]:
    """The answer to a listwise judge call of `size` products: one judgment per product id,
    the id first (the reasoning is about a named product), then the pairwise judgment's own
    fields in its order.

    Validation is per product: an entry that does not validate (or repeats an id) is set
    aside in `rejected` instead of failing the whole answer, so the judge node re-asks for
    that product alone. Consistency with the query's requirements is checked per product by
    the node (with the pairwise schema and its context), not here."""
    base = GradedJudgment if graded else Judgment
    ids = list_ids(size)
    fields: dict[str, Any] = {"product": (Literal[ids], Field(  # type: ignore[valid-type]
        description="The product's id as listed (p1, p2, …)."))}
    fields.update({name: (f.annotation, f) for name, f in base.model_fields.items()})
    item = create_model("ListedJudgment", **fields)

    class JudgmentList(BaseModel):
        judgments: list[item] = Field(  # type: ignore[valid-type]
            max_length=size, description="One judgment per listed product, in list order.",
            # in the schema only: a grammar-constrained model (llama.cpp) then writes one
            # entry per product; validation still takes fewer, and the node re-asks for those
            json_schema_extra={"minItems": size})
        rejected: SkipJsonSchema[list[str]] = Field(default_factory=list)

        @model_validator(mode="before")
        @classmethod
        def _screen(cls, data: Any) -> Any:
            if not isinstance(data, dict) or not isinstance(data.get("judgments"), list):
                return data
            kept: list[dict[str, Any]] = []
            rejected = [r for r in data.get("rejected") or [] if isinstance(r, str)]
            seen: set[str] = set()
            for number, entry in enumerate(data["judgments"], 1):
                try:
                    checked = item.model_validate(entry)
                except ValidationError as exc:
                    name = entry.get("product") if isinstance(entry, dict) else None
                    rejected.append(f"entry {number} ({name!r}): "
                                    f"{exc.errors()[0]['msg']}"[:300])
                    continue
                if checked.product in seen:
                    rejected.append(f"entry {number}: {checked.product} judged twice")
                    continue
                seen.add(checked.product)
                kept.append(checked.model_dump())
            return {"judgments": kept, "rejected": rejected}

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return _one_entry_per_position(super().model_json_schema(*args, **kwargs), ids)

    JudgmentList.__name__ = JudgmentList.__qualname__ = f"JudgmentList{size}"
    return JudgmentList
