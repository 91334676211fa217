"""Entity index built from a store's catalog at run time: products, brands, categories, places.

Why an index rather than a product list: the robot moves between stores, and each store's catalog
is the only source of what customers can ask for. Matching works on a token sequence where each
Chinese character is a token and Latin text is split into letter and digit runs ("iPhone16" →
iphone, 16), so "iPhone 16" and "iphone16" are the same, and boundaries keep "X50" out of "X500".
Three kinds of evidence are accepted, strongest first: exact tokens; Chinese characters with the
same pinyin (speech recognition writes 花为 for 华为); Latin words one typo away (huawie).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import warnings

with warnings.catch_warnings():
    warnings.simplefilter('ignore')     # jieba's pkg_resources deprecation notice
    import jieba
import opencc
from pypinyin import lazy_pinyin
from rapidfuzz.distance import OSA

from retail_common.catalog import Catalog, Product

from .places import PLACE_WORDS, service_places
from .sizes import find_sizes, fits_size

jieba.setLogLevel(60)

_TOKEN = re.compile(r'[\u3400-\u9fff]|[a-z]+|\d+(?:\.\d+)?')
_HAN = re.compile(r'[\u3400-\u9fff]')

# Extra words for common product types, used only for categories the catalog has.
CATEGORY_SYNONYMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    'phone': (('手机', '智能手机'), ('phone', 'phones', 'mobile', 'mobile phone', 'cellphone', 'cell phone', 'smartphone', 'smartphones')),
    'smartwatch': (('手表', '智能手表', '手环', '智能手环'), ('smartwatch', 'smart watch', 'watch', 'watches', 'smartwatches', 'fitness band')),
    'tablet': (('平板', '平板电脑'), ('tablet', 'tablets')),
    'phone_accessory': (('手机配件', '配件', '充电器', '充电头', '充电线', '数据线'), ('charger', 'chargers', 'cable', 'accessory', 'accessories', 'phone accessories')),
    'laptop': (('笔记本', '笔记本电脑', '电脑', '手提电脑'), ('laptop', 'laptops', 'notebook', 'computer', 'computers')),
    'desktop': (('台式机', '台式电脑'), ('desktop', 'desktop computer', 'pc')),
    'monitor': (('显示器', '屏幕'), ('monitor', 'monitors', 'display', 'screen')),
    'printer': (('打印机',), ('printer', 'printers')),
    'printer_ink': (('墨盒', '墨水', '硒鼓', '粉盒', '碳粉'), ('ink', 'ink cartridge', 'ink cartridges', 'toner', 'cartridge', 'cartridges')),
    'tv': (('电视', '电视机', '彩电'), ('tv', 'tvs', 'television', 'televisions')),
    'projector': (('投影仪', '投影机'), ('projector', 'projectors')),
    'headphones': (('耳机', '耳麦', '蓝牙耳机'), ('headphones', 'headphone', 'earphones', 'earbuds', 'headset')),
    'speaker': (('音箱', '音响', '蓝牙音箱'), ('speaker', 'speakers', 'bluetooth speaker')),
    'camera': (('相机', '照相机', '微单', '单反'), ('camera', 'cameras')),
    'drone': (('无人机', '航拍机'), ('drone', 'drones')),
    'game_console': (('游戏机', '游戏主机'), ('game console', 'games console', 'console', 'consoles', 'gaming console')),
    'air_fryer': (('空气炸锅', '炸锅'), ('air fryer', 'air fryers')),
    'rice_cooker': (('电饭煲', '电饭锅'), ('rice cooker', 'rice cookers')),
    'microwave': (('微波炉',), ('microwave', 'microwaves', 'microwave oven')),
    'oven': (('烤箱',), ('oven', 'ovens')),
    'coffee_machine': (('咖啡机',), ('coffee machine', 'coffee maker', 'espresso machine')),
    'coffee_capsule': (('咖啡胶囊', '胶囊'), ('coffee capsules', 'capsules', 'coffee pods', 'pods')),
    'kettle': (('电水壶', '烧水壶', '热水壶'), ('kettle', 'kettles', 'electric kettle')),
    'blender': (('破壁机', '料理机', '榨汁机'), ('blender', 'blenders', 'juicer')),
    'refrigerator': (('冰箱',), ('fridge', 'fridges', 'refrigerator', 'refrigerators')),
    'washing_machine': (('洗衣机',), ('washing machine', 'washing machines', 'washer')),
    'dishwasher': (('洗碗机',), ('dishwasher', 'dishwashers')),
    'air_conditioner': (('空调',), ('air conditioner', 'air conditioners', 'aircon', 'air con', 'ac')),
    'air_purifier': (('空气净化器', '净化器'), ('air purifier', 'air purifiers')),
    'vacuum': (('吸尘器', '扫地机', '扫地机器人', '扫拖机器人'), ('vacuum', 'vacuums', 'vacuum cleaner', 'robot vacuum', 'hoover')),
    'water_purifier': (('净水器', '净水机'), ('water purifier', 'water purifiers')),
    'water_filter': (('滤芯',), ('filter', 'filters', 'water filter', 'replacement filter', 'filter cartridge')),
    'hair_dryer': (('吹风机', '电吹风'), ('hair dryer', 'hairdryer', 'blow dryer')),
    'electric_toothbrush': (('电动牙刷',), ('electric toothbrush', 'toothbrush')),
    'shaver': (('剃须刀', '刮胡刀'), ('shaver', 'razor', 'electric shaver')),
    'router': (('路由器',), ('router', 'routers', 'wifi router')),
    'e_bike': (('电动车', '电瓶车', '电动自行车', '电单车'),
               ('e-bike', 'e-bikes', 'ebike', 'ebikes', 'electric bike', 'electric bikes', 'electric bicycle')),
    'massage_chair': (('按摩椅',), ('massage chair', 'massage chairs')),
    'range_hood': (('油烟机', '抽油烟机'), ('range hood', 'range hoods', 'cooker hood', 'extractor hood')),
}

# English words never taken for a typo of a catalog word.
COMMON_WORDS = frozenset('''
a an the i im me my mine you your we our us he she it its they them this that these those is are was were be been
am do does did doing have has had having can could will would shall should may might must not no yes ok okay
what whats which who whom whose where when why how much many more most less least some any all each every
and or but if then than so because as at by for from in into of off on onto out over to up with without about
please thanks thank hello hi hey bye goodbye good morning afternoon evening night want wanted need like love
looking look find show tell give take bring help get got go going come coming see here there new old best better
cheap cheaper cheapest expensive price prices cost costs buy buying sell sale sales deal deals discount offer
offers one two three four five six seven eight nine ten hundred thousand under below above around between
budget spend money yuan rmb kuai model models kind type brand brands something anything thing things really
very just also too only still well sure fine great nice cool way store shop today now time name appointment stuff
book booked booking check call staff person someone human assistant manager recommend recommendation suggest
ideas idea choose which good latest agree agreed disagree consent member members
talk talking speak speaking somebody anybody anyone everyone people place places around ask asked say said
later maybe soon
open opens opening close closes closing closed hours tonight tomorrow
'''.split())


_T2S = opencc.OpenCC('t2s')       # OpenCC's Traditional → Simplified Chinese (characters and phrases)


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters → half-width), Traditional → Simplified Chinese (叫一下店員,
    帶我去廚房電器區) and lower case. Catalog names and utterances both go through it, so a store
    written in either script understands customers writing in either."""
    text = unicodedata.normalize('NFKC', text)
    if not text.isascii():
        converted = _T2S.convert(text)
        if len(converted) == len(text):      # offsets into the text stay valid (always so for t2s)
            text = converted
    return text.lower()


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int

    @property
    def han(self) -> bool:
        return bool(_HAN.fullmatch(self.text))


