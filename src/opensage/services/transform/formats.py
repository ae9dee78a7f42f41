"""Records as the model sees them: CSV rows (arrays of fields) or JSON documents, the
``DataProcessing`` filters and ``JoinSource`` over them, and a multi-record answer cut back
into one answer per record."""

from __future__ import annotations

import json
from typing import Any

from opensage.services.transform.jsonpath import Selector, apply_path, compiled
from opensage.services.transform.outcomes import JobFailed


class RecordFormat:
    def __init__(self, content_type: str | None, processing: dict[str, Any]) -> None:
        self.csv = (content_type or "text/csv").split(";")[0].strip().lower() == "text/csv"
        self.input_path = processing.get("InputFilter")
        self.input_filter: list[Selector] | None = compiled(self.input_path)
        self.output_filter: list[Selector] | None = compiled(processing.get("OutputFilter"))
        self.join = processing.get("JoinSource") == "Input"

    def parse(self, record: bytes) -> Any:
        text = record.decode("utf-8").rstrip("\r\n")
        return text.split(",") if self.csv else json.loads(text)

    def format(self, value: Any) -> bytes:
        if self.csv:
            if isinstance(value, list):
                return ",".join(_csv_field(v) for v in value).encode()
            return _csv_field(value).encode()
        return json.dumps(value, separators=(",", ":")).encode()

    def filter_input(self, record: bytes, where: str, number: int) -> bytes:
        """What the model is sent for ``record`` (a line ending in a newline)."""
        if self.input_filter is None:
            return record
        try:
            value = apply_path(self.input_filter, self.parse(record))
        except (ValueError, IndexError, KeyError, TypeError) as e:
            raise JobFailed(f"{where}, line {number}: InputFilter {self.input_path!r} "
                            f"failed: {e}") from None
        return self.format(value) + b"\n"

    @property
    def rewrites_output(self) -> bool:
        return self.join or self.output_filter is not None

    def join_and_filter(self, record: bytes, output: bytes, where: str, number: int) -> bytes:
        """``output`` joined with its input ``record`` (JoinSource), then OutputFilter."""
        try:
            if self.csv:
                result: Any = output.decode("utf-8").split(",")
                if self.join:
                    result = self.parse(record) + result
            else:
                text = output.decode("utf-8")
                try:
                    result = json.loads(text)
                except ValueError:
                    result = text
                if self.join:
                    source = self.parse(record)
                    result = ({**source, "SageMakerOutput": result} if isinstance(source, dict)
                              else {"SageMakerInput": source, "SageMakerOutput": result})
            if self.output_filter is not None:
                result = apply_path(self.output_filter, result)
        except (ValueError, IndexError, KeyError, TypeError) as e:
            raise JobFailed(f"{where}, line {number}: joining or filtering the output "
                            f"failed: {e}") from None
        return self.format(result)


def _csv_field(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def split_response(body: bytes, count: int) -> list[bytes] | None:
    """A multi-record answer cut into ``count`` per-record answers; None when it can't be."""
    text = body.strip()
    lines = [line.rstrip(b"\r") for line in text.split(b"\n") if line.strip()]
    if len(lines) == 1 and lines[0][:1] in (b"{", b"["):
        try:
            document = json.loads(lines[0])
        except ValueError:
            document = None
        if isinstance(document, dict) and len(document) == 1:  # {"predictions": [...]}
            document = next(iter(document.values()))
        if isinstance(document, list) and len(document) == count:
            return [json.dumps(v, separators=(",", ":")).encode() for v in document]
    if count == 1:
        return [text]
    if len(lines) == count:
        return lines
    if len(lines) == 1:
        values = lines[0].split(b",")  # one prediction per record, comma-separated
        if len(values) == count:
            return [v.strip() for v in values]
    return None
