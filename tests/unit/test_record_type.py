"""The typed record: readers switch on ``Record.task``; old records get theirs."""

import pytest


def test_record_task_is_typed_and_old_records_read():
    from evalsuite.results.record import Record, RecordError

    base = {"run_id": "r", "created_at": "t", "metrics": {}}
    assert Record.from_dict(base).task == "generate"  # before every task wrote one
    assert Record.from_dict({**base, "kind": "score"}).task == "score"
    assert Record.from_dict({**base, "task": "reconstruction"}).task == "reconstruction"
    with pytest.raises(RecordError, match="unknown task"):
        Record.from_dict({**base, "task": "paint"})
    with pytest.raises(RecordError, match="not an evalsuite record"):
        Record.from_dict([1, 2])
