"""Guidance documents in every importable format, made by the tests themselves (nothing downloaded)."""

from __future__ import annotations

import io

SECTIONS = [
    (
        "Makeup after treatment",
        "Wait until your skin has healed before wearing makeup. Your provider will tell you when.",
    ),
    (
        "Exercise after treatment",
        "Avoid strenuous exercise for about three days, so sweat does not irritate your skin.",
    ),
    (
        "Sun protection",
        "Stay out of direct sun for three days and use a broad-spectrum sunscreen afterwards.",
    ),
]
TITLE = "Aftercare guide"


def markdown() -> bytes:
    parts = [f"# {TITLE}", "Read this after your appointment."]
    for heading, text in SECTIONS:
        parts += [f"## {heading}", text]
    parts += ["### Swimming", "Chlorine can sting: wait a few days before swimming."]
    return "\n\n".join(parts).encode()


def text() -> bytes:
    parts = [TITLE.upper(), "Read this after your appointment."]
    for heading, body in SECTIONS:
        parts += [f"{heading}\n{body}"]
    return "\n\n".join(parts).encode()


def html() -> bytes:
    sections = "".join(f"<h2>{heading}</h2><p>{body}</p>" for heading, body in SECTIONS)
    return (
        f"<html><head><title>x</title><style>p {{color: red}}</style><script>alert(1)</script></head>"
        f"<body><h1>{TITLE}</h1><p>Read this after your appointment.</p>{sections}"
        "<ul><li>Gentle cleanser</li><li>Fragrance-free moisturiser</li></ul></body></html>"
    ).encode()


def docx() -> bytes:
    from docx import Document

    document = Document()
    document.add_heading(TITLE, level=0)
    document.add_paragraph("Read this after your appointment.")
    for heading, body in SECTIONS:
        document.add_heading(heading, level=1)
        document.add_paragraph(body)
    document.add_paragraph("Gentle cleanser", style="List Bullet")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pdf() -> bytes:
    """A real PDF (Helvetica text, headings in a larger font), written object by object."""
    lines = [(20, TITLE), (11, "Read this after your appointment.")]
    for heading, body in SECTIONS:
        lines += [(16, heading), (11, body)]
    y, ops = 780, []
    for size, line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"BT /F1 {size} Tf 50 {y} Td ({escaped}) Tj ET")
        y -= size + 14
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()
