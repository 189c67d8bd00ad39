"""Read a W&B offline run file (``run-<id>.wandb``) back, for the export tests.

The file is W&B's transaction log: the header ``:W&B`` + magic ``0xBEE1`` + version (7
bytes), then LevelDB-log records in 32 KiB blocks (crc32c, length, type: 1 full, 2 first,
3 middle, 4 last), each payload one ``wandb_internal_pb2.Record`` (W&B's own protobuf).
Recent wandb releases no longer ship a Python reader (the Go core writes the file).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Iterator

BLOCK = 32768
HEADER = 7


def records(path: Path) -> Iterator[Any]:
    """Every protobuf record of the run file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the block's tail is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if kind == 0 and length == 0:  # zero padding to the block's end
            pos += left
            continue
        pending += data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(pending)
            pending = b""
            yield rec


def read_run(path: Path) -> dict[str, Any]:
    """{id, name, project, tags, config, summary} of an offline run file (JSON values
    decoded; later summary updates win)."""
    out: dict[str, Any] = {"config": {}, "summary": {}}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            run = rec.run
            out.update(id=run.run_id, name=run.display_name, project=run.project,
                       tags=list(run.tags))
            out["config"].update({u.key: json.loads(u.value_json) for u in run.config.update})
        elif kind == "config":
            out["config"].update({u.key: json.loads(u.value_json) for u in rec.config.update})
        elif kind == "summary":
            out["summary"].update({u.key: json.loads(u.value_json)
                                   for u in rec.summary.update if u.key})
    return out
