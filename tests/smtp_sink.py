"""A tiny SMTP server for tests: it accepts every message and keeps it.

A worker subprocess sends email through Django's SMTP backend (EMAIL_URL=smtp://host:port),
exactly as in production; the test reads what arrived here. It speaks the part of RFC 5321
Django's backend uses: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
"""

from __future__ import annotations

import socketserver
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage


class _Session(socketserver.StreamRequestHandler):
    def _say(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")

    def handle(self):
        self._say("220 sink ESMTP")
        recipients: list[str] = []
        while line := self.rfile.readline():
            command = line.decode("ascii", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self._say("250 sink")
            elif verb == "MAIL":
                recipients = []
                self._say("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip(" <>"))
                self._say("250 OK")
            elif verb == "DATA":
                self._say("354 End data with <CR><LF>.<CR><LF>")
                data = bytearray()
                while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.sink.keep(bytes(data), recipients)
                self._say("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self._say("250 OK")
            elif verb == "QUIT":
                self._say("221 Bye")
                return
            else:
                self._say("502 Command not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SMTPSink:
    """`with SMTPSink() as sink:` … `sink.url` for EMAIL_URL, `sink.messages` as they arrived."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Session)
        self._server.sink = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address
        return f"smtp://{host}:{port}"

    def keep(self, data: bytes, recipients: list[str]) -> None:
        message = message_from_bytes(data, policy=policy.default)
        message["X-Sink-Recipients"] = ", ".join(recipients)
        with self._lock:
            self.messages.append(message)

    def __enter__(self) -> SMTPSink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
