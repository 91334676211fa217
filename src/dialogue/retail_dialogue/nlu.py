"""Understanding one customer utterance: language, intent and slots, from the store's catalog.

Rules over catalog-linked entities rather than a trained model: every store has a different
catalog and no labelled data, and a rule that fails can be read and fixed by a person. Entities
are found first (lexicon), their text is masked, then prices and intent cues are read from what
is left, so "Redmi Note 13" never reads as a note and "iPhone 16" never as a price.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from retail_common.catalog import Catalog
from retail_common.intents import NLU_INTENTS

from rapidfuzz.distance import OSA

from .lexicon import COMMON_WORDS, Lexicon, Match, normalize
from .numbers import extract_price_range
from .sizes import find_sizes

INTENTS = NLU_INTENTS          # retail_common.intents: the one list of intents
SLOTS = ('category', 'brand', 'sku', 'skus', 'min_price', 'max_price', 'zone', 'size', 'unsold')

_HAN = re.compile(r'[\u3400-\u9fff]')
_EN_FUNCTION = re.compile(
    r"\b(how|what|where|which|is|are|the|a|do|does|can|could|i|i'm|you|your|want|need|much|please|"
    r"show|take|me|my|any|have|for|to|of|hello|hi|thanks|thank|yes|no|ok|okay|bye|looking)\b")
MASK = ' ◆ '
# "先不看相机了", "不要华为的", "not the Canon": a mention dropped from the search (a topic change)
_NEGATED = re.compile(r'(?:不看|不要|不想要|不买|别看|不考虑|不用看)\s*$|\b(?:not|no|forget|except)\s+(?:the\s+|about\s+)?$',
                      re.IGNORECASE)
MAX_UTTERANCE_CHARS = 300     # longer text is not one customer turn (the manager refuses it; parse reads no more)


def detect_language(text: str) -> str:
    """'zh' when Chinese characters outweigh English function words, else 'en'."""
    han = len(_HAN.findall(text))
    english = len(_EN_FUNCTION.findall(text.lower()))
    if han == 0:
        return 'en'
    return 'zh' if han >= 2 * english else 'en'


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile('|'.join(patterns), re.IGNORECASE)


# Cues per intent, tried on the text with entities masked. Content intents come first in
# INTENT_ORDER: "你好，电视在哪" is about the TV, not a greeting.
CUES: dict[str, re.Pattern[str]] = {
    'call_staff': _rx(r'人工', r'店员', r'服务员', r'工作人员', r'营业员', r'导购', r'销售(?:人员|员|顾问)?(?:过来|来)',
                      r'叫.{0,3}(?:人|经理|销售)', r'(?:跟|和|找|叫).{0,2}(?:销售|店员|售货员)', r'找.{0,2}(?:个人|真人|经理|销售|员工)', r'真人', r'经理',
                      r'\bstaff\b', r'\bhuman\b', r'\b(?:real|actual) person\b', r'\bsales ?(?:person|assistant|rep|associate|clerk)\b',
                      r'\bshop assistant\b', r'\bemployee\b', r'\bmanager\b', r'\bsomeone (?:who works|from the store|to help)\b',
                      r'\b(?:talk|speak) to (?:a |an |some)?(?:person|someone|somebody)\b', r'\bcall (?:someone|somebody)\b',
                      r'\bassistance from\b', r'投诉', r'\bcomplain', r'\bcomplaint\b'),
    'vip_checkin': _rx(r'预约', r'预订', r'预定', r'约了', r'约的', r'签到', r'报到', r'登记',
                       r'\bappointment\b', r'\bbooked\b', r'\bbooking\b', r'\bcheck(?:ing)? ?in\b', r'\breservation\b',
                       r'\breserved\b', r'\bscheduled\b', r'\bhere to see\b', r'\bmeeting with\b'),
    # when the store opens or closes: answered from the hours in effect (retail_common.hours)
    'ask_hours': _rx(r'几点(?:钟)?(?:关门|开门|下班|打烊|营业|结束营业|开始营业)', r'营业(?:时间|到几点|到什么时候|吗)', r'(?:开|营业)到几点',
                     r'什么时候(?:关门|开门|打烊)', r'还(?:开|营业)(?:着|吗|多久)', r'(?:关门|开门|打烊)时间', r'今天开门吗', r'明天开门吗',
                     r'\bopening (?:hours|times)\b', r'\b(?:business|store|shop) hours\b', r'\bhours\b.{0,20}\bopen\b',
                     r'\bwhat time do you (?:open|close|shut)\b', r'\bwhen do you (?:open|close|shut)\b',
                     r'\bhow late (?:are you|is the store|is the shop) open\b', r'\bare you open\b', r'\bis the (?:store|shop) open\b',
                     r'\bwhat are your hours\b', r'\b(?:open|close|closing|opening) time\b', r'\buntil when\b.{0,20}\bopen\b'),
    'ask_promotion': _rx(r'优惠', r'促销', r'打折', r'折扣', r'活动', r'满减', r'降价', r'赠品', r'送什么', r'补贴', r'以旧换新',
                         r'特价', r'免息', r'便宜点', r'有没有减', r'几折', r'券',
                         r'\bdiscounts?\b', r'\bpromotions?\b', r'\bpromos?\b', r'\bdeals?\b', r'\boffers?\b', r'\bon sale\b',
                         r'\bsales? (?:on|going)\b', r'\bcoupons?\b', r'\bspecials?\b', r'\btrade[- ]in\b', r'\bfree gift\b',
                         r'\bany savings\b', r'\bmarked down\b', r'\bcheaper now\b'),
    'ask_price': _rx(r'多少钱', r'几多钱', r'多少米', r'价格', r'价钱', r'什么价', r'几块钱', r'贵不贵', r'卖多少', r'售价',
                     r'啥价', r'怎么卖', r'多钱', r'要多少', r'报价',
                     r'\bhow much\b', r'\bprice\b', r'\bprices\b', r'\bcost\b', r'\bcosts\b', r'\bpriced\b', r'\bexpensive\b',
                     r'\bwhat does .* go for\b'),
    'guide_to': _rx(r'带我', r'领我', r'带路', r'引路', r'陪我去', r'(?:想|要)去', r'怎么走', r'怎么去', r'带.{0,2}过去', r'领.{0,2}过去',
                    r'\btake me\b', r'\blead me\b', r'\bguide me\b', r'\bshow me the way\b', r'\bwalk me\b',
                    r'\bhow (?:do|can) i get to\b', r'\bbring me\b', r'\bescort me\b'),
    'where': _rx(r'在哪', r'在什么地方', r'哪里', r'哪儿', r'哪边', r'几楼', r'位置', r'什么位置',
                 r'\bwhere\b', r'\bwhich (?:way|aisle|floor|section)\b', r'\blocated\b', r'\bdirections?\b'),
    'recommend': _rx(r'推荐', r'建议', r'哪款', r'哪(?:个|种|家|一个).{0,4}好', r'哪一款', r'买什么', r'适合', r'性价比', r'选哪', r'挑',
                     r'有什么好', r'什么.{0,4}好', r'值得买', r'想买', r'想要', r'要买', r'打算买', r'准备买', r'给.{0,3}买',
                     r'买.{0,2}(?:个|台|部|款|副|只)', r'预算', r'\bneed (?:a|an|some|new)\b', r'需要', r'入手', r'换.{0,2}(?:个|台|部)',
                     r'\brecommend', r'\bsuggest', r'\badvice\b', r'\badvise\b', r'\bwhich (?:one|is|should|would)\b',
                     r'\bwhat(?:\'s| is) (?:a )?good\b', r'\b(?:is|are) good\b', r'\bgood for\b', r'\bgood (?:one|choice|option)\b', r'\bbest\b', r'\bhelp me (?:choose|pick|find a)\b',
                     r'\bwant (?:a|an|to buy|some|new)\b', r'\blooking (?:for|to buy) (?:a|an|some|new)\b', r'\bbuy (?:a|an|some|new|me)\b',
                     r'\bshould i (?:get|buy)\b', r'\bthinking (?:of|about) (?:buying|getting)\b', r'\bbudget\b', r'\bwhat do you have\b',
                     r'\bin the market for\b', r'\bshopping for\b', r'\bworth buying\b', r'\bupgrade\b'),
    'find_product': _rx(r'有没有', r'有卖', r'卖不卖', r'有.{0,3}吗', r'有货', r'还有', r'找', r'看看', r'看一下', r'在卖', r'想看',
                        r'库存', r'没有货',
                        r'\bdo you (?:have|sell|carry|stock)\b', r'\bdo you guys\b', r'\bis there\b', r'\bare there\b', r'\blooking for\b',
                        r'\bin stock\b', r'\bavailable\b', r'\bcarry\b', r'\bsee (?:the|your)\b', r'\bfind\b', r'\bshow me\b',
                        r'\bany .* left\b', r'\bsell\b'),
    'goodbye': _rx(r'再见', r'拜拜', r'我走了', r'先走', r'回头见', r'下次再', r'改天再', r'不逛了', r'走了啊',
                   r'\bbye\b', r'\bgoodbye\b', r'\bsee you\b', r'\bi\'?m leaving\b', r'\bgotta go\b', r'\bi\'?m off\b', r'\bthat\'?s all\b',
                   r'\bhave a (?:nice|good) day\b', r'\bsee ya\b', r'\bcatch you later\b'),
    'deny': _rx(r'^(?:不|不用|不要|不了|不必|不需要|不去|不想|没有|没(?!问题)|算了|别|先不|暂时不|不是|不对|不行)', r'不用了', r'不需要', r'算了',
                r'先不', r'不去了', r'不麻烦', r'不同意', r'不愿意',
                r'^no\b', r'^nope\b', r'^nah\b', r'\bno thanks?\b', r'\bnot now\b', r'\bnot really\b', r'\bi\'?m (?:fine|good|ok)\b',
                r'\bno need\b', r'\bdon\'?t\b', r'\bdisagree\b', r'\bi do not agree\b', r'\bnot interested\b', r'\bmaybe later\b', r'\bnever ?mind\b', r'\bi\'?ll pass\b'),
    'affirm': _rx(r'^(?:好|好的|好啊|好吧|行|行啊|可以|是|是的|对|对的|嗯|恩|当然|要|没问题|走|走吧|去|麻烦|ok)', r'好的', r'可以啊',
                  r'走吧', r'带路吧', r'麻烦你', r'没问题', r'就这个', r'那就', r'要的', r'同意', r'愿意',
                  r'^(?:yes|yeah|yep|yup|sure|ok|okay|alright|right|please|absolutely|of course|definitely|certainly)\b',
                  r'\bsounds good\b', r'\blet\'?s go\b', r'\bgo ahead\b', r'\bplease do\b', r'\bthat would be great\b',
                  r'\bwhy not\b', r'\bi\'?d like that\b', r'\bplease\b', r'\bi agree\b', r'\bagreed\b', r'\bi consent\b'),
    'thanks': _rx(r'谢谢', r'多谢', r'感谢', r'谢了', r'辛苦了', r'\bthanks?\b', r'\bthank you\b', r'\bcheers\b', r'\bappreciate',
                  r'\bmuch obliged\b', r'\bty\b'),
    'greet': _rx(r'你好', r'您好', r'嗨', r'哈喽', r'哈啰', r'早上好', r'下午好', r'晚上好', r'早啊', r'在吗', r'喂',
                 r'^hi\b', r'^hey\b', r'\bhello\b', r'\bgood (?:morning|afternoon|evening)\b', r'\bhowdy\b', r'\bgreetings\b',
                 r'\bhiya\b', r'\bhey there\b'),
}
# A question the store cannot answer, although it may mention a price or a place.
OUT_OF_SCOPE = _rx(r'天气', r'笑话', r'停车', r'发票', r'吃饭', r'餐厅', r'地铁', r'公交',
                   r'新闻', r'股票', r'彩票', r'你叫什么', r'你是谁', r'几岁', r'唱.{0,2}歌', r'翻译', r'作业', r'快递', r'外卖',
                   r'\bweather\b', r'\bjoke\b', r'\bparking\b',
                   r'\binvoice\b', r'\brestaurant\b', r'\bsubway\b', r'\bmetro\b', r'\bbus\b', r'\bnews\b', r'\bstocks?\b market',
                   r'\bwho are you\b', r'\byour name\b', r'\bsing\b', r'\btranslate\b', r'\bhomework\b', r'\bcapital of\b',
                   r'\bfootball\b', r'\bmovie\b', r'\btaxi\b', r'\bwifi password\b', r'\bdelivery\b')
# Words intents are recognised by, for correcting a typed or mis-spelled cue ("recomend").
INTENT_WORDS = ('recommend', 'suggest', 'discount', 'discounts', 'promotion', 'promotions', 'appointment',
                'reservation', 'expensive', 'available', 'cheapest', 'goodbye', 'thanks', 'restroom', 'toilet',
                'checkout', 'cashier', 'staff', 'manager', 'booking', 'booked', 'special', 'offers', 'price')
SMALL_TALK_ORDER = ('goodbye', 'deny', 'affirm', 'thanks', 'greet')
SHORT_REPLY_CHARS = 14        # affirm/deny only when the whole utterance is short


@dataclass
class NluResult:
    text: str
    lang: str
    intent: str
    slots: dict[str, object]
    confidence: float
    entities: list[Match] = field(default_factory=list, repr=False)
    masked: str = field(default='', repr=False)     # the text with catalog entities masked

    def as_dict(self) -> dict[str, object]:
        return {'text': self.text, 'lang': self.lang, 'intent': self.intent, 'slots': self.slots,
                'confidence': round(self.confidence, 3)}


class Nlu:
    """Parse utterances against one store's catalog (and, when given, the names of its zones)."""

    def __init__(self, catalog: Catalog, zones: dict | None = None) -> None:
        self.catalog = catalog
        self.lexicon = Lexicon(catalog, dict(zones or {}))

    def parse(self, text: str) -> NluResult:
        text = text[:MAX_UTTERANCE_CHARS]         # bounded work, whatever arrives
        norm = normalize(text).strip()
        lang = detect_language(norm)
        entities = self.lexicon.match(norm)
        masked = self._mask(norm, entities)
        words = [self._correct(w) for w in re.split(r'(\W+)', masked)]
        masked = ''.join(words)
        slots = self._slots([m for m in entities if not _NEGATED.search(norm[max(0, m.start - 16):m.start])], masked)
        intent, confidence = self._intent(masked, slots, entities)
        return NluResult(text, lang, intent, slots, confidence, entities, masked)

    def _correct(self, word: str) -> str:
        """Typos of catalog words and of the words intents are recognised by."""
        if not word.isascii() or not word.isalpha():
            return word
        fixed = self.lexicon.correct(word)
        if fixed == word and len(word) >= 5 and word not in COMMON_WORDS:
            for candidate in INTENT_WORDS:
                if abs(len(candidate) - len(word)) <= 1 and OSA.distance(word, candidate, score_cutoff=1) <= 1:
                    return candidate
        return fixed

    @staticmethod
    def _mask(norm: str, entities: list[Match]) -> str:
        out, last = [], 0
        for m in entities:
            out.append(norm[last:m.start])
            out.append(MASK)
            last = m.end
        out.append(norm[last:])
        return ''.join(out)

    def _slots(self, entities: list[Match], masked: str) -> dict[str, object]:
        slots: dict[str, object] = {}
        named = list(dict.fromkeys(m.term.values[0] for m in entities
                                   if m.term.kind == 'product' and len(m.term.values) == 1))
        if len(named) >= 2:
            slots['skus'] = named[:5]          # "A 和 B 哪个便宜": the products named, in order
        for m in entities:
            kind, values = m.term.kind, m.term.values
            if kind == 'product':
                products = [self.catalog.by_sku[sku] for sku in values]
                if len(products) == 1 and 'sku' not in slots:
                    slots['sku'] = products[0].sku
                for key, attr in (('category', 'category'), ('brand', 'brand')):
                    distinct = {getattr(p, attr) for p in products}
                    if len(distinct) == 1:
                        slots.setdefault(key, distinct.pop())
            elif kind in ('brand', 'category', 'zone', 'unsold'):
                slots.setdefault(kind, values[0])
        sizes = find_sizes(masked)
        if sizes:
            # a number with a unit of size is never a price ("85寸", "around 500 liters")
            slots['size'] = {'value': sizes[0].value, 'unit': sizes[0].unit}
            for size in reversed(sizes):
                masked = masked[:size.span[0]] + ' ' * (size.span[1] - size.span[0]) + masked[size.span[1]:]
        price = extract_price_range(masked)
        if price is not None:
            if price.min_price is not None:
                slots['min_price'] = price.min_price
            if price.max_price is not None:
                slots['max_price'] = price.max_price
        return slots

    def _intent(self, masked: str, slots: dict[str, object], entities: list[Match]) -> tuple[str, float]:
        """The first line of INTENT_RULES that holds for the turn's signals."""
        signals = Signals.read(masked, slots)
        for intent, holds, confidence in INTENT_RULES:
            if holds(signals):
                return intent, confidence(signals) if callable(confidence) else confidence
        return 'unknown', 0.3


