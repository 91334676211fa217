"""Node /recommendation/server: the Recommend service on the store's catalog and purchase history.

When the sync swaps in a new catalog or history (a `/sync/data_updates` message, or a changed file
seen by the mtime watch), the new model is built on a worker thread while requests keep being
answered by the old one; the reference is then swapped in one assignment, so no request waits or
is dropped during a reload. Training includes choosing the blend by validation on the store's
history (seconds; see training.py); at start-up a model with the prior settings answers until
then. The chosen settings and their validation score are logged and in /diagnostics.

A returning member's profile (what she said on an earlier visit, in any store: `Store.profiles`
from `<data_dir>/platform/profiles.json`, retail_common.profiles) shapes her recommendations and
says so in their reasons (retail_recommendation.profile); no change to the Recommend service.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from retail_common import names
from retail_common.catalog import CatalogError, load_catalog
from retail_common.live_store import LiveStore
from retail_common.profiles import sentence_for
from retail_ros.node_support import declare_params, diagnostic_status, main_for
from retail_common.store import StoreError
from retail_ros.params import ParamSpec
from retail_ros.qos import latched
from retail_interfaces.msg import DataUpdate, RecommendedItem
from retail_interfaces.srv import Recommend
from retail_recommendation.history import HistoryError, load_history
from retail_recommendation.profile import recommend_with_profile
from retail_recommendation.recommender import Constraints, Recommender, Settings
from retail_recommendation.training import train

PARAMS = [
    ParamSpec('store_dir', '', 'store folder holding catalog.csv and history.csv'),
    ParamSpec('data_dir', '', "robot data folder: the platform's data in <data_dir>/platform overlays the store"),
    ParamSpec('catalog_path', '', 'catalog CSV (default: <store_dir>/catalog.csv)'),
    ParamSpec('history_path', '', 'purchase history CSV (default: <store_dir>/history.csv)'),
    ParamSpec('watch_period_s', 2.0, 'how often the files are checked for changes (0: never)', min=0.0),
    ParamSpec('default_k', 3, 'items returned when a request asks for k = 0', min=1, max=50),
    ParamSpec('max_k', 20, 'most items one request may get', min=1, max=200),
    ParamSpec('diagnostics_period_s', 2.0, 'how often the model state goes to /diagnostics', min=0.1),
]
MAX_ISSUES_LOGGED = 10


@dataclass(frozen=True)
class _Sources:
    catalog: Path
    history: Path


def _stamp(path: Path) -> tuple[float, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class RecommendationServer(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('server', **kwargs)
        self.params = declare_params(self, PARAMS)
        store = Path(self.params.store_dir) if self.params.store_dir else Path.cwd()
        self._sources = _Sources(
            Path(self.params.catalog_path) if self.params.catalog_path else store / 'catalog.csv',
            Path(self.params.history_path) if self.params.history_path else store / 'history.csv')
        # The store model (catalog with the platform's prices and promotions, the history in use),
        # unless explicit files were given.
        self._use_store = bool(self.params.store_dir and not (self.params.catalog_path or self.params.history_path))
        self._live: LiveStore | None = None
        self._model: Recommender | None = None
        self._model_stamps: tuple = ()  # (path, mtime/size) of the files last read
        self._trained: tuple | None = None  # (catalog, file stamps) the model in use was trained on
        self._problem = 'not loaded yet'
        self._reload_wanted = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # guards _sources
        self._worker = threading.Thread(target=self._reload_loop, name='recommendation-reload', daemon=True)

        self.create_service(Recommend, 'recommend', self._on_recommend,
                            callback_group=ReentrantCallbackGroup())
        self.create_subscription(DataUpdate, names.DATA_UPDATES, self._on_data_update,
                                 latched(10),
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self._diagnostics = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.create_timer(self.params.diagnostics_period_s, self._publish_diagnostics)
        if self.params.watch_period_s > 0:
            self.create_timer(self.params.watch_period_s, self._check_files,
                              callback_group=MutuallyExclusiveCallbackGroup())
        self._reload_wanted.set()
        self._worker.start()

    # ------------------------------------------------------------ loading
    def _stamps(self, sources: _Sources) -> tuple:
        return (str(sources.catalog), _stamp(sources.catalog), str(sources.history), _stamp(sources.history))

    def _check_files(self) -> None:
        with self._lock:
            sources = self._sources
        if self._stamps(sources) != self._model_stamps:
            self._reload_wanted.set()

    def _on_data_update(self, msg: DataUpdate) -> None:
        kind, path = msg.kind.strip(), msg.path.strip()
        with self._lock:
            if self._use_store:
                pass                    # the worker reloads the whole store
            elif kind == 'catalog' and path:
                self._sources = _Sources(Path(path), self._sources.history)
            elif kind == 'histories' and path:
                self._sources = _Sources(self._sources.catalog, Path(path))
            elif kind != 'promotions':  # promotions arrive inside the catalog file
                return
        self.get_logger().info(f'New {kind} from the sync ({path or "same file"}, version '
                               f'{msg.version or "?"}): reloading')
        self._reload_wanted.set()

    def _reload_loop(self) -> None:
        while not self._stopping.is_set():
            if not self._reload_wanted.wait(timeout=0.5) or self._stopping.is_set():
                continue
            self._reload_wanted.clear()
            if self._use_store:
                store = self._reload_store()
                if store is None:
                    continue
                with self._lock:
                    self._sources = _Sources(Path(store.catalog.path),
                                             store.history_path or self._sources.history)
                    sources = self._sources
                if self._model is not None and self._trained == (store.catalog, self._stamps(sources)):
                    # profiles, campaigns, appointments: read from the store at each request; training
                    # again (seconds of both cores) is for a new catalog or purchase history only
                    self.get_logger().info('store reloaded; catalog and purchase history unchanged: '
                                           'recommendations kept')
                    continue
                self._load(sources, store.catalog)
                continue
            with self._lock:
                sources = self._sources
            self._load(sources)

    def _reload_store(self):
        """The store model (catalog with the platform's prices and promotions, the history in
        use), or None with the reason reported (once while it stays the same)."""
        problem = None
        try:
            if self._live is None:
                self._live = LiveStore(self.params.store_dir, self.params.data_dir or None,
                                       log=self.get_logger().warning, warn=self.get_logger().warning)
            elif not self._live.reload():
                problem = self._live.last_error or 'the store did not load'
        except StoreError as exc:
            problem = str(exc)
        if problem is None and not self._live.current().catalog.products:
            store = self._live.current()
            problem = next((i for i in store.issues if 'catalog' in i), f'no products in {store.catalog.path}')
        if problem is not None:
            if problem != self._problem:
                self._fail(problem)
            return None
        return self._live.current()

    def _load(self, sources: _Sources, catalog=None) -> None:
        # The files as read now: the watch asks again only if they change after this point.
        self._model_stamps = self._stamps(sources)
        started = time.perf_counter()
        try:
            catalog = catalog if catalog is not None else load_catalog(sources.catalog)
        except CatalogError as exc:
            self._fail(str(exc))
            return
        history = None
        history_note = ''
        if sources.history.is_file():
            try:
                history = load_history(sources.history, catalog.by_sku)
            except HistoryError as exc:
                history_note = f'; {exc}: best sellers unknown, suggesting by promotions and stock'
        else:
            history_note = f'; no purchase history at {sources.history}: suggestions for new customers only'
        for origin, issues in ((sources.catalog, catalog.issues),
                               (sources.history, history.issues if history else [])):
            for issue in issues[:MAX_ISSUES_LOGGED]:
                self.get_logger().warning(f'{origin}: {issue} (skipped)')
            if len(issues) > MAX_ISSUES_LOGGED:
                self.get_logger().warning(f'{origin}: {len(issues) - MAX_ISSUES_LOGGED} more bad rows skipped')
        if self._model is None:  # answer at once with the prior settings while validation runs
            self._model = Recommender(catalog, history, settings=Settings())
        model = train(catalog, history)  # validation chooses the settings (seconds)
        self._model = model  # one reference assignment: requests see the old or the new model
        self._trained = (catalog, self._model_stamps)
        self._problem = history_note.lstrip('; ')
        self.get_logger().info(
            f'Recommendations ready: {len(catalog)} products, {model.purchase_rows} purchases by '
            f'{model.n_customers} members, built in {time.perf_counter() - started:.2f} s{history_note}')
        self.get_logger().info(f'Recommendation settings: {model.settings.describe()}; {model.validation.describe()}')

    def _fail(self, problem: str) -> None:
        self._problem = problem
        if self._model is None:
            self.get_logger().error(f'No recommendations yet: {problem}')
        else:
            self.get_logger().error(f'{problem}; keeping the previous catalog and history')

    # ------------------------------------------------------------ service
    def _on_recommend(self, request: Recommend.Request, response: Recommend.Response) -> Recommend.Response:
        model = self._model
        if model is None:
            response.success = False
            response.message = f'recommendations unavailable: {self._problem}'
            return response
        k = min(int(request.k) or self.params.default_k, self.params.max_k)
        constraints = Constraints(category=request.category.strip(), brand=request.brand.strip(),
                                  min_price=max(float(request.min_price_cny), 0.0),
                                  max_price=max(float(request.max_price_cny), 0.0))
        customer = request.customer_id.strip()
        profile = self._live.current().profile_of(customer) if self._live is not None else None
        if profile is not None:     # a returning member: what she said on an earlier visit
            items, used = recommend_with_profile(model, customer, constraints, profile, k,
                                                 sentence=sentence_for(profile, model.catalog))
            if used:
                self.get_logger().info(f'Recommendations for a returning member shaped by her '
                                       f'profile ({len(items)} item(s))')
        else:
            items = model.recommend(customer, constraints, k)
        response.items = [RecommendedItem(
            sku=r.sku, name_zh=r.product.name_zh, name_en=r.product.name_en,
            category=r.product.category, brand=r.product.brand, price_cny=r.product.price_cny,
            zone=r.product.zone, score=r.score, reason_zh=r.reason_zh, reason_en=r.reason_en,
            promotion=r.product.promotion) for r in items]
        response.success = True
        response.message = (f'{len(items)} item(s)' if items
                            else 'nothing in stock matches the request')
        return response

    # ------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        model = self._model
        if model is None:
            status = diagnostic_status('recommendation/server', DiagnosticStatus.ERROR,
                                       f'no model: {self._problem}')
        else:
            level = DiagnosticStatus.WARN if self._problem else DiagnosticStatus.OK
            status = diagnostic_status(
                'recommendation/server', level, self._problem or 'ready',
                {'products': len(model.products), 'purchases': model.purchase_rows,
                 'members': model.n_customers, 'build_s': f'{model.fit_seconds:.2f}',
                 'settings': model.settings.describe(),
                 'catalog': model.catalog.path})
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)

    def destroy_node(self) -> None:
        self._stopping.set()
        self._reload_wanted.set()
        if self._worker.is_alive():
            self._worker.join(timeout=5)
        super().destroy_node()


main = main_for(RecommendationServer)
