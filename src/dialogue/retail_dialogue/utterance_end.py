"""Does the transcript of an utterance so far look like a finished request? Pure: no rclpy.

The VAD (vad.py) asks at the first short pause of an utterance: a customer who stopped after a
finished-looking request ("Where is the rice cooker?", "电饭煲在哪里") is answered after a short
silence; one who stopped on a word that needs a continuation ("Where can I find the …",
"我想买一台 …", "有没有华为的 …") or on a comma is waited for much longer (Mandarin speakers
pause between phrases). Only the end of the text is looked at: a trailing comma / dash / ellipsis,
or a last word that cannot end a request (articles, prepositions, conjunctions, verbs of wanting
and looking for, measure words, hesitations). Whisper puts a full stop or a question mark after
fragments too, so final punctuation proves nothing and is ignored. Mandarin words with no
predicate or question word at all ("美的空气炸锅", "电饭煲") are a topic whose comment follows
after a pause ("… 多少钱", "… 在哪里"), so they wait too (a bare product name said as a whole
answer waits `end_unfinished_ms`: slower, never cut). None when nothing was heard
(the caller keeps its default silence).
"""
from __future__ import annotations

import re

_HAN = re.compile(r'[\u3400-\u9fff]')
MAX_TEXT_CHARS = 400        # only the end matters: a longer text is cut to its last characters
_CONTINUING_PUNCTUATION = (',', '，', '、', ';', '；', ':', '：', '-', '—', '…', '...')
_FINAL_PUNCTUATION = '.?!。？！"\'”’」）) '
_EN_WORD = re.compile(r"[a-z0-9']+")
# English words after which a request goes on ("how much is the", "i am looking for", "do you have")
EN_UNFINISHED = frozenset('''
    the a an of for to in on at by with from into about than and or but so because if
    is are was were am be my your his her our their this that these those some any another
    can could would will should do does did have has how where what which who whose when why
    want wanted need looking find get buy show take recommend tell give bring like um uh er erm hmm
    i i'm it's there's what's where's under over between very really just also
'''.split())
# Mandarin endings after which a request goes on: particles and verbs that need an object,
# measure words waiting for their noun, conjunctions, hesitations ("我想买一台", "有没有华为的")
ZH_UNFINISHED = ('的', '和', '跟', '与', '或者', '还是', '还有', '在', '是', '有', '有没有', '一', '把', '给', '想', '要', '想要', '买', '找', '去', '到',
                 '这个', '那个', '这', '那', '就是', '然后', '而且', '但是', '因为', '如果', '比', '比较',
                 '从', '往', '让', '请', '请问', '帮', '帮我', '带', '带我', '问', '多', '嗯', '呃', '额', '那么',
                 '一下', '关于', '对于')
# a measure word after a number or a demonstrative waits for its noun ("一台 …"; not "收银台")
ZH_MEASURE = re.compile('[一二两三四五六七八九十几这那哪每某0-9][个台款部件种双套只条]$')
# A Mandarin request has a predicate or a question word; words without one ("美的空气炸锅", "电饭煲")
# are a topic waiting for its comment ("美的空气炸锅 … 多少钱": the pause Mandarin speakers make)
ZH_PREDICATE = re.compile('吗|呢|吧|啊|呀|哪|多少|什么|几|怎|谁|有|没|要|想|是|在|去|来|买|找|卖|推荐|帮|带|请|谢|好|'
                          '对|可以|行|不|看|试|换|退|送|付|用|能|会|贵|便宜|打折|优惠|介绍|比')
# Whole answers that end like a fragment but are finished ("是的", "yes"): the dialogue's questions
ANSWERS = frozenset('是 是的 对 对的 好 好的 有 没有 要 不要 不是 不用 可以 行 嗯 谢谢 '
                    'yes no sure okay ok yeah yep nope please thanks hi hello'.split())


def looks_finished(text: str) -> bool | None:
    """True: `text` (a transcript so far) can end a request; False: it needs a continuation; None:
    nothing was heard, or a script neither rule set reads. The rules follow the script (Chinese
    characters: Mandarin; Latin only: English), not the language the recogniser was told: Whisper
    told Mandarin may write English."""
    tail = ' '.join(text[-MAX_TEXT_CHARS:].split())
    if not tail.strip(_FINAL_PUNCTUATION + ',，、'):
        return None
    if tail.endswith(_CONTINUING_PUNCTUATION):
        return False
    tail = tail.rstrip(_FINAL_PUNCTUATION)
    if tail.lower() in ANSWERS:
        return True
    if tail.endswith(_CONTINUING_PUNCTUATION):
        return False
    if _HAN.search(tail):
        if tail.endswith(ZH_UNFINISHED) or ZH_MEASURE.search(tail):
            return False
        if not ZH_PREDICATE.search(tail):
            return False
        if tail[-1:].isascii():         # a Latin word at the end of Mandarin: "有没有华为的 Mate"
            return _english_finished(tail)
        return True
    if tail.isascii():
        return _english_finished(tail)
    return None             # another language (Korean with Vosk): not judged, the default silence


def _english_finished(tail: str) -> bool:
    words = _EN_WORD.findall(tail.lower().replace('’', "'"))
    return not words or words[-1] not in EN_UNFINISHED
