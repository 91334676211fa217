"""Downlink: the platform's catalog, promotions, VIP appointments and member histories, brought
to the robot's data dir safely.

Each kind is fetched with `If-None-Match` (its last ETag), so an unchanged document costs one
304. New content is validated first (the catalog with `retail_common.catalog`, exactly as the
dialogue and recommendation will read it), then written to a temp file, fsynced and
`os.replace`d over the old file (and the directory fsynced): a reader sees the old file or the
new one, never half of one, even across a power cut. When the platform is away or sends bad
data, the last good copy stays in place and the reason is reported. A document larger than
`max_bytes` (64 MiB after decompression, checked while streaming) is refused the same way.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx

from retail_common.catalog import CatalogError, load_catalog
from retail_sync.transport import platform_client, set_token

HISTORY_COLUMNS = ('customer_id', 'sku', 'ts', 'qty', 'price_cny')
STATE_FILE = '.downlink_state.json'
MAX_DOWNLINK_BYTES = 64 * 1024 * 1024   # per document, after decompression


class InvalidData(ValueError):
    """The platform sent content the robot must not use."""


def _validate_catalog(path: Path) -> None:
    try:
        catalog = load_catalog(path)
    except (CatalogError, UnicodeDecodeError) as exc:
        raise InvalidData(f'catalog: {exc}') from None
    if not catalog.products:
        raise InvalidData('catalog has no valid products')
    if len(catalog.issues) > len(catalog.products) * 0.1:
        raise InvalidData(f'catalog has {len(catalog.issues)} bad rows for '
                          f'{len(catalog.products)} good ones; first: {catalog.issues[0]}')


def _validate_json_list(path: Path) -> None:
    try:
        value = json.loads(path.read_text(encoding='utf-8'))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidData(f'not JSON: {type(exc).__name__}: {exc}') from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidData('must be a JSON list of objects')


def _validate_histories(path: Path) -> None:
    try:
        rows = csv.reader(io.StringIO(path.read_text(encoding='utf-8')))
        header = next(rows)
    except (StopIteration, UnicodeDecodeError):
        raise InvalidData('histories: empty or not UTF-8') from None
    if tuple(header) != HISTORY_COLUMNS:
        raise InvalidData(f'histories: header must be {",".join(HISTORY_COLUMNS)}')


@dataclass(frozen=True)
class Kind:
    name: str
    url_path: str          # may contain {robot_id}
    filename: str
    validate: Callable[[Path], None]


KINDS = (
    Kind('catalog', '/v1/catalog', 'catalog.csv', _validate_catalog),
    Kind('promotions', '/v1/promotions', 'promotions.json', _validate_json_list),
    Kind('appointments', '/v1/robots/{robot_id}/appointments', 'appointments.json',
         _validate_json_list),
    Kind('histories', '/v1/histories', 'history.csv', _validate_histories),
)


@dataclass(frozen=True)
class Update:
    kind: str
    path: str
    version: str


@dataclass(frozen=True)
class Outcome:
    kind: str
    update: Update | None = None     # new data swapped in
    error: str | None = None         # kept the last good copy because of this


def atomic_write(path: Path, content: bytes) -> None:
    """Write `content` to `path` so that readers and power cuts see old or new, never a mix."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Downlink:
    def __init__(self, platform_url: str, token: str, robot_id: str, data_dir: str | Path,
                 ca_file: str = '', timeout_s: float = 15.0,
                 max_bytes: int = MAX_DOWNLINK_BYTES) -> None:
        self.max_bytes = max_bytes
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.robot_id = robot_id
        self._base = platform_url.rstrip('/')
        self._client = platform_client(token, ca_file, timeout_s)
        self._state_path = self.data_dir / STATE_FILE
        self.etags: dict[str, str] = self._load_state()

    def close(self) -> None:
        self._client.close()

    def set_token(self, token: str) -> None:
        set_token(self._client, token)

    def _load_state(self) -> dict[str, str]:
        try:
            state = json.loads(self._state_path.read_text())
            return {str(k): str(v) for k, v in state.items()} if isinstance(state, dict) else {}
        except (OSError, ValueError):
            return {}

    def _too_large(self, kind: Kind, size: str) -> str:
        return (f'{kind.filename} of {size} bytes is over the {self.max_bytes}-byte limit; '
                f'keeping the last good {kind.filename}')

    def fetch(self, kind: Kind) -> Outcome:
        """Fetch one kind; swap it in when it changed and is valid."""
        target = self.data_dir / kind.filename
        headers = {}
        if kind.name in self.etags and target.exists():
            headers['If-None-Match'] = self.etags[kind.name]
        url = self._base + kind.url_path.format(robot_id=self.robot_id)
        try:
            with self._client.stream('GET', url, headers=headers) as response:
                if response.status_code == 304:
                    return Outcome(kind.name)
                if response.status_code != 200:
                    return Outcome(kind.name, error=f'HTTP {response.status_code}; keeping the '
                                                    f'last good {kind.filename}')
                declared = response.headers.get('content-length', '')
                if declared.isdigit() and int(declared) > self.max_bytes:
                    return Outcome(kind.name, error=self._too_large(kind, declared))
                body = bytearray()
                for chunk in response.iter_bytes():      # decoded: the limit holds after gzip
                    body += chunk
                    if len(body) > self.max_bytes:
                        return Outcome(kind.name, error=self._too_large(kind, f'more than {len(body)}'))
                content = bytes(body)
                etag = response.headers.get('etag') or hashlib.sha256(content).hexdigest()[:32]
        except httpx.HTTPError as exc:
            return Outcome(kind.name, error=f'platform unreachable ({type(exc).__name__}); '
                                            f'keeping the last good {kind.filename}')
        fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=f'.{kind.filename}.check.',
                                   suffix=Path(kind.filename).suffix)
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(content)
            kind.validate(Path(tmp))
        except InvalidData as exc:
            return Outcome(kind.name, error=f'{exc}; keeping the last good {kind.filename}')
        finally:
            Path(tmp).unlink(missing_ok=True)
        atomic_write(target, content)
        self.etags[kind.name] = etag
        atomic_write(self._state_path, json.dumps(self.etags).encode())
        return Outcome(kind.name, update=Update(kind.name, str(target), etag))

    def sync(self) -> list[Outcome]:
        """Fetch every kind once."""
        return [self.fetch(kind) for kind in KINDS]