_STORE_QUESTIONS = ('ask_price', 'ask_promotion', 'recommend', 'find_product', 'where', 'guide_to')
_SAYS_RECOMMEND = re.compile(r'推荐|建议|recommend|suggest|值得|worth')


@dataclass(frozen=True)
class Signals:
    """What the intent rules read: which intents' cues were heard, and what was named."""
    hits: dict[str, bool]
    slots: dict[str, object]
    masked: str
    bare_len: int                   # characters without spaces and punctuation

    @classmethod
    def read(cls, masked: str, slots: dict[str, object]) -> 'Signals':
        return cls({name: bool(rx.search(masked)) for name, rx in CUES.items()}, slots, masked,
                   len(re.sub(r'[\s,.!?，。！？、~…]+', '', masked)))

    @property
    def thing(self) -> bool:
        return any(k in self.slots for k in ('sku', 'category', 'brand', 'unsold'))

    @property
    def price(self) -> bool:
        return 'min_price' in self.slots or 'max_price' in self.slots

    @property
    def short(self) -> bool:
        return self.bare_len <= SHORT_REPLY_CHARS

    def heard(self, name: str) -> bool:
        return self.hits[name]

    def out_of_scope(self) -> bool:
        asks_store = any(self.hits[k] for k in _STORE_QUESTIONS)
        return bool(OUT_OF_SCOPE.search(self.masked)) and not (self.thing and asks_store)

    def names_one_product_only(self) -> bool:
        """"想要 Pura 70" asks about that product, unless it asks for advice or names a budget."""
        return 'sku' in self.slots and not self.price and not _SAYS_RECOMMEND.search(self.masked)


