"""Real servers started by the tests: an SMTP server (aiosmtpd) and a webhook receiver (http.server),
plus a PDF text reader (fpdf2 compresses page streams with zlib)."""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import re
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from ops.devtools.replay import free_port


@dataclass
class Inbox:
    """Everything the SMTP server accepted: (envelope recipients, parsed message)."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.messages if address in rcpt]


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server, on `port` when given (a test that starts it late: a mail server down)."""
    inbox = Inbox()
    port = port or free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@dataclass
class Hooks:
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many requests first
    calls: int = 0


@contextmanager
def webhook_server(fail_first: int = 0) -> Iterator[tuple[Hooks, str]]:
    hooks = Hooks(fail_first=fail_first)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hooks.calls += 1
            if hooks.calls <= hooks.fail_first:
                self.send_response(500)
                self.end_headers()
                return
            hooks.received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hooks, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def pdf_text(data: bytes) -> str:
    """The text drawn in a PDF made by fpdf2 (inflate each stream, keep the (...) Tj strings)."""
    out = []
    # Each stream is read by its /Length: compressed bytes may end in a CR, which a pattern looking
    # for the line end before "endstream" would take for that line end (a cut stream inflates to nothing).
    for match in re.finditer(rb"<<((?:(?!<<|>>).)*?)>>\s*stream\r?\n", data, re.S):
        length = re.search(rb"/Length (\d+)", match.group(1))
        if length is None:
            continue
        raw = data[match.end() : match.end() + int(length.group(1))]
        with suppress(zlib.error):
            raw = zlib.decompress(raw)
        out += [s.decode("latin-1") for s in re.findall(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj", raw)]
    return "\n".join(out)


def parts(message: EmailMessage) -> tuple[str, str, bytes]:
    """Plain text, HTML and the PDF attachment of a message."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    pdf = b""
    for attachment in message.iter_attachments():
        if attachment.get_content_type() == "application/pdf":
            pdf = attachment.get_content()
    return (
        text.get_content() if text is not None else "",  # type: ignore[attr-defined]
        html.get_content() if html is not None else "",  # type: ignore[attr-defined]
        pdf,
    )
