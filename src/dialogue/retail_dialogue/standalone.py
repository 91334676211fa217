"""Recommendations without the robot running: the recommendation package's core in-process, or,
when that package is not installed, the catalog's in-stock matches (cheapest first), said so."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from retail_common.catalog import Catalog

from .manager import RecommendedProduct, RecommendQuery

Recommend = Callable[[RecommendQuery], list[RecommendedProduct]]


def catalog_recommender(catalog: Catalog) -> Recommend:
    """In-stock products within the constraints, cheapest first, with a plain reason."""
    def recommend(query: RecommendQuery) -> list[RecommendedProduct]:
        items = [p for p in catalog.products if p.in_stock
                 and (not query.category or p.category == query.category)
                 and (not query.brand or p.brand == query.brand)
                 and p.price_cny >= query.min_price and (query.max_price <= 0 or p.price_cny <= query.max_price)]
        items.sort(key=lambda p: (not p.promotion, p.price_cny))
        return [RecommendedProduct(p.sku, p.name_zh, p.name_en, p.price_cny, p.zone,
                                   f'符合您的要求，有现货{("，" + p.promotion) if p.promotion else ""}',
                                   f'fits what you asked, in stock{("; " + p.promotion) if p.promotion else ""}',
                                   p.promotion) for p in items[:query.k]]
    return recommend


def core_recommender(catalog: Catalog, store_dir: Path) -> tuple[Recommend, str]:
    """The recommendation core if importable (with the store's history.csv when present)."""
    try:
        from retail_recommendation.history import load_history
        from retail_recommendation.recommender import Constraints, Recommender
    except ImportError as exc:
        return catalog_recommender(catalog), f'recommendation core not available ({exc}); using catalog matches'
    history_path = store_dir / 'history.csv'
    history = load_history(history_path, known_skus=catalog.by_sku) if history_path.is_file() else None
    model = Recommender(catalog, history)

    def recommend(query: RecommendQuery) -> list[RecommendedProduct]:
        constraints = Constraints(category=query.category, brand=query.brand, min_price=query.min_price,
                                  max_price=query.max_price)
        return [RecommendedProduct(r.product.sku, r.product.name_zh, r.product.name_en, r.product.price_cny,
                                   r.product.zone, r.reason_zh, r.reason_en, r.product.promotion)
                for r in model.recommend(query.customer_id, constraints, k=query.k)]
    return recommend, f'recommendations from retail_recommendation ({"with" if history else "without"} purchase history)'
