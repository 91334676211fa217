"""What a recording keeps of a member's identity: the one table of identity-carrying message fields.

Recordings (`retailbot record`, the incident recorder's files uploaded to the platform) are
pseudonymous by construction: `McapRecorder` passes every message of a type listed in `FIELDS`
through `Pseudonymiser` before writing it, so no code path writes such a message as received.

Rules per field:
- `PSEUDONYM`: the member's id (`m-000001`, the pseudonym the sync uploads). A recording holds
  no member id at all: each id is written as an alias of that recording only (`alias-1`,
  `alias-2`, ... in order of first appearance; '' stays ''), the same id the same alias across the
  recording's topics, so what one customer did stays readable. The mapping is kept in memory
  only, for one file (an incident file, a `retailbot record`), and never written. So nothing in a
  recording links to the member: "forget this member" has nothing to find in recordings, on the
  robot, on the platform or on a technician's laptop.
- `BLANK`: a display name: written as ''.
- `PLACEHOLDER`: free text the robot said or heard (a greeting by name, the customer's words, a
  node's log line quoting them): written as its length only, e.g. `[12 characters]`; in a string
  array each element so. Chosen over scrubbing names out of the text, which cannot be made
  reliable: greetings use forms of a name no list holds (`王女士` for `王芳`), a customer's own
  words carry her name or phone number, and an incident's ring buffer may have dropped the
  customer event that named her before the greeting it keeps. The fields beside the text (the
  reply's `intent`, language, track) are kept, so what happened stays readable.
- `KEEP`: looked at and kept (a code, a product or store word, a file path): listed so the
  scan of the interfaces (tests/observe/test_recording_privacy.py) knows it was decided.

Pure (no rclpy): CDR is decoded and re-encoded with `mcap_ros2` from the recording's own schema.
"""

from __future__ import annotations

import re
from typing import Any

from mcap_ros2._dynamic import generate_dynamic, serialize_dynamic

PSEUDONYM = 'pseudonym'
BLANK = 'blank'
PLACEHOLDER = 'placeholder'
KEEP = 'keep'

# type -> {field: rule}. Every field of src/interfaces whose name matches IDENTITY_LIKE must be here.
FIELDS: dict[str, dict[str, str]] = {
    'retail_interfaces/msg/CustomerEvent': {'customer_id': PSEUDONYM, 'display_name': BLANK},
    'retail_interfaces/msg/MemberInfo': {'customer_id': PSEUDONYM, 'display_name': BLANK},
    'retail_interfaces/msg/InteractionEvent': {
        'customer_pseudonym': PSEUDONYM,
        # the payload quotes the customer's words (dialogue_turn)
        'payload_json': PLACEHOLDER,
    },
    'retail_interfaces/msg/StaffRequest': {
        'customer_pseudonym': PSEUDONYM,
        'looking_for': PLACEHOLDER,
        'recent': PLACEHOLDER,
        'product_name': KEEP,
        'staff': KEEP,
    },
    'retail_interfaces/msg/RobotReply': {'text': PLACEHOLDER},  # greetings by name, staff's words
    'retail_interfaces/msg/SpeechStatus': {'text': PLACEHOLDER, 'audio_path': KEEP},
    'retail_interfaces/msg/Utterance': {'text': PLACEHOLDER, 'catalog_text': PLACEHOLDER},
    'retail_interfaces/msg/RecommendedItem': {'name_zh': KEEP, 'name_en': KEEP},  # product names
    # /rosout: nodes log what customers said (the speech recogniser) and what the robot could not say.
    'rcl_interfaces/msg/Log': {'msg': PLACEHOLDER, 'name': KEEP},  # name: the logger's
}
# A field name that may carry a member's identity or words (the interfaces scan's test).
IDENTITY_LIKE = re.compile(r'customer|member|pseudonym|name|text|phone|words|looking_for|recent|said|payload|msg$')


def placeholder(text: str) -> str:
    return f'[{len(text)} characters]'


CHANGED = (PSEUDONYM, BLANK, PLACEHOLDER)  # the rules that rewrite a field


def alias(aliases: dict[str, str], member_id: str) -> str:
    """The recording's alias of `member_id` ('' for none), given on first appearance."""
    if not member_id:
        return ''
    return aliases.setdefault(member_id, f'alias-{len(aliases) + 1}')


def _apply(rule: str, value: Any, aliases: dict[str, str]) -> Any:
    if isinstance(value, (list, tuple)):
        return [_apply(rule, item, aliases) for item in value]
    if rule == BLANK:
        return ''
    if rule == PLACEHOLDER:
        return placeholder(value) if value else ''
    if rule == PSEUDONYM:
        return alias(aliases, value)
    return value  # KEEP


class UnreadableMessage(ValueError):
    """An identity-carrying message that could not be decoded: it is not written."""


class Pseudonymiser:
    """Rewrites one type's CDR messages by its `FIELDS` rules (None when the type carries no identity)."""

    def __init__(self, type_name: str, definition: str, aliases: dict[str, str] | None = None) -> None:
        self.type_name = type_name
        self.rules = {name: rule for name, rule in FIELDS[type_name].items() if rule in CHANGED}
        self.aliases = {} if aliases is None else aliases  # member id -> alias, one recording's (shared by its types)
        schema = type_name.replace('/msg/', '/')
        try:
            self._decode = generate_dynamic(schema, definition)[schema]
            self._encode = serialize_dynamic(schema, definition)[schema]
        except Exception as exc:  # the vendored rosidl parser raises several kinds on a bad schema
            raise UnreadableMessage(f'{type_name}: schema not usable to pseudonymise ({exc})') from None

    @staticmethod
    def for_type(type_name: str, definition: str, aliases: dict[str, str] | None = None) -> 'Pseudonymiser | None':
        rules = FIELDS.get(type_name, {})
        if not any(rule in CHANGED for rule in rules.values()):
            return None
        return Pseudonymiser(type_name, definition, aliases)

    def __call__(self, data: bytes) -> bytes:
        try:
            message = self._decode(data)
        except Exception as exc:  # truncated/hostile CDR: the decoder raises struct/index/unicode errors
            raise UnreadableMessage(f'{self.type_name}: undecodable message ({type(exc).__name__})') from None
        for name, rule in self.rules.items():
            setattr(message, name, _apply(rule, getattr(message, name), self.aliases))
        return self._encode(message)
