"""Greeting texts rolled out from the platform (a desired state's `content.greetings`), as the
robot checks and speaks them (pure, no rclpy).

    "greetings": {"anonymous": {"zh": "欢迎光临！", "en": "Welcome!"},
                  "member":    {"zh": "{name}您好！", "en": "Hello {name}!"},
                  "vip":       {"zh": "{name}您好，您{time}的{purpose}预约……", "en": "..."}}

An audience's text replaces the dialogue's built-in first greeting of a visit for that audience
and language (`anonymous`: a customer the robot does not know; `member`: a member greeted by
name; `vip`: a VIP greeted with today's appointment). A language left out keeps the built-in
greeting in that language. Placeholders are the values the dialogue has for that audience
(AUDIENCES); any other placeholder, a format spec or conversion (`{name:>99}`, `{name!r}`),
an attribute (`{name.x}`) or an unpaired brace makes the text invalid: the platform's model
(retail_sync.fleet.DesiredState) refuses the document whole with the key named, and the store
model (retail_common.store) reports and skips such a text in a desired.json on disk.
`{{` and `}}` are literal braces.
"""

from __future__ import annotations

import string
from typing import Any

__all__ = ['AUDIENCES', 'LANGUAGES', 'MAX_GREETING', 'placeholder_problem', 'parse_greetings', 'fill']

AUDIENCES: dict[str, tuple[str, ...]] = {
    'anonymous': (),
    'member': ('name',),
    'vip': ('name', 'time', 'purpose'),
}
LANGUAGES = ('zh', 'en')
MAX_GREETING = 300  # characters, like every short text of the desired state


def placeholder_problem(text: str, allowed: tuple[str, ...]) -> str:
    """'' when `text` uses only the `allowed` placeholders, plainly; else one line saying why."""
    if len(text) > MAX_GREETING:
        return f'{len(text)} characters; at most {MAX_GREETING}'
    if '\x00' in text:
        return 'contains a NUL character'
    try:
        fields = [
            (name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(text) if name is not None
        ]
    except ValueError as exc:  # the parser is linear (CPython's _string.formatter_parser)
        return f'braces do not pair ({exc}); write {{{{ or }}}} for a brace'
    words = ', '.join(f'{{{a}}}' for a in allowed) or 'none'
    for name, spec, conversion in fields:
        if name not in allowed:
            return f'unknown placeholder {{{name[:40]}}} (allowed here: {words})'
        if spec or conversion:
            return f'placeholder {{{name}}} takes no format or conversion'
    return ''


def parse_greetings(content: Any, where: str, issues: list[str]) -> dict[str, dict[str, str]]:
    """A desired state's `content.greetings` as {audience: {language: text}}; an entry that breaks
    the rules is added to `issues` (one line naming the key) and skipped. Absent: {}."""
    greetings = content.get('greetings') if isinstance(content, dict) else None
    if greetings is None:
        return {}
    if not isinstance(greetings, dict):
        issues.append(f'{where}: expected {{audience: {{language: text}}}}; greetings not used')
        return {}
    out: dict[str, dict[str, str]] = {}
    for number, (audience, texts) in enumerate(greetings.items()):
        if number == len(AUDIENCES) + 5:  # a hand-made file with many unknown keys: bounded report
            issues.append(f'{where}: {len(greetings)} audiences; the rest not read')
            break
        key = f'{where}.{str(audience)[:40]}'
        if audience not in AUDIENCES:
            issues.append(f'{key}: unknown audience (known: {", ".join(AUDIENCES)}); skipped')
            continue
        if texts is None:
            continue
        if not isinstance(texts, dict):
            issues.append(f'{key}: expected {{language: text}}; skipped')
            continue
        for lang, text in list(texts.items())[: len(LANGUAGES) + 5]:
            problem = _text_problem(lang, text, AUDIENCES[audience])
            if problem:
                issues.append(f'{key}.{str(lang)[:8]}: {problem}; skipped')
            elif text.strip():
                out.setdefault(audience, {})[lang] = text.strip()
    return out


def _text_problem(lang: Any, text: Any, allowed: tuple[str, ...]) -> str:
    if lang not in LANGUAGES:
        return f'unknown language (known: {", ".join(LANGUAGES)})'
    if not isinstance(text, str):
        return 'must be a text'
    return placeholder_problem(text, allowed)


def fill(text: str, **values: object) -> str:
    """A checked greeting with its placeholders filled in (values are not parsed again)."""
    return text.format(**values)
