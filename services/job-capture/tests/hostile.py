"""Hostile documents, made in code: each small to send and costly to analyse.

Used by the tests of the isolated analysis (unit/test_hostile_documents.py,
integration/test_hostile_capture_db.py) and by bench/hostile_analysis.py. Every document
is a few kilobytes at most; what it costs is what a parser or renderer is made to do.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

# RunLength-encoded bytes that decode to 128 zero bytes: a run of 64x.
_RUN_OF_ZEROS = b"\x81\x00"


def _pdf(objects: list[bytes], *, root: int = 1) -> bytes:
    """A PDF with these objects (numbered from 1) and a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        root,
        xref,
    )
    return bytes(out)


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def _zeros_stacked(decoded_bytes: int) -> bytes:
    """Bytes that decode, through [/FlateDecode /FlateDecode /RunLengthDecode], to
    `decoded_bytes` zero bytes (rounded down to 128): gigabytes in a few kilobytes."""
    inner = zlib.compressobj(9)
    chunk = _RUN_OF_ZEROS * 65536  # 8 MiB decoded
    runs = decoded_bytes // 128
    parts = [inner.compress(chunk) for _ in range(runs // 65536)]
    parts.append(inner.compress(_RUN_OF_ZEROS * (runs % 65536)))
    parts.append(inner.flush())
    return zlib.compress(b"".join(parts), 9)


STACKED = b"/Filter [/FlateDecode /FlateDecode /RunLengthDecode]"


def stacked_filter_pdf(decoded_bytes: int = 2 * 2**30) -> bytes:
    """A one-page PDF whose content stream is `decoded_bytes` of zeros (whitespace, to a
    PDF parser) behind stacked compression filters. Its graphics state carries an ink
    control, so the analysis rewrites it with pikepdf, which decodes the streams too."""
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
            b" /Resources << /ExtGState << /G << /Type /ExtGState /UCR /Default >> >> >> >>",
            _stream(STACKED, _zeros_stacked(decoded_bytes)),
        ]
    )


def huge_image_pdf(side: int = 60_000) -> bytes:
    """A one-page PDF drawing a `side` x `side` RGB image (60,000: 10 GB of pixels)."""
    content = b"q 595 0 0 842 0 0 cm /Im Do Q"
    image = _stream(
        b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB"
        b" /BitsPerComponent 8 " % (side, side) + STACKED,
        _zeros_stacked(side * side * 3),
    )
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
            b" /Resources << /XObject << /Im 5 0 R >> >> >>",
            _stream(b"", content),
            image,
        ]
    )


def nested_objects_pdf(depth: int = 100_000) -> bytes:
    """A one-page PDF whose page carries an array nested `depth` deep."""
    nested = b"[" * depth + b"]" * depth
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Deep " + nested + b" >>",
        ]
    )


def million_pages_pdf(fan_out: int = 10, levels: int = 6) -> bytes:
    """A PDF whose page tree claims fan_out**levels (10^6) pages: each level's node lists
    the next level's node `fan_out` times, the last level one page `fan_out` times."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(levels):
        number = 2 + level
        kids = b" ".join([b"%d 0 R" % (number + 1)] * fan_out)
        parent = b"" if level == 0 else b" /Parent %d 0 R" % (number - 1)
        count = fan_out ** (levels - level)
        objects.append(b"<< /Type /Pages%s /Kids [%s] /Count %d >>" % (parent, kids, count))
    objects.append(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] >>" % (1 + levels),
    )
    return _pdf(objects)


# PostScript: a program, so a few bytes can ask for anything.
MEMORY_HUNGRY_PS = b"%!PS\n[ { 16777216 string } loop\n"
INFINITE_LOOP_PS = b"%!PS\n{ } loop\n"

CASES: dict[str, Callable[[], bytes]] = {
    "stacked-filter PDF": stacked_filter_pdf,
    "memory-hungry PostScript": lambda: MEMORY_HUNGRY_PS,
    "infinite-loop PostScript": lambda: INFINITE_LOOP_PS,
    "deeply nested objects": nested_objects_pdf,
    "page tree claiming 10^6 pages": million_pages_pdf,
    "huge image": huge_image_pdf,
}