def tokenize(text: str) -> list[Token]:
    """Tokens of normalized text: Chinese characters one by one, Latin letter runs, numbers."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(normalize(text))]


def _without_sizes(text: str) -> str:
    """"1.5hp Air Conditioner" -> " Air Conditioner": a size and a kind name no one product."""
    for size in reversed(find_sizes(text)):
        text = text[:size.span[0]] + ' ' + text[size.span[1]:]
    return text


def _compact(text: str) -> str:
    return ''.join(t.text for t in tokenize(text))


@lru_cache(maxsize=8192)
def pinyin_of(char: str) -> str:
    return lazy_pinyin(char)[0]


@dataclass(frozen=True)
class Term:
    """One surface form of an entity, e.g. ('华','为') → brand Huawei."""
    tokens: tuple[str, ...]
    kind: str                       # 'product' | 'brand' | 'category' | 'zone' | 'unsold' (a kind the store does not sell)
    values: tuple[str, ...]         # skus for products, else one id


@dataclass(frozen=True)
class Match:
    term: Term
    start: int                      # character offsets in the normalized text
    end: int
    token_count: int
    exact: bool
    surface: str


KIND_RANK = {'product': 0, 'brand': 1, 'category': 2, 'zone': 3, 'unsold': 4}
HOMOPHONE_COMMON_WORD_FREQ = 100    # a real frequent word (服饰) is not a mis-heard brand (富士)


@dataclass
class Lexicon:
    catalog: Catalog
    zones: dict = field(default_factory=dict)      # the store's zones (retail_common.store.Zone by id): their names
    terms: list[Term] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._add_catalog_terms()
        self._by_first: dict[str, list[Term]] = {}
        self._vocab: set[str] = set()
        for term in self.terms:
            self._by_first.setdefault(self._key(term.tokens[0]), []).append(term)
            if term.kind != 'unsold':       # what the store does not sell is no reason to correct a word
                self._vocab.update(t for t in term.tokens if t.isalpha() and not _HAN.match(t))
        self._vocab_list = sorted(v for v in self._vocab if len(v) >= 4)
        self.tokenizer = jieba.Tokenizer()
        self.tokenizer.initialize()
        for term in self.terms:
            word = ''.join(term.tokens)
            if _HAN.search(word):
                self.tokenizer.add_word(word)

    # -- building -------------------------------------------------------------------------
    def _add(self, surface: str, kind: str, values: tuple[str, ...], seen: dict) -> None:
        tokens = tuple(t.text for t in tokenize(surface))
        if not tokens or (len(tokens) == 1 and len(tokens[0]) < 2 and not tokens[0].isdigit()):
            return                    # a single letter or character is no evidence
        if all(t.isdigit() for t in tokens):
            return                    # "14" alone is not a product
        key = (tokens, kind)
        if key in seen:
            previous = seen[key]
            if kind == 'product' and values[0] not in previous.values:
                merged = Term(tokens, kind, previous.values + values)
                self.terms[self.terms.index(previous)] = merged
                seen[key] = merged
            return
        term = Term(tokens, kind, values)
        seen[key] = term
        self.terms.append(term)

    def _add_catalog_terms(self) -> None:
        seen: dict = {}
        products = self.catalog.products
        categories = self.catalog.categories()
        self._add_zone_terms(seen)
        for category, category_zh in categories.items():
            zh, en = CATEGORY_SYNONYMS.get(category, ((), ()))
            plain = category.replace('_', ' ')
            for surface in (category_zh, plain, plain + 's', plain + 'es', *zh, *en):
                self._add(surface, 'category', (category,), seen)
        for category, (zh, en) in CATEGORY_SYNONYMS.items():    # kinds of product this store does not sell
            if category not in categories:
                for surface in (*zh, *en):
                    self._add(surface, 'unsold', (category,), seen)
        for brand, brand_zh in self.catalog.brands().items():
            for surface in (brand, brand_zh):
                self._add(surface, 'brand', (brand,), seen)
        category_forms = {t.values[0]: [] for t in self.terms if t.kind == 'category'}
        for t in self.terms:
            if t.kind == 'category':
                category_forms[t.values[0]].append(''.join(t.tokens))
        for product in products:
            forms = category_forms.get(product.category, ())
            generic = {_compact(b) + c for b in (product.brand, product.brand_zh) for c in forms} | set(forms)
            for surface in self._product_surfaces(product):
                # "戴森吹风机" names a kind, not one product; "飞利浦 空气炸锅" without its brand is the
                # kind; a kind with a size ("Haier 253L Fridge", "1.5hp Air Conditioner") names a
                # product only when no other of that (brand,) kind has that size
                if _compact(surface) in generic:
                    continue
                if _compact(_without_sizes(surface)) in generic and not self._only_one_of_size(product, surface):
                    continue
                self._add(surface, 'product', (product.sku,), seen)

    def _only_one_of_size(self, product: Product, surface: str) -> bool:
        said = find_sizes(surface)
        if not said:
            return False
        branded = any(_compact(surface).startswith(_compact(b)) for b in (product.brand, product.brand_zh) if b)
        alike = [p for p in self.catalog.products if p.category == product.category
                 and (not branded or p.brand == product.brand)
                 and all(fits_size(p, (size.value, size.unit)) for size in said)]
        return len(alike) == 1

    def _add_zone_terms(self, seen: dict) -> None:
        """Service places by the words for their kind (found by name, `places`), then every zone by
        the store's own names: "厨房电器区", "Kitchen Appliances"."""
        for kind, zone_id in service_places(self.zones).items():
            zh, en = PLACE_WORDS[kind]
            for surface in zh + en:
                self._add(surface, 'zone', (zone_id,), seen)
        for zone in self.zones.values():
            names = {zone.id.replace('_', ' '), zone.name_zh, zone.name_en}
            names |= {name[:-1] for name in names if name.endswith('区') and len(name) > 2}   # 厨房电器(区)
            names |= {name.replace('&', 'and') for name in names if '&' in name}
            for surface in sorted(n for n in names if n):
                self._add(surface, 'zone', (zone.id,), seen)

    @staticmethod
    def _product_surfaces(product: Product) -> list[str]:
        surfaces = [product.name_zh, product.name_en, *product.aliases]
        for name, brand in ((product.name_zh, product.brand_zh), (product.name_en, product.brand)):
            rest = name[len(brand):].strip() if normalize(name).startswith(normalize(brand)) else ''
            if rest and re.search(r'[^\d\s.]', rest):
                surfaces.append(rest)     # "Pura 70" without its brand
        return surfaces

    # -- matching -------------------------------------------------------------------------
    @staticmethod
    def _key(token: str) -> str:
        return pinyin_of(token) if _HAN.fullmatch(token) else token

    def correct(self, word: str) -> str:
        """An English word one typo away from a catalog word (two for long words), else itself."""
        if len(word) < 4 or word in self._vocab or word in COMMON_WORDS or not word.isalpha():
            return word
        limit = 2 if len(word) >= 8 else 1
        best, best_distance = word, limit + 1
        for candidate in self._vocab_list:
            if abs(len(candidate) - len(word)) > limit:
                continue
            distance = OSA.distance(word, candidate, score_cutoff=limit)
            if distance < best_distance:
                best, best_distance = candidate, distance
        return best

    def match(self, text: str) -> list[Match]:
        """Non-overlapping entity mentions in `text`, longest and most exact first."""
        tokens = tokenize(text)
        norm = normalize(text)
        keys = []
        corrected = []
        for token in tokens:
            word = token.text if token.han or token.text.isdigit() else self.correct(token.text)
            corrected.append(word)
            keys.append(self._key(word))
        found: list[Match] = []
        for i, key in enumerate(keys):
            for term in self._by_first.get(key, ()):
                n = len(term.tokens)
                if i + n > len(tokens):
                    continue
                exact = True
                for want, got, original in zip(term.tokens, corrected[i:i + n], tokens[i:i + n]):
                    if want == original.text:
                        continue
                    if want == got or (_HAN.fullmatch(want) and original.han and pinyin_of(want) == pinyin_of(got)):
                        exact = False
                        continue
                    break
                else:
                    start, end = tokens[i].start, tokens[i + n - 1].end
                    surface = norm[start:end]
                    if not exact and not self._plausible_mishearing(term, surface):
                        continue
                    found.append(Match(term, start, end, n, exact, surface))
        found.sort(key=lambda m: (-m.token_count, not m.exact, KIND_RANK[m.term.kind], m.start))
        chosen: list[Match] = []
        for candidate in found:
            if all(candidate.end <= c.start or candidate.start >= c.end for c in chosen):
                chosen.append(candidate)
        return sorted(chosen, key=lambda m: m.start)

    def _plausible_mishearing(self, term: Term, surface: str) -> bool:
        han = ''.join(_HAN.findall(surface))
        if han and han != ''.join(t for t in term.tokens if _HAN.fullmatch(t)):
            if len(han) < 2:
                return False
            if self.tokenizer.FREQ.get(han, 0) >= HOMOPHONE_COMMON_WORD_FREQ:
                return False
        return True

    def segment(self, text: str) -> list[str]:
        """jieba words of the text, with the catalog's names kept whole."""
        return [w for w in self.tokenizer.lcut(normalize(text)) if w.strip()]
