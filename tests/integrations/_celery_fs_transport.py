"""kombu's filesystem transport with atomic writes, for the `celery worker` tests.

kombu writes a message file in place, and a worker polling the folder can read it before the
writer is done (an empty file: "Unrecoverable error: JSONDecodeError" kills the worker). Here a
message is written under a name the reader ignores, then renamed into place. Use with
``broker_url="filesystem://"`` and ``broker_transport="_celery_fs_transport:Transport"``.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from kombu.transport import filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):  # type: ignore[misc]
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        # kombu's naming: the reader takes files in name order, so oldest first.
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"  # ignored by the reader, which wants ".<queue>.msg"
        with open(partial, "wb") as out:
            out.write(dumps(payload).encode("utf-8"))
        os.replace(partial, final)


class Transport(filesystem.Transport):  # type: ignore[misc]
    Channel = Channel
