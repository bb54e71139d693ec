"""`Attachment`: a file or a blob to send with an event (a reference, read by the sender)."""

from __future__ import annotations

import builtins
import os

EVENT_ATTACHMENT = "event.attachment"
_DEFAULT_NAME = "attachment"


class Attachment:
    """A file or a blob to send with events: give `bytes` or a `path`, not both.

    `filename` defaults to the path's last part ("attachment" for bytes); `content_type`, when
    not given, is guessed from the filename by the sender (``application/octet-stream`` when
    it cannot be). A path is read when the event is sent, so the file must still exist then;
    a file that cannot be read is counted as dropped, never raised. Raises `TypeError` when
    the arguments do not describe an attachment.
    """

    __slots__ = ("attachment_type", "content_type", "data", "filename", "path")

    def __init__(
        self,
        bytes: builtins.bytes | bytearray | memoryview | str | None = None,
        *,
        path: str | bytes | os.PathLike[str] | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        attachment_type: str = EVENT_ATTACHMENT,
    ) -> None:
        if (bytes is None) == (path is None):
            raise TypeError("Attachment needs either bytes= or path=, and not both")
        data: builtins.bytes | None = None
        if bytes is not None:
            if isinstance(bytes, str):
                data = bytes.encode("utf-8")
            elif isinstance(bytes, builtins.bytes):
                data = bytes
            elif isinstance(bytes, bytearray | memoryview):
                data = builtins.bytes(bytes)  # a copy: the caller may change theirs later
            else:
                raise TypeError(f"Attachment bytes= must be bytes or str, not {type(bytes)}")
        file_path: str | None = None
        if path is not None:
            file_path = os.fsdecode(os.fspath(path))  # a bytes path too
        for name, value in (("filename", filename), ("content_type", content_type)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"Attachment {name}= must be a str, not {type(value).__name__}")
        if not isinstance(attachment_type, str) or not attachment_type:
            raise TypeError("Attachment attachment_type= must be a non-empty str")
        self.data = data
        self.path = file_path
        self.filename = (
            filename or (os.path.basename(file_path) if file_path else None) or _DEFAULT_NAME
        )
        self.content_type = content_type or None
        self.attachment_type = attachment_type

    @property
    def size(self) -> int:
        """The size in bytes when known now (bytes), else -1 (a path, read later)."""
        return len(self.data) if self.data is not None else -1

    def __repr__(self) -> str:
        source = f"{self.size} bytes" if self.data is not None else f"path={self.path!r}"
        return f"<Attachment {self.filename!r} {source}>"
