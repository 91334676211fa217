"""Attack round (fault 12): the robot reads the platform's answer to an incident upload only up to
RECEIPT_BYTES (decoded), however it is encoded: a gzip bomb in the answer was read whole before it
was cut. An httpx transport stands in for the platform's answer (unit test); the upload keeps
the file (not a receipt) and stops reading after the first chunks."""
from __future__ import annotations

import gzip

import httpx
import pytest

from retail_observe.incident_upload import RECEIPT_BYTES, UploadError, upload_incident


class Bomb(httpx.SyncByteStream):
    """A gzip stream of zeros, 1 KiB of compressed bytes per chunk (about 1 MB each decoded)."""

    def __init__(self) -> None:
        self.data = gzip.compress(b'0' * (200 * 1024 * 1024), compresslevel=9)
        self.sent = 0

    def __iter__(self):
        for start in range(0, len(self.data), 1024):
            self.sent += 1
            yield self.data[start:start + 1024]


def test_a_bomb_for_an_answer_is_cut_and_the_recording_kept(tmp_path):
    bomb = Bomb()
    path = tmp_path / '20261206T101010Z-r-1-bumper.mcap'
    path.write_bytes(b'\x89MCAP0\r\n' + b'x' * 100)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={'Content-Encoding': 'gzip'}, stream=bomb)

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(UploadError, match='not an incident receipt'):
            upload_incident(client, 'http://platform', 'r-1', path)
    assert bomb.sent <= 4, f'{bomb.sent} KiB of the answer read (about {bomb.sent} MB decoded)'
    assert RECEIPT_BYTES < 1024 * 1024
    assert path.exists()
