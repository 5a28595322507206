"""E-mail over SMTP: the headline as the Subject (one line, whatever it held), the text as the
body, an attachment when the message has one (a report's PDF); to the channel's list and, for
alerts, the person on duty."""

from __future__ import annotations

import asyncio
import email.utils
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Final, Literal

from pydantic import Field, SecretStr

from gateway.clock import Clock
from gateway.notify.message import ChannelSettings, Context, DeliveryError, Message, one_line

SMTP_TIMEOUT_S: Final = 10.0
MESSAGE_ID_DOMAIN: Final = "facility-gateway"


class EmailChannel(ChannelSettings):
    type: Literal["email"] = "email"
    host: str
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    to: list[str] = Field(default_factory=list, description="always; the person on duty is added")
    to_duty: bool = True


# Scheduled reports come here unless `reports.channels` names others.
REPORTS: Final = "default"
SETTINGS = EmailChannel


def _send_mail(c: EmailChannel, mail: EmailMessage, addresses: list[str]) -> None:
    """Sends over SMTP (blocking); `DeliveryError` when it cannot."""
    try:
        with smtplib.SMTP(c.host, c.port, timeout=SMTP_TIMEOUT_S) as smtp:
            if c.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if c.username is not None:
                smtp.login(c.username, c.password.get_secret_value() if c.password else "")
            smtp.send_message(mail, from_addr=c.sender, to_addrs=addresses)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(f"SMTP {min(codes)}: recipients refused",
                            transient=any(code < 500 for code in codes)) from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP {exc.smtp_code}", transient=exc.smtp_code < 500) from None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryError("SMTP server does not support STARTTLS or AUTH", transient=False) from None
    except (smtplib.SMTPException, OSError) as exc:  # SMTPException is an OSError: disconnects, timeouts
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:200], transient=True) from None


@dataclass
class EmailSender:
    channel: EmailChannel
    clock: Clock

    async def send(self, message: Message) -> bool:
        duty = list(message.emails) if self.channel.to_duty else []
        addresses = list(dict.fromkeys([*self.channel.to, *duty]))
        if not addresses:
            return False
        mail = EmailMessage()
        mail["Subject"] = one_line(message.headline)
        mail["From"] = self.channel.sender
        mail["To"] = ", ".join(addresses)
        mail["Date"] = email.utils.format_datetime(self.clock.now())
        # A message sent again keeps its Message-ID, by which mail clients show it once.
        mail["Message-ID"] = (f"<{message.key}@{MESSAGE_ID_DOMAIN}>" if message.key is not None
                              else email.utils.make_msgid(domain=MESSAGE_ID_DOMAIN))
        mail.set_content(message.text)
        if message.attachment is not None:
            maintype, subtype = message.attachment.mime.split("/")
            mail.add_attachment(message.attachment.content, maintype=maintype, subtype=subtype,
                                filename=message.attachment.filename)
        await asyncio.to_thread(_send_mail, self.channel, mail, addresses)
        return True


def make(settings: EmailChannel, context: Context) -> EmailSender:
    return EmailSender(settings, context.clock)
