"""Outgoing mail and webhooks: SMTP (STARTTLS, implicit TLS or plain), a folder writer, JSON POSTs.

Every failure becomes a `DeliveryError` whose message says what to check, so the callers (the weekly
report job, the alert notifier) can count it, retry it and report it without tracebacks.
"""

from __future__ import annotations

import contextlib
import json
import os
import smtplib
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

SmtpSecurity = Literal["starttls", "ssl", "none"]


class DeliveryError(RuntimeError):
    """A message that could not be delivered; `permanent` when retrying cannot help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def compose(
    sender: str,
    to_name: str,
    to_email: str,
    subject: str,
    text: str,
    html: str,
    attachments: tuple[tuple[str, bytes], ...] = (),
) -> EmailMessage:
    """A multipart email: plain text and HTML alternatives, then attachments (PDF)."""
    if not to_email:
        raise DeliveryError(f"{to_name}: no email address in the staff directory", permanent=True)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = formataddr((to_name, to_email))
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip("> ") or "lde.local")
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    for filename, data in attachments:
        message.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return message


class SmtpMailer:
    """Sends through one SMTP server, reusing the connection between messages. Thread-safe."""

    def __init__(
        self,
        host: str,
        port: int,
        security: SmtpSecurity = "starttls",
        user: str = "",
        password: SecretStr | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.user = user
        self.password = password or SecretStr("")
        self.timeout = timeout
        self._connection: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def _connect(self) -> smtplib.SMTP:
        where = f"SMTP server {self.host}:{self.port}"
        try:
            connection: smtplib.SMTP
            if self.security == "ssl":
                connection = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    connection.starttls(context=ssl.create_default_context())
            if self.user:
                connection.login(self.user, self.password.get_secret_value())
            return connection
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(
                f"{where} refused the login of {self.user!r}: check LDE_SMTP_USER and LDE_SMTP_PASSWORD "
                f"({error.smtp_code})",
                permanent=True,
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError(
                f"{where} does not offer STARTTLS: set LDE_SMTP_SECURITY to ssl or none", permanent=True
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(
                f"{where} is unreachable ({error}): check LDE_SMTP_HOST and LDE_SMTP_PORT"
            ) from None

    def send(self, message: EmailMessage) -> None:
        """Send one message; raises DeliveryError (the connection is dropped and re-opened next time)."""
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = self._connect()
                refused = self._connection.send_message(message)
            except DeliveryError:
                raise
            except smtplib.SMTPRecipientsRefused as error:
                self._drop()
                raise DeliveryError(
                    f"the SMTP server refused {', '.join(error.recipients)}", permanent=True
                ) from None
            except (OSError, smtplib.SMTPException) as error:
                self._drop()
                raise DeliveryError(f"SMTP server {self.host}:{self.port} failed: {error}") from None
            if refused:
                raise DeliveryError(f"the SMTP server refused {', '.join(refused)}", permanent=True)

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._connection.close()
            self._connection = None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    self._connection.quit()
                self._connection = None


def write_files(folder: Path, stem: str, files: dict[str, bytes | str]) -> list[Path]:
    """Write `stem.ext` for each (ext, content) into `folder`; returns the paths.

    Confined (issue 22): `stem` and each extension must be plain names, every path must resolve inside
    `folder`, and the final name is never followed if it is a symbolic link, so data that became a
    file name cannot write anywhere else. The folder is created owner-only (0700), each file 0600:
    reports hold personal data. A refusal is a permanent DeliveryError, raised before anything is written.
    """
    names = [f"{stem}.{ext}" for ext in files]
    if not all(_plain_name(name) for name in [stem, *names]):
        raise DeliveryError("refused to write a file whose name is not a plain file name", permanent=True)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        root = folder.resolve(strict=True)
        paths = [root / name for name in names]
        if any(path.resolve().parent != root for path in paths):
            raise DeliveryError(f"refused to write outside {folder}", permanent=True)
        for path, content in zip(paths, files.values(), strict=True):
            data = content.encode("utf-8") if isinstance(content, str) else content
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        return paths
    except OSError as error:
        raise DeliveryError(f"cannot write into {folder}: {error.strerror}", permanent=True) from None


def _plain_name(name: str) -> bool:
    """A file name with no directory part: not empty, `.` or `..`, no separator or NUL."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in ("/", "\\", "\x00"))


def post_json(url: str, payload: dict[str, Any], timeout: float = 10.0) -> int:
    """POST a JSON body; returns the status. Raises DeliveryError for an error status or no answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "lde-notifier"},
        method="POST",
    )
    host = urllib.parse.urlparse(url).netloc
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        raise DeliveryError(
            f"webhook {host} answered {error.code}", permanent=400 <= error.code < 500 and error.code != 429
        ) from None
    except (TimeoutError, urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryError(f"webhook {host} is unreachable ({reason})") from None
