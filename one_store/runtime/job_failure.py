"""Why a scheduled job failed: the text its state keeps, and the log line.

Convex records a failed job as ``{"kind": "failed", "error": ...}`` where the
error is the JS error's message followed by its stack (``JsError``'s Display in
convex-backend's ``crates/common/src/errors.rs``), at most 64 KiB
(``MAX_ERROR_MESSAGE_LENGTH``). one_store keeps the Problem's message and then,
when an exception caused it, the Python traceback, cut the same way; and logs
each failure, with the exception, to the ``one_store.scheduler`` logger once the
job's state is written.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from ..model.errors import OneStoreError, cause_of

# Convex keeps at most 64 KiB of a function's error text (MAX_ERROR_MESSAGE_LENGTH).
MAX_ERROR_BYTES = 1 << 16
_CUT = "\n[... cut to 64 KiB ...]\n"
# A stable name for users' logging config, whatever module the scheduler lives in.
logger = logging.getLogger("one_store.scheduler")


class JobFailure:
    """Why a job failed: the text its state keeps, and the exception to log."""

    def __init__(self, message: str, exception: BaseException | None = None) -> None:
        self.message = message
        self.exception = exception

    @classmethod
    def of(cls, problem: object) -> JobFailure:
        """The failure a Problem stands for (a HandlerError carries its exception)."""
        return cls(str(problem), cause_of(problem))

    @classmethod
    def raised(cls, error: OneStoreError) -> JobFailure:
        """Misuse of the library inside the job's handler."""
        return cls(f"{type(error).__name__}: {error}", error)

    def state(self) -> dict[str, Any]:
        """Convex's ``{"kind": "failed", "error": ...}``: message, then traceback."""
        text = self.message
        if self.exception is not None:
            formatted = traceback.format_exception(self.exception)
            text += "\n" + "".join(formatted).rstrip("\n")
        return {"kind": "failed", "error": cut(text)}

    def log(self, job_id: str, name: str) -> None:
        """Log it with its traceback, once the job's failed state is written."""
        logger.error(
            "Scheduled function %s (job %s) failed: %s",
            name,
            job_id,
            self.message,
            exc_info=self.exception,
        )


def cut(text: str) -> str:
    """``text`` within 64 KiB of UTF-8: its start (the message) and end (the raise)."""
    data = text.encode()
    if len(data) <= MAX_ERROR_BYTES:
        return text
    keep = MAX_ERROR_BYTES - len(_CUT.encode())
    head = data[: keep // 4].decode(errors="ignore")
    tail = data[len(data) - (keep - keep // 4) :].decode(errors="ignore")
    return head + _CUT + tail
