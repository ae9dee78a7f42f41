"""Input objects cut into the requests a transform job sends: records split by ``SplitType``
(``None``: the whole object; ``Line``; ``RecordIO``), then batched by ``BatchStrategy``
(``SingleRecord``: one per request; ``MultiRecord``: packed up to ``MaxPayloadInMB``)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from opensage.data import DataError
from opensage.data.recordio import iter_frames
from opensage.services.transform.formats import RecordFormat
from opensage.services.transform.outcomes import JobFailed


@dataclass
class Batch:
    """One request's body and where its records came from."""

    body: bytes
    numbers: Sequence[int]  # each record's 1-based line (record) number in its object
    # The records as read (before InputFilter), for JoinSource; None for a block of whole
    # lines sent as read (then they are the lines of ``body``, cut only when needed).
    records: list[bytes] | None
    sent: list[bytes] | None  # what each record became after InputFilter

    def lines(self) -> list[bytes]:
        return self.sent if self.sent is not None else self.body.splitlines(keepends=True)

    def span(self) -> str:
        return f"{self.numbers[0]}-{self.numbers[-1]}"


class Batcher:
    def __init__(self, *, split: str, multi: bool, max_payload: int, per_record: bool,
                 record_format: RecordFormat) -> None:
        """``per_record``: every record's answer is handled apart (so lines are never sent
        as uncut blocks)."""
        self.split = split
        self.multi = multi
        self.max_payload = max_payload
        self.per_record = per_record
        self.format = record_format

    def records(self, f: IO[bytes], where: str) -> Iterator[bytes]:
        try:
            if self.split == "Line":
                yield from f
            elif self.split == "RecordIO":
                yield from iter_frames(f, keep_padding=self.multi)
            else:  # None (TFRecord framing is not split here: the object goes whole)
                yield f.read()
        except (OSError, EOFError, gzip.BadGzipFile, DataError) as e:
            raise JobFailed(f"Unable to read {where}: {e}") from None

    def batches(self, f: IO[bytes], where: str) -> Iterator[Batch]:
        if self.multi and self.split == "Line" and self.format.input_filter is None and not (
                self.per_record):
            yield from self._blocks(f, where)
            return
        records: list[bytes] = []
        sent: list[bytes] = []
        numbers: list[int] = []
        size = 0
        number = 0
        for record in self.records(f, where):
            number += 1
            if self.split == "Line":
                if not record.strip():
                    continue  # blank lines are not records
                record = record.rstrip(b"\r\n") + b"\n"
                payload = self.format.filter_input(record, where, number)
            else:
                payload = record
            if len(payload) > self.max_payload:
                raise JobFailed(f"{where}, line {number}: the record is larger than "
                                f"MaxPayloadInMB ({self.max_payload >> 20} MB).")
            if records and (not self.multi or size + len(payload) > self.max_payload):
                yield Batch(b"".join(sent), numbers, records, sent)
                records, sent, numbers, size = [], [], [], 0
            numbers.append(number)
            records.append(record)
            sent.append(payload)
            size += len(payload)
        if records:
            yield Batch(b"".join(sent), numbers, records, sent)

    def _blocks(self, f: IO[bytes], where: str) -> Iterator[Batch]:
        """MultiRecord batches of whole lines, sent as read: cut from blocks of the stream
        with bytes operations (no Python per record); a block with blank lines, CR LF endings
        or leading/trailing blanks goes through the per-line path, which drops or trims them."""
        number = 0  # lines of the object consumed so far
        carry = b""
        eof = False
        while not eof or carry:
            if not eof and len(carry) <= self.max_payload:
                try:
                    data = f.read(self.max_payload + 1 - len(carry))
                except (OSError, EOFError, gzip.BadGzipFile) as e:
                    raise JobFailed(f"Unable to read {where}: {e}") from None
                eof = not data
                carry += data
                if not eof:
                    continue  # read until a whole payload's worth is at hand
            if eof and carry and not carry.endswith(b"\n"):
                carry += b"\n"
            cut = carry.rfind(b"\n", 0, self.max_payload) + 1
            if cut == 0:
                if not carry:
                    return
                raise JobFailed(f"{where}, line {number + 1}: the record is larger than "
                                f"MaxPayloadInMB ({self.max_payload >> 20} MB).")
            block, carry = carry[:cut], carry[cut:]
            count = block.count(b"\n")
            if (b"\n\n" in block or b"\r" in block or b"\t" in block or b"\n " in block
                    or b" \n" in block or block[:1].isspace()):
                yield from self._batches_of_lines(block.splitlines(keepends=True), where,
                                                  number)
            else:
                yield Batch(block, range(number + 1, number + count + 1), None, None)
            number += count

    def _batches_of_lines(self, lines: list[bytes], where: str,
                          number: int) -> Iterator[Batch]:
        """The per-line path over ``lines`` (numbered from ``number + 1``)."""
        records: list[bytes] = []
        numbers: list[int] = []
        size = 0
        for record in lines:
            number += 1
            if not record.strip():
                continue
            record = record.rstrip(b"\r\n") + b"\n"
            if records and size + len(record) > self.max_payload:
                yield Batch(b"".join(records), numbers, records, records)
                records, numbers, size = [], [], 0
            records.append(record)
            numbers.append(number)
            size += len(record)
        if records:
            yield Batch(b"".join(records), numbers, records, records)

