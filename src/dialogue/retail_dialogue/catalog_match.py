"""What the recogniser heard, matched to the store's catalogue with a confidence. Pure: no rclpy.

The ASR node runs every final result through `CatalogMatcher.match` and publishes the product
it found on the utterance (`product_sku`, `product_confidence`, `catalog_text`); the dialogue
asks the customer to confirm a product whose confidence is below its threshold ("您是说美的空气炸锅
吗？") instead of guessing (behaviours/confirm_product.py).

Evidence, strongest first (the entity index is the NLU's own `Lexicon`, so both read the
catalogue the same way):
- the product's name or alias, exactly: lexical score 1.0;
- a mis-hearing the lexicon accepts (same pinyin 花为 → 华为, one typo away): 0.5;
- a near spelling of a whole product name (`media air fryer` → Midea air fryer, `Huawei Mate 6
  Pro` → Huawei Mate 60 Pro), when no product, and not a brand with a kind ("美的空气炸锅"), was
  named exactly; of the brand named, if one was; one product clearly best: 0.5 × similarity.
The product's confidence is the lexical score × the recogniser's own confidence of the
utterance, so a name not heard exactly always stays below 0.5 (confirmed) and an exact name is
confirmed only when the recogniser itself was unsure. Bounded work: the text is cut at
MAX_TEXT_CHARS; similarity is rapidfuzz's (no backtracking).
"""
from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from retail_common.catalog import Catalog, Product

from .lexicon import Lexicon, _without_sizes, normalize, tokenize

MAX_TEXT_CHARS = 300
INEXACT_SCORE = 0.5          # a mis-hearing the lexicon accepts
FUZZY_WEIGHT = 0.5           # × similarity for a near spelling of a whole name
FUZZY_MIN_SIMILARITY = 0.8   # below this a near spelling is no evidence
FUZZY_MARGIN = 0.05          # the best product must beat every other product by this much
FUZZY_MIN_CHARS = (3, 6)     # shortest compact name compared (Chinese, Latin)


@dataclass(frozen=True)
class HeardProduct:
    sku: str
    confidence: float        # 0..1: lexical evidence × the recogniser's confidence
    catalog_text: str        # the utterance with the heard name written as the catalogue writes it
    exact: bool


def _compact_with_offsets(text: str) -> tuple[str, list[int], list[int]]:
    """The tokens of normalized `text` joined, with each compact character's start/end offset."""
    chars, starts, ends = [], [], []
    for token in tokenize(text):
        for i, ch in enumerate(token.text):
            chars.append(ch)
            starts.append(token.start + i)
            ends.append(token.start + i + 1)
    return ''.join(chars), starts, ends


def _best_window(name: str, compact: str, end: int) -> tuple[float, int, int]:
    """The stretch of `compact` around where rapidfuzz aligned `name` (ending near `end`) that
    is most like the whole name: (similarity 0..1, start, end), similarity by edit distance (a
    wrong character counts once); of equals, the stretch closest to the name's length. Bounded."""
    best, best_key = (0.0, 0, 0), (0.0, 0)
    for stop in range(max(1, end - 2), min(len(compact), end + 2) + 1):
        for begin in range(max(0, stop - len(name) - 2), max(0, stop - len(name) + 2) + 1):
            if begin < stop:
                score = Levenshtein.normalized_similarity(name, compact[begin:stop])
                key = (round(score, 6), -abs(stop - begin - len(name)))
                if key > best_key:
                    best, best_key = (score, begin, stop), key
    return best


class CatalogMatcher:
    """Product mentions of one store's catalogue in recognised text."""

    def __init__(self, catalog: Catalog, zones: dict | None = None) -> None:
        self.catalog = catalog
        self.lexicon = Lexicon(catalog, dict(zones or {}))
        self._names: list[tuple[str, str]] = []       # (compact name without sizes, sku)
        for product in catalog.products:
            for surface in (product.name_zh, product.name_en, *product.aliases):
                compact = ''.join(t.text for t in tokenize(_without_sizes(surface)))
                shortest = FUZZY_MIN_CHARS[0] if not compact.isascii() else FUZZY_MIN_CHARS[1]
                if len(compact) >= shortest:
                    self._names.append((compact, product.sku))

    def match(self, text: str, language: str, asr_confidence: float = 1.0) -> HeardProduct | None:
        """The product named in `text` (the first, longest mention), or None."""
        norm = normalize(text[:MAX_TEXT_CHARS])
        asr_confidence = min(1.0, max(0.0, float(asr_confidence)))
        found = self.lexicon.match(norm)
        for m in found:
            if m.term.kind == 'product' and len(m.term.values) == 1:
                product = self.catalog.by_sku[m.term.values[0]]
                score = 1.0 if m.exact else INEXACT_SCORE
                return self._heard(product, norm, m.start, m.end, language, score * asr_confidence, m.exact)
        named = {m.term.kind: m.term.values[0] for m in found if m.exact}
        if 'product' in named or ('brand' in named and 'category' in named):
            return None          # a brand and a kind said clearly ("美的空气炸锅"): the customer's words, not a guess
        return self._near_spelling(norm, language, asr_confidence, named.get('brand', ''))

    def _near_spelling(self, norm: str, language: str, asr_confidence: float, brand: str) -> HeardProduct | None:
        """A whole product name spelled nearly (of the brand named, when one was)."""
        compact, starts, ends = _compact_with_offsets(norm)
        if not compact:
            return None
        best: dict[str, tuple[float, int, int]] = {}
        for name, sku in self._names:
            if brand and self.catalog.by_sku[sku].brand != brand:
                continue
            alignment = fuzz.partial_ratio_alignment(name, compact, score_cutoff=FUZZY_MIN_SIMILARITY * 100)
            if alignment is None:
                continue
            score, start, end = _best_window(name, compact, alignment.dest_end)
            if score >= FUZZY_MIN_SIMILARITY and score > best.get(sku, (0.0, 0, 0))[0]:
                best[sku] = (score, start, end)
        if not best:
            return None
        ranked = sorted(best.items(), key=lambda item: -item[1][0])
        sku, (score, start, end) = ranked[0]
        if len(ranked) > 1 and score - ranked[1][1][0] < FUZZY_MARGIN:
            return None          # two products about as near: no guess worth asking about
        product = self.catalog.by_sku[sku]
        return self._heard(product, norm, starts[start], ends[end - 1], language,
                           FUZZY_WEIGHT * score * asr_confidence, False)

    @staticmethod
    def _heard(product: Product, norm: str, start: int, end: int, language: str, confidence: float,
               exact: bool) -> HeardProduct:
        name = product.name_zh if language.startswith('zh') else product.name_en
        pad = '' if language.startswith('zh') else ' '
        catalog_text = f'{norm[:start]}{pad}{name}{pad}{norm[end:]}'.strip() if not exact else norm
        return HeardProduct(product.sku, round(confidence, 3), ' '.join(catalog_text.split()), exact)
