"""Event ids: 32 lowercase hex characters, random, made without a system call.

`uuid.uuid4()` reads `os.urandom`, and CPython releases the GIL around that read. A thread that
captures in a tight loop would then drop and retake the GIL on every capture, and a thread
waiting for it (errlink's own sender loop) is starved: CPython asks the holder to hand over
only when no switch happened during the whole switch interval, and these quick releases count
as switches. A private generator seeded once from the OS avoids the call; ids need to be
unique, not unpredictable. It is reseeded in a forked child so parent and child never repeat
each other's ids, and it is private so an application's `random.seed()` cannot fix it.
"""

from __future__ import annotations

import os
import random

_generator = random.Random()


def new_event_id() -> str:
    """A version-4-shaped UUID as 32 lowercase hex characters."""
    value = _generator.getrandbits(128)
    # Set the version (4) and variant (RFC 4122) bits, as uuid4 does.
    value = (value & ~(0xF000 << 64)) | (0x4000 << 64)
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)
    return f"{value:032x}"


def new_uuid_text() -> str:
    """A version-4-shaped UUID in its dashed text form (what `str(uuid.uuid4())` gives)."""
    hex_id = new_event_id()
    return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"


def _reseed() -> None:
    _generator.seed()


os.register_at_fork(after_in_child=_reseed)
