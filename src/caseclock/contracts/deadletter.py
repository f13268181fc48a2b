"""The dead-letter record: what caseclock publishes for a message it cannot accept.

The record carries the reason code (one of
:data:`caseclock.contracts.inbound.REJECT_REASONS`), a human detail, where the message came
from (topic, partition, offset) and the original key and value bytes, base64-encoded so that
anything (invalid UTF-8, truncated JSON, binary junk) survives the round trip exactly and can
be re-published once fixed.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Final, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from caseclock.contracts.inbound import REJECT_REASONS

#: Longest original value kept in a record: base64 of 512 KiB stays under Kafka's default 1 MB
#: message size, so even a giant rejected message still produces its dead letter.
MAX_DEAD_LETTER_VALUE_BYTES: Final = 512 * 1024

#: Default topic the dead-letter records go to.
DEAD_LETTER_TOPIC: Final = "caseclock-dead-letters"

# Standard base64 alphabet with padding (RFC 4648 section 4), no line breaks.
_B64_PATTERN: Final = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"

Base64Text = Annotated[
    str,
    StringConstraints(pattern=_B64_PATTERN),
    Field(json_schema_extra={"contentEncoding": "base64"}),
]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as e:  # pragma: no cover - the pattern already rejects these
        raise ValueError(f"not base64: {e}") from None


class DeadLetter(BaseModel):
    """A message caseclock rejected, with the reason and the original bytes (base64)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    reason: str = Field(
        description="Reason code.", json_schema_extra={"enum": list(REJECT_REASONS)}
    )
    detail: str = Field(description="Human-readable explanation of the rejection.")
    topic: str = Field(description="Topic the original message was read from.")
    partition: int = Field(description="Partition of the original message.")
    offset: int = Field(description="Offset of the original message in its partition.")
    key: Base64Text | None = Field(
        description="The original message key, base64; null when the message had no key."
    )
    value: Base64Text = Field(description="The original message value (all its bytes), base64.")
    value_size: int = Field(description="Size of the original value in bytes.")
    value_truncated: bool = Field(
        description="True when only the first MAX_DEAD_LETTER_VALUE_BYTES of the value are kept "
        "(so the record stays under the producer's request size limit)."
    )
    received_at: AwareDatetime = Field(description="When caseclock rejected the message.")
    key_encoding: Literal["base64"] = Field("base64", description="Encoding of `key`.")
    value_encoding: Literal["base64"] = Field("base64", description="Encoding of `value`.")

    @field_validator("reason")
    @classmethod
    def _known_reason(cls, v: str) -> str:
        if v not in REJECT_REASONS:
            raise ValueError(f"unknown reason {v!r}; expected one of {', '.join(REJECT_REASONS)}")
        return v

    @classmethod
    def build(
        cls,
        reason: str,
        detail: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        received_at: datetime,
        max_value_bytes: int = MAX_DEAD_LETTER_VALUE_BYTES,
    ) -> DeadLetter:
        """The record for one rejected message; `key` and `value` are the raw Kafka bytes, of
        which the first `max_value_bytes` are kept (less than the default when the topic
        refused the dead letter for its size)."""
        cap = max_value_bytes
        return cls(
            reason=reason,
            detail=detail,
            topic=topic,
            partition=partition,
            offset=offset,
            key=None if key is None else _b64(key[:cap]),
            value=_b64(value[:cap]),
            value_size=len(value),
            value_truncated=len(value) > cap,
            received_at=received_at,
        )

    def original_key(self) -> bytes | None:
        """The original key bytes, exactly as received."""
        return None if self.key is None else _unb64(self.key)

    def original_value(self) -> bytes:
        """The original value bytes, exactly as received (their prefix when truncated)."""
        return _unb64(self.value)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(), option=orjson.OPT_UTC_Z)
