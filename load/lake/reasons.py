"""The lake's errors, each one line, and the one line out of an object store's error: delta-rs
and obstore chain several lines of context, colour codes, a debug dump and the store's XML answer
into one message. Light on purpose: the export imports it without deltalake or obstore."""

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_XML_FIELD = re.compile(r"<(Code|Message)>([^<]*)</\1>")
# Without credentials in the environment, object_store asks the EC2 instance metadata service.
_METADATA_SERVICE = "169.254.169.254"
NO_CREDENTIALS = (
    "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment "
    "(or run with a web identity or an instance role)"
)
_MAX_CHARS = 400


class LakeError(RuntimeError):
    """A lake table could not be created, read or merged; one line naming the table and URL."""


class LeaseHeld(Exception):
    """Another run holds the workspace's lease; one line naming it and when it expires."""


def short_reason(error: BaseException) -> str:
    """The store's own code and message when it sent XML, else the chain joined on one line."""
    text = _ANSI.sub("", str(error)).split("Debug source:")[0]
    if _METADATA_SERVICE in text:
        return NO_CREDENTIALS
    fields = dict(_XML_FIELD.findall(text))
    if "Code" in fields:
        return fields["Code"] + (f": {fields['Message']}" if fields.get("Message") else "")
    lines = [line.strip().lstrip("↳").strip() for line in text.splitlines()]
    reason = ": ".join(line for line in lines if line and not line.startswith("<"))
    reason = reason or type(error).__name__
    return reason if len(reason) <= _MAX_CHARS else reason[: _MAX_CHARS - 1] + "…"
