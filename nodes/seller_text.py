"""Seller text is untrusted: defused before it reaches a prompt, checked for instructions.

Defences that hold whatever the model does:
- `defuse`: every angle bracket in seller text becomes a look-alike (‹ ›), so no variant of
  a tag (`</product_data foo="1">`, `< /query >`, `<system>`) can close or open the prompt's
  delimiters; zero-width and bidirectional control characters are dropped.
- `instruction_in`: looks for text that tries to instruct the judge, after normalising what
  attackers use to slip past a pattern: Unicode compatibility forms (NFKC: fullwidth
  letters), zero-width and bidi characters, look-alike letters from other scripts (the
  Unicode confusables table, through confusable-homoglyphs), and base64 blobs (decoded and
  checked). Patterns cover English, German, French, Spanish, Italian, Dutch and Chinese, and
  answers dressed as JSON (`"label": "highly relevant"`). The text of all fields is also
  checked joined, so a sentence split across title and description is still seen.
A pattern list is not a proof: `raer robustness` measures, per model, how often planted
text flips a label and how often this detector escalates it (evals/robustness.py).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from functools import lru_cache

from confusable_homoglyphs import confusables

_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f"
                        "\u202a-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0]")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")

_PATTERNS = [
    # English
    r"\b(ignore|disregard|forget|override)\W+(all\W+|any\W+|the\W+|of\W+|your\W+)*"
    r"((previous|prior|above|earlier|system|other)\W+)*(instructions?|rules|prompts?|guidelines"
    r"|directions|context)\b",
    r"\b(ignore|disregard|forget)\W+(all\W+|everything\W+)?(previous|prior|above|earlier)\b",
    r"\b(label|rate|classify|mark|judge|grade|score)\s+(this|it|the product|this product|"
    r"this item)\s+(as|a)\b",
    r"\b(you are|act as|pretend to be)\s+(now\s+)?(a|an|the)?\s*\w*\s*(assistant|language "
    r"model|judge|system|ai)\b",
    r"\bsystem prompt\b|\bnew instructions?\b|\bdeveloper mode\b",
    r"\b(rate|label|mark|classify|grade|score)\s+(this|it|the product|this product|this item)"
    r"\s+(as\s+)?(highly relevant|relevant|a perfect match|the best match)",
    r"\b(note|message|instruction)s?\s+(to|for)\s+(the\s+)?(relevance\s+)?(judge|rater|"
    r"annotator|reviewer|model|ai|assistant|llm)\b",
    r"\b(this|the) product is (always |definitely )?(highly )?relevant\b",
    r"\b(highly relevant|acceptable substitute)\b.{0,40}\b(regardless|no matter|whatever)\b",
    # German
    r"\b(ignorier\w*|vergiss|vergessen sie|missacht\w*)\b.{0,40}\b(anweisung\w*|vorherig\w*|"
    r"regeln|alles)",
    r"\b(bewerte|bewerten sie|markiere|markieren sie|stufe)\b.{0,40}\b(als|ein)\b.{0,30}"
    r"\b(relevant|passend)",
    # French
    r"\b(ignore[rz]?|oubliez|oublie)\b.{0,40}\b(instructions?|consignes?|précédent\w*|"
    r"precedent\w*)",
    r"\b(évalue[rz]?|evalue[rz]?|classe[rz]?|note[rz]?|marque[rz]?)\b.{0,40}\b(comme|en tant "
    r"que)\b.{0,30}\bpertinent",
    # Spanish
    r"\b(ignora|ignore|ignorar|olvida|olvide)\b.{0,40}\b(instrucciones|anteriores|previas)",
    r"\b(califica|calificar|clasifica|marca|eval[uú]a)\b.{0,40}\bcomo\b.{0,30}\brelevante",
    # Italian, Dutch
    r"\b(ignora|dimentica)\b.{0,40}\b(istruzioni|precedenti)",
    r"\b(negeer|vergeet)\b.{0,40}\b(instructies|vorige|eerdere)",
    # Chinese
    r"(忽略|无视|無視|忘记|忘記).{0,12}(指令|指示|说明|說明|规则|規則|之前|以上)",
    r"(标记|標記|评为|評為|评定|評定|判定|分类|分類).{0,12}(相关|相關)",
    # answers dressed as data, and our own tags
    r"[\"']?(label|verdict|confidence)[\"']?\s*[:=]\s*[\"']?(highly relevant|acceptable "
    r"substitute|irrelevant|0?\.\d+|1(\.0)?)\b",
    r"</?\s*(product_data|query|system|instructions?|assistant|user)\b",
]
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.DOTALL)


def defuse(text: str) -> str:
    """Seller text safe to place between the prompt's delimiters."""
    text = _INVISIBLE.sub("", text or "")
    return text.replace("<", "‹").replace(">", "›")


@lru_cache(maxsize=8192)
def _latin(char: str) -> str:
    if char.isascii() or not char.isalpha():
        return char
    found = confusables.is_confusable(char, preferred_aliases=["latin"], greedy=True)
    for homoglyph in (found[0]["homoglyphs"] if found else []):
        if homoglyph["c"].isascii() and homoglyph["c"].isalpha():
            return homoglyph["c"]
    return char


def normalise(text: str) -> str:
    """What a detector should read: compatibility forms folded, invisible characters
    dropped, look-alike letters mapped to Latin, case folded, spaces collapsed."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text or "")).casefold()
    text = "".join(_latin(c) for c in text)
    return " ".join(text.split())


def _decoded_blobs(text: str) -> list[str]:
    out = []
    for blob in _BASE64.findall(text or ""):
        try:
            decoded = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
            out.append(decoded.decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
    return out


def instruction_in(*texts: str) -> str:
    """The first instruction-like phrase in any text, in their join, or in a base64 blob
    they carry; '' when none is found."""
    candidates = [t for t in texts if t]
    candidates.append(" ".join(candidates))
    candidates += [blob for t in texts for blob in _decoded_blobs(t)]
    for text in candidates:
        match = _INSTRUCTION.search(normalise(text))
        if match:
            return match.group(0)[:80]
    return ""
