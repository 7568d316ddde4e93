"""Label Studio round trip: review tasks out, people's annotations back in.

Export: one task per pair with the query, the product as text, the packshot's URL and the
judge's label as a prediction (model version = the run, score = its confidence), plus the
labelling config that shows them (`LABEL_CONFIG`). Import: Label Studio's JSON export
("JSON" export type), each completed annotation a reviewer's decision in raer (reviewer
`label-studio:<annotator>`), or human labels for `raer agree`.

Every task carries raer's judgment id in its data, so an import matches by id, never by
position. An import is checked whole before anything is written: an unknown label, a task
without a judgment id or with one this store does not have, is an error naming the task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raer.nodes.image_source import image_kind
from raer.store import Store
from raer.store.scale import LABELS
from raer.store.store import product_of

FROM_NAME = "relevance"
NOTE_NAME = "note"
LABEL_CONFIG = f"""<View>
  <Header value="$query"/>
  <Image name="packshot" value="$image" maxWidth="420px"/>
  <Text name="product" value="$product_text"/>
  <Header value="Why the judge escalated it" size="6"/>
  <Text name="reasons" value="$reasons"/>
  <Choices name="{FROM_NAME}" toName="product" choice="single" showInLine="true" required="true">
{chr(10).join(f'    <Choice value="{label}" hotkey="{i}"/>' for i, label in enumerate(LABELS, 1))}
  </Choices>
  <TextArea name="{NOTE_NAME}" toName="product" placeholder="note (optional)" rows="2"/>
</View>
"""


class LabelStudioError(ValueError):
    """An export file that cannot be imported; the message names the task(s)."""


@dataclass(frozen=True)
class Annotation:
    task: str
    judgment_id: str
    annotator: str
    label: str
    note: str


def product_text(row: dict[str, Any]) -> str:
    attributes = product_of(row)["attributes"]
    lines = [row["title"], *(f"{k}: {row[k]}" for k in ("brand", "colour", "category")
                              if row.get(k))]
    lines += [f"{k}: {v}" for k, v in attributes.items()]
    if row.get("description"):
        lines.append(row["description"])
    return "\n".join(lines)


def export_tasks(store: Store, run_id: str, status: str | None = "open",
                 image_base: str = "") -> list[dict[str, Any]]:
    """Tasks for the run's review queue (`status` None: every escalated pair). A local
    packshot gets `image_base` + its judgment id (the review page's packshot route, e.g.
    http://127.0.0.1:8765/api/packshot/) when given, else no image."""
    rows = store.review_tasks(run_id, status)
    tasks = []
    for row in rows:
        image = row["image"] or ""
        if image_kind(image) != "web":
            image = f"{image_base}{row['judgment_id']}" if image and image_base else ""
        task: dict[str, Any] = {"data": {
            "judgment_id": row["judgment_id"], "run_id": run_id, "query": row["query"],
            "language": row["language"], "engine": row["engine"] or "", "rank": row["rank"],
            "product_id": row["id"], "product_text": product_text(row), "image": image,
            "reasons": "\n".join(json.loads(row["reasons"] or "[]"))}}
        if row["label"] in LABELS:
            task["predictions"] = [{
                "model_version": run_id, "score": row["confidence"],
                "result": [{"from_name": FROM_NAME, "to_name": "product", "type": "choices",
                            "value": {"choices": [row["label"]]}}]}]
        tasks.append(task)
    return tasks


def _annotator(annotation: dict[str, Any]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("username") or who.get("id")
    return f"label-studio:{who}" if who not in (None, "") else "label-studio"


def read_export(path: str | Path) -> list[Annotation]:
    """The completed, not cancelled annotations of a Label Studio JSON export. Every shape
    is checked: a mistyped field is named (task, annotation, result, field), never a
    traceback; nesting too deep for the parser is refused as not an export."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise LabelStudioError(f"{path}: not a Label Studio JSON export ({reason})") from exc
    if not isinstance(tasks, list):
        raise LabelStudioError(f"{path}: a Label Studio JSON export is a list of tasks")
    problems, out = [], []
    for position, task in enumerate(tasks):
        name = f"task {task.get('id', f'#{position + 1}')}" if isinstance(task, dict) else (
            f"task #{position + 1}")
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            problems.append(f"{name}: no data object")
            continue
        jid = task["data"].get("judgment_id")
        if not isinstance(jid, str) or not jid:
            problems.append(f"{name}: data.judgment_id missing (not a task raer exported)")
            continue
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            problems.append(f"{name}: annotations must be a list")
            continue
        for a_index, annotation in enumerate(annotations):
            where = f"{name}: annotations[{a_index}]"
            if not isinstance(annotation, dict):
                problems.append(f"{where}: must be an object")
                continue
            if annotation.get("was_cancelled"):
                continue
            label, note, results = None, "", annotation.get("result") or []
            if not isinstance(results, list):
                problems.append(f"{where}.result: must be a list")
                continue
            for r_index, result in enumerate(results):
                field = f"{where}.result[{r_index}]"
                value = result.get("value") if isinstance(result, dict) else None
                if not isinstance(value, dict):
                    problems.append(f"{field}.value: must be an object")
                    continue
                if result.get("from_name") == FROM_NAME:
                    choices = value.get("choices") or []
                    if not _strings(choices):
                        problems.append(f"{field}.value.choices: must be a list of labels")
                        continue
                    label = choices[0] if len(choices) == 1 else choices
                elif result.get("from_name") == NOTE_NAME:
                    text = value.get("text") or []
                    if not _strings(text):
                        problems.append(f"{field}.value.text: must be a list of strings")
                        continue
                    note = " ".join(text)
            if label is None:
                continue  # an annotation without a relevance choice (skipped)
            if label not in LABELS:
                problems.append(f"{name}: label {label!r} is not one of {list(LABELS)}")
                continue
            out.append(Annotation(str(task.get("id", position + 1)), jid, _annotator(annotation),
                                  label, note))
    if problems:
        raise LabelStudioError(f"{path}: " + "; ".join(problems[:20])
                               + (f"; … {len(problems) - 20} more" if len(problems) > 20 else ""))
    return out


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def check_known(store: Store, annotations: list[Annotation], path: str | Path) -> None:
    known = store.known_judgments(a.judgment_id for a in annotations)
    missing = [f"task {a.task}: judgment {a.judgment_id} is not in {store.path}"
               for a in annotations if a.judgment_id not in known]
    if missing:
        raise LabelStudioError(f"{path}: " + "; ".join(missing))
