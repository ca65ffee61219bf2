"""Reading an offline W&B run's record file (``run-*.wandb``): the wandb package no longer ships a
reader in Python (its service, in Go, writes and syncs the file), so the test reads the format
itself: a 7-byte header, then LevelDB-log records (32 KiB blocks, a 7-byte header per chunk:
crc32, length, type) that each hold one protobuf ``Record``."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7  # the file's (":W&B", magic, version) and each chunk's (crc32, length, type)
FULL, LAST = 1, 4


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    position, chunks = HEADER, []
    while position + HEADER <= len(data):
        left = BLOCK - position % BLOCK
        _crc, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        if left < HEADER or (kind == 0 and length == 0):  # a block's zero padding
            position += left
            continue
        chunks.append(data[position + HEADER : position + HEADER + length])
        position += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            chunks = []
            yield record


def run_summary(path: Path) -> dict[str, Any]:
    """The run's summary as W&B's service last wrote it (its summary records, applied in order)."""
    summary: dict[str, Any] = {}
    for record in records(path):
        if record.WhichOneof("record_type") == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
            for item in record.summary.remove:
                summary.pop(item.key or "/".join(item.nested_key), None)
    return summary


def written_bytes(path: Path, expected: bytes, timeout: float = 30.0) -> bytes:
    """The run file once it holds ``expected``: W&B's service, a separate process, can still be
    writing it when ``wandb.finish()`` has returned (seen in a fresh-clone CI run: the header only)."""
    deadline = time.monotonic() + timeout
    data = path.read_bytes()
    while expected not in data and time.monotonic() < deadline:
        time.sleep(0.2)
        data = path.read_bytes()
    return data
