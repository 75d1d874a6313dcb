"""Run the notification fakes until interrupted: `python -m bot.fakes --help`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from bot.fakes.control import FakesControl
from bot.fakes.meta import FakeMetaGraph
from bot.fakes.smtp import FakeSmtpServer
from bot.fakes.twilio import FakeTwilio
from bot.fakes.webhook import FakeWebhookReceiver


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.fakes", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--twilio-port", type=int, required=True)
    parser.add_argument("--webhook-port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--twilio-account-sid", required=True)
    parser.add_argument("--twilio-auth-token", required=True)
    parser.add_argument("--webhook-secret", default="")
    parser.add_argument("--meta-port", type=int, default=0, help="the WhatsApp Graph API fake (0: off)")
    parser.add_argument("--meta-access-token", default="")
    parser.add_argument("--meta-app-secret", default="")
    parser.add_argument("--meta-phone-number-id", default="")
    args = parser.parse_args()

    fakes = {
        "email": FakeSmtpServer(args.smtp_port, args.host),
        "sms": FakeTwilio(args.twilio_account_sid, args.twilio_auth_token, args.twilio_port, args.host),
        "webhook": FakeWebhookReceiver(args.webhook_secret, args.webhook_port, args.host),
    }
    if args.meta_port:
        fakes["whatsapp"] = FakeMetaGraph(
            args.meta_access_token, args.meta_app_secret, args.meta_phone_number_id, args.meta_port, args.host
        )
    for fake in fakes.values():
        fake.start()
    control = FakesControl(fakes, args.control_port, args.host).start()

    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    print(f"notification fakes up; control: {control.url}/received", flush=True)
    stopped.wait()
    for fake in (*fakes.values(), control):
        fake.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
