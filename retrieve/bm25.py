"""A local engine: BM25 (bm25s) over a catalogue file, so the demo and the tests retrieve from
real rankers, and a team can put a lexical baseline beside its engine on its own catalogue.

The catalogue is a products file (JSONL/CSV/Parquet with raer's product fields); image paths
in it are read relative to the catalogue's folder. BM25 has no field weights: `boost`
repeats a field's text, the usual way to weight fields in a single-field index.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from raer.nodes.inputs import resolve_image
from raer.retrieve.config import Bm25, EngineConfigError, EngineFile
from raer.retrieve.query_set import Query


def read_catalogue(path: Path) -> list[dict[str, Any]]:
    """The catalogue's products (evals/trec.py reads the file, an id given twice refused),
    their local packshots made absolute against the catalogue's folder."""
    from raer.evals.trec import read_catalogue as products_of

    rows = [p.model_dump() for p in products_of(path, unique=True).values()]
    for row in rows:
        row["image"] = resolve_image(row["image"], path.parent) if row["image"] else ""
    return rows


@cache
def _index(catalogue: Path, stamp: float, fields: tuple[str, ...], boost: tuple, k1: float,
           b: float, method: str, stopwords: str):
    try:
        import bm25s
    except ImportError:  # the evals extra
        raise EngineConfigError("a bm25 engine needs bm25s: pip install 'raer[evals]'") from None
    products = read_catalogue(catalogue)
    weights = dict(boost)
    texts = [" ".join(" ".join([str(p[f])] * weights.get(f, 1)) for f in fields if p[f])
             for p in products]
    retriever = bm25s.BM25(k1=k1, b=b, method=method)
    retriever.index(bm25s.tokenize(texts, stopwords=stopwords, show_progress=False),
                    show_progress=False)
    return retriever, products


async def search(loaded: EngineFile, queries: list[Query]) -> list[list[dict[str, Any]]]:
    import bm25s

    engine = loaded.engine
    assert isinstance(engine, Bm25)
    catalogue = loaded.catalogue_path()
    retriever, products = _index(catalogue, catalogue.stat().st_mtime, tuple(engine.fields),
                                 tuple(sorted(engine.boost.items())), engine.k1, engine.b,
                                 engine.method, engine.stopwords)
    out = []
    for query in queries:
        tokens = bm25s.tokenize([query.text], stopwords=engine.stopwords, return_ids=False,
                                show_progress=False)[0]
        if not tokens:  # no word BM25 can use ("to"): no result, as an engine would say
            out.append([])
            continue
        scores = retriever.get_scores(tokens)
        ranked = sorted(range(len(products)), key=lambda i: (-scores[i],
                                                             products[i]["product_id"]))
        out.append([dict(products[i]) for i in ranked[:engine.k] if scores[i] > 0])
    return out
