"""The dialogue without the robot: a store, the core, and in-process stand-ins for the other nodes.

`StandaloneRobot` carries out the core's effects the way the node does, with the rest of the
robot simulated so a whole conversation can be tried at a desk or in a test:
- recommendations come from the recommendation package's core in-process (or, when that package
  is not installed, the catalog's in-stock matches, cheapest first, said so);
- a guide goal arrives at once (its GuideTo result is fed back as success);
- a tour moves one stop per customer line: the first stop is presented when the tour starts, the
  next after each later line (so "next", "skip", "stop" and questions mid-tour can be tried), the
  Tour result after the last stop; a skipped stop is left out, as the guide does;
- enrolment fails (there is no camera), so the customer hears the staff alternative;
- staff requests and recorded events are kept for the caller.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from retail_common.catalog import Catalog

from .sizes import fits_size

from .manager import (AskRecommendations, CallStaff, CancelMission, DialogueManager, Effect, Enrol, Record,
                      RecommendedProduct, RecommendQuery, SkipStop, StartGuide, StartTour)

Recommend = Callable[[RecommendQuery], list[RecommendedProduct]]


def catalog_recommender(catalog: Catalog) -> Recommend:
    """In-stock products within the constraints, cheapest first, with a plain reason."""
    def recommend(query: RecommendQuery) -> list[RecommendedProduct]:
        items = [p for p in catalog.products if p.in_stock and query.constraints.admits(p, fits_size)]
        items.sort(key=lambda p: (not p.promotion, p.price_cny))
        return [RecommendedProduct(p.sku, p.name_zh, p.name_en, p.price_cny, p.zone,
                                   '符合您的要求，有现货', 'fits what you asked, in stock', p.promotion)
                for p in items[:query.k]]
    return recommend


def core_recommender(catalog: Catalog, store_dir: Path) -> tuple[Recommend, str]:
    """The recommendation core if importable (with the store's history.csv when present)."""
    try:
        from retail_recommendation.history import load_history
        from retail_recommendation.training import train
    except ImportError as exc:
        return catalog_recommender(catalog), f'recommendation core not available ({exc}); using catalog matches'
    history_path = store_dir / 'history.csv'
    history = load_history(history_path, known_skus=catalog.by_sku) if history_path.is_file() else None
    model = train(catalog, history)

    def recommend(query: RecommendQuery) -> list[RecommendedProduct]:
        constraints = query.constraints          # the recommender's own type
        return [RecommendedProduct(r.product.sku, r.product.name_zh, r.product.name_en, r.product.price_cny,
                                   r.product.zone, r.reason_zh, r.reason_en, r.product.promotion)
                for r in model.recommend(query.customer_id, constraints, k=query.k)]
    return recommend, f'recommendations from retail_recommendation ({"with" if history else "without"} purchase history)'


@dataclass
class _Tour:
    track_id: int
    route: str
    zones: tuple[str, ...]
    next_index: int = 0
    skipped: set[int] = field(default_factory=set)


@dataclass
class StandaloneRobot:
    """Carries out the core's effects in-process (see the module docstring)."""
    manager: DialogueManager
    recommend: Recommend
    on_effect: Callable[[Effect], None] = lambda effect: None
    staff_requests: list[dict] = field(default_factory=list)
    events: list[Record] = field(default_factory=list)
    _tour: _Tour | None = None

    def run(self, effects: list[Effect]) -> list[Effect]:
        """Carry out `effects` and everything they lead to; returns all of them, in order."""
        done: list[Effect] = []
        queue = list(effects)
        while queue:
            effect = queue.pop(0)
            done.append(effect)
            self.on_effect(effect)
            if isinstance(effect, Record):
                self.events.append(effect)
            elif isinstance(effect, CallStaff):
                self.staff_requests.append(effect.request)
            elif isinstance(effect, AskRecommendations):
                queue.extend(self.manager.on_recommendations(effect.query.track_id, self.recommend(effect.query)))
            elif isinstance(effect, StartGuide):
                queue.extend(self.manager.on_guide_result(effect.track_id, effect.zone, True, 'arrived'))
            elif isinstance(effect, StartTour):
                stops = self.manager.store.tours.get(effect.route, ())
                self._tour = _Tour(effect.track_id, effect.route, tuple(s.zone for s in stops))
                queue.extend(self._advance_tour())
            elif isinstance(effect, CancelMission):
                self._tour = None
            elif isinstance(effect, SkipStop) and self._tour is not None and effect.stop_index >= self._tour.next_index:
                self._tour.skipped.add(effect.stop_index)
            elif isinstance(effect, Enrol):       # no camera here: nobody's face can be enrolled
                queue.extend(self.manager.on_enrolled(effect.track_id, effect.customer_id, effect.display_name, False))
        return done

    def _advance_tour(self) -> list[Effect]:
        tour = self._tour
        if tour is None:
            return []
        while tour.next_index in tour.skipped:
            tour.next_index += 1
        index = tour.next_index
        tour.next_index += 1
        if index >= len(tour.zones) - 1:
            self._tour = None
            return self.manager.on_tour_result(tour.track_id, True, 'arrived', len(tour.zones) - len(tour.skipped))
        effects = self.manager.on_tour_stop(tour.track_id, index, tour.zones[index])
        if all(i in tour.skipped for i in range(index + 1, len(tour.zones))):      # the rest left out: the end
            self._tour = None
            effects += self.manager.on_tour_result(tour.track_id, True, 'arrived', len(tour.zones) - len(tour.skipped))
        return effects

    def end_missions(self) -> None:
        """The simulated robot drops a tour in progress (its customer has gone)."""
        self._tour = None

    def customer(self, track_id: int, customer_id: str = '', name: str = '', vip: bool = False) -> list[Effect]:
        return self.run(self.manager.on_customer(track_id, customer_id, name, vip))

    def say(self, track_id: int, text: str) -> list[Effect]:
        """One customer line; a tour in progress moves on to its next stop afterwards."""
        touring = self._tour is not None
        effects = self.run(self.manager.on_utterance(track_id, text))
        if touring and self._tour is not None:
            effects += self.run(self._advance_tour())
        return effects