# The intent rules in priority order: (intent, when it holds, confidence). Content intents come
# before small talk ("你好，电视在哪" is about the TV); a yes/no counts only in a short turn.
IntentRule = tuple[str, Callable[[Signals], bool], 'float | Callable[[Signals], float]']
INTENT_RULES: tuple[IntentRule, ...] = (
    ('unknown', Signals.out_of_scope, 0.6),
    ('call_staff', lambda s: s.heard('call_staff'), 0.9),
    ('ask_hours', lambda s: s.heard('ask_hours') and not s.thing, 0.9),
    ('vip_checkin', lambda s: s.heard('vip_checkin'), 0.9),
    ('guide_to', lambda s: s.heard('guide_to') and (s.thing or 'zone' in s.slots), 0.9),
    ('guide_to', lambda s: s.heard('where') and 'zone' in s.slots and 'sku' not in s.slots, 0.85),
    ('ask_promotion', lambda s: s.heard('ask_promotion'), lambda s: 0.85 if s.thing else 0.75),
    ('ask_price', lambda s: s.heard('ask_price'), lambda s: 0.9 if s.thing else 0.6),
    ('find_product', lambda s: s.heard('where') and s.thing, 0.9),
    ('deny', lambda s: s.heard('deny') and not (s.thing or s.price) and s.short, 0.8),
    ('find_product', lambda s: s.heard('recommend') and s.names_one_product_only(), 0.75),
    ('recommend', lambda s: s.heard('recommend'), lambda s: 0.85 if (s.thing or s.price) else 0.65),
    ('find_product', lambda s: s.heard('find_product') and (s.thing or not s.heard('greet')),
     lambda s: 0.8 if s.thing else 0.55),
    ('guide_to', lambda s: s.heard('guide_to') and not (s.heard('affirm') and s.short), 0.6),   # "take me there please"
    ('recommend', lambda s: s.price and s.thing, 0.7),
    ('guide_to', lambda s: 'zone' in s.slots and not s.thing and not s.price and not s.heard('deny'), 0.7),  # "I need the bathroom"
    *((name, (lambda s, n=name: s.heard(n) and (n not in ('affirm', 'deny') or s.short)), 0.85)
      for name in SMALL_TALK_ORDER),
    ('find_product', lambda s: s.thing, 0.6),
)
