"""What a turn says about the conversation so far: references to products shown ("第二个", "the
first one", "它"), refinements of the last search ("cheaper", "那华为的呢", "还有别的吗", "another
brand"), comparisons ("哪个更好"), "take me there", and tour commands ("带我参观一下", "next",
"skip", "stop").

Read from the NLU's masked text (catalog entities replaced by a mask), so "Pura 70" or "OnePlus
12" never read as an ordinal. Pure, no catalog: the dialogue manager resolves the cues against
its state.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .nlu import MASK


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile('|'.join(patterns), re.IGNORECASE)


_ZH_ORD = {'一': 1, '二': 2, '两': 2, '三': 3, '四': 4, '五': 5, '1': 1, '2': 2, '3': 3, '4': 4, '5': 5}
_EN_ORD = {'first': 1, '1st': 1, 'second': 2, '2nd': 2, 'third': 3, '3rd': 3, 'fourth': 4, '4th': 4,
           'fifth': 5, '5th': 5, 'one': 1, 'two': 2, 'three': 3}
ORDINAL_ZH = re.compile(r'第\s*([一二两三四五1-5])\s*(?:个|款|台|部|种|件|只|样|项)?')
LAST_ZH = re.compile(r'最后(?:一)?(?:个|款|台|部|种)')
CHEAPEST, DEAREST = -2, -3      # "the cheaper one", "贵的那个": a pick among the products shown
PICK_CHEAP = re.compile(r'\bthe (?:cheaper|cheapest|less expensive) one\b|便宜的那(?:个|款|台)|最便宜的那?(?:个|款|台)', re.I)
PICK_DEAR = re.compile(r'\bthe (?:more expensive|dearer|pricier|most expensive) one\b|贵的那(?:个|款|台)|最贵的那?(?:个|款|台)', re.I)
ORDINAL_EN = re.compile(r'\b(?:the\s+)?(first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th|last)\b(?:\s+(?:one|model|option|choice))?'
                        r'|\b(?:number|no\.?|#)\s*(one|two|three|[1-5])\b', re.IGNORECASE)
PRONOUN = _rx(r'它', r'这个', r'那个', r'这款', r'那款', r'这台', r'那台', r'这部', r'那部', r'这一款', r'那一款',
              r'\bit\b', r'\bthat one\b', r'\bthis one\b', r'\bthe\s+one\b', r'\bthat\b', r'\bthis\b', r'\bthem\b', r'\bthose\b')
CHEAPER = _rx(r'便宜(?:一)?点', r'便宜些', r'更便宜', r'再便宜', r'实惠(?:一)?点', r'便宜的', r'价格低(?:一)?点', r'低一点',
              r'\bcheaper\b', r'\bless expensive\b', r'\blower price', r'\bmore affordable\b', r'\bbudget (?:option|one)\b')
PRICIER = _rx(r'贵(?:一)?点', r'更贵', r'贵些', r'高端(?:一)?点', r'更好的', r'好一点的', r'档次高',
              r'\bmore expensive\b', r'\bpricier\b', r'\bhigher[- ]end\b', r'\bbetter one\b', r'\bpremium\b', r'\bfancier\b')
BIGGER = _rx(r'大(?:一)?点', r'更大', r'大些', r'大一些', r'尺寸大', r'容量大', r'\bbigger\b', r'\blarger\b')
SMALLER = _rx(r'小(?:一)?点', r'更小', r'小些', r'小一些', r'\bsmaller\b', r'\bmore compact\b')
OTHER_BRAND = _rx(r'(?:别的|其他|其它|换个|换一个|另外的?|不同的?)(?:牌子|品牌)', r'不要这个牌子',
                  r'\b(?:another|other|different) brands?\b', r'\bsomething other than\b')
MORE = _rx(r'还有(?:别的|其他|其它|别|没有别的)', r'别的呢', r'其他的呢', r'其它的呢', r'还有吗', r'换一[个款批]', r'再(?:推荐|看看)(?:别的|几款|其他)',
           r'\banything else\b', r'\bany others?\b', r'\bother options?\b', r'\bwhat else\b', r'\bmore options\b',
           r'\bsomething else\b', r'\bshow me more\b', r'\bany more\b', r'\bothers\b', r'\bother ones\b',
           r'\balternatives?\b', r'\bsomething similar\b', r'类似的', r'同类的', r'替代')
COMPARE = _rx(r'哪个(?:更)?好', r'哪(?:个|款)更', r'哪(?:个|款|台)(?:比较)?(?:便宜|贵|大|小|好|划算|实惠)',
              r'\bwhich (?:one )?is (?:cheaper|more expensive|bigger|smaller|the cheapest)\b', r'\bcheaper,? .* or\b', r'有(?:什么|啥)(?:区别|不同)', r'区别', r'对比', r'比较一下', r'比一比',
              r'\bcompare\b', r'\bdifference\b', r'\bwhich (?:one )?is (?:better|best|cheaper)\b', r'\bwhich (?:one )?should i\b',
              r'\bvs\.?\b', r'\bversus\b')
THERE = _rx(r'过去', r'那里', r'那儿', r'那边', r'去看看', r'带我去\W*(?:吧|啊|呀|呗)?\W*$', r'\bthere\b', r'\bgo see\b',
            r'\btake me to (?:that|this|it)\b')
TOUR_START = _rx(r'参观', r'逛逛', r'逛一逛', r'转转', r'转一转', r'导览', r'介绍一下(?:你们|这家|本)?店', r'带我(?:四处)?看看(?:店|你们|吧)?$',
                 r'\bshow me around\b', r'\btour\b', r'\blook around the store\b', r'\bshow me the store\b', r'\bwalk me around\b')
TOUR_NEXT = _rx(r'下一(?:站|个)', r'^继续', r'^走吧', r'^next\b', r'\bnext stop\b', r'\bmove on\b', r'^go on\b', r'^continue\b', r"\blet'?s go on\b")
TOUR_SKIP = _rx(r'跳过', r'不看这', r'\bskip\b')
TOUR_STOP = _rx(r'结束参观', r'停止参观', r'不参观了', r'不逛了', r'不看了', r'^停', r'^别走了', r'到这(?:里|儿)就行',
                r'^stop\b', r'\bend (?:the )?tour\b', r"\bthat'?s enough\b", r'\bstop the tour\b', r"\bi'?m done\b")
QUESTION = _rx(r'[吗呢？?]', r'怎么样', r'如何', r'好不好', r'咋样', r'行不行', r'介绍', r'说说', r'看看',
               r'\bhow\b', r'\bwhat\b', r'\bis it\b', r'\btell me\b', r'\bany good\b')
ENROL = _rx(r'(?:注册|办|办理|成为|加入|开通|申请)(?:个|一个|一下)?会员', r'记住我', r'认识我', r'刷脸注册', r'人脸注册',
            r'\bsign me up\b', r'\bbecome a member\b', r'\bjoin (?:the )?(?:membership|loyalty|club)\b',
            r'\bremember me\b', r'\bregister (?:me|as a member)\b')
WHAT_ABOUT = _rx(r'呢\s*[?？]?\s*$', r'\b(?:what|how) about\b', r'^\s*and\b.*\?$')


@dataclass(frozen=True)
class Cues:
    ordinal: int = 0            # 1-based index into the products shown; -1 the last, CHEAPEST, DEAREST; 0 none
    pronoun: bool = False       # "it", "that one", "这个", "它"
    refine: str = ''            # '' | cheaper | pricier | bigger | smaller | other_brand | more
    what_about: bool = False    # "what about Apple?", "那华为的呢"
    compare: bool = False
    there: bool = False         # "take me there", "带我过去"
    tour: str = ''              # '' | start | next | skip | stop
    question: bool = False      # asks something ("这个怎么样", "how is it") rather than filler ("啊这个")
    enrol: bool = False         # wants to become a member the robot recognises ("注册会员", "remember me")

    @property
    def refers(self) -> bool:
        return bool(self.ordinal) or self.pronoun


def read_cues(masked: str) -> Cues:
    """The follow-up cues of one utterance (masked text from Nlu.parse)."""
    text = masked.strip()
    ordinal = 0
    if PICK_CHEAP.search(text):
        ordinal = CHEAPEST
    elif PICK_DEAR.search(text):
        ordinal = DEAREST
    elif m := ORDINAL_ZH.search(text):
        ordinal = _ZH_ORD[m.group(1)]
    elif LAST_ZH.search(text):
        ordinal = -1
    elif m := ORDINAL_EN.search(text):
        word = (m.group(1) or m.group(2)).lower()
        ordinal = -1 if word == 'last' else _EN_ORD.get(word, int(word) if word.isdigit() else 0)
    refine = ''
    refinements = (('other_brand', OTHER_BRAND), ('cheaper', CHEAPER), ('pricier', PRICIER), ('bigger', BIGGER),
                   ('smaller', SMALLER), ('more', MORE))
    for name, rx in () if ordinal in (CHEAPEST, DEAREST) else refinements:
        if rx.search(text):
            refine = name
            break
    tour = ''
    for name, rx in (('stop', TOUR_STOP), ('skip', TOUR_SKIP), ('next', TOUR_NEXT), ('start', TOUR_START)):
        if rx.search(text):
            tour = name
            break
    return Cues(ordinal=ordinal, pronoun=bool(PRONOUN.search(text.replace(MASK.strip(), ' '))), refine=refine,
                what_about=bool(WHAT_ABOUT.search(text)), compare=bool(COMPARE.search(text)),
                there=bool(THERE.search(text)), tour=tour, question=bool(QUESTION.search(text)),
                enrol=bool(ENROL.search(text)))


_SIZE = re.compile(r'(\d+(?:\.\d+)?)\s*(?:英寸|寸|吋|inch(?:es)?|"|升|L\b|公斤|kg|KG|千克|匹|mm|毫米)', re.IGNORECASE)


def product_size(*names: str) -> float | None:
    """A product's size from its name (65寸, 10公斤, 1.5匹, 55-inch), for 'bigger' / 'smaller'."""
    for name in names:
        if m := _SIZE.search(name):
            return float(m.group(1))
    return None
