"""Event ids: the format Sentry expects, unique, and never repeated across a fork."""

from __future__ import annotations

import os
import random
import uuid

import pytest

from errlink._wire.ids import new_event_id


def test_ids_are_version_4_uuids_in_32_lowercase_hex() -> None:
    for _ in range(2000):
        event_id = new_event_id()
        assert len(event_id) == 32
        assert event_id == event_id.lower()
        parsed = uuid.UUID(event_id)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_ids_do_not_repeat() -> None:
    ids = {new_event_id() for _ in range(100_000)}
    assert len(ids) == 100_000


def test_an_application_seeding_random_does_not_fix_the_ids() -> None:
    random.seed(1234)
    first = new_event_id()
    random.seed(1234)
    assert new_event_id() != first


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_repeat_its_parent_ids() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave without running pytest's teardown
        os.close(read_end)
        os.write(write_end, ",".join(new_event_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write_end)
    parent_ids = {new_event_id() for _ in range(50)}
    with os.fdopen(read_end, "rb") as pipe:
        child_ids = set(pipe.read().decode().split(","))
    os.waitpid(pid, 0)
    assert len(child_ids) == 50
    assert not child_ids & parent_ids
