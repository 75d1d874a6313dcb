"""How the texting channels join the app: their routes, their outbox senders, their background work.

Only what is enabled is mounted: with the Twilio Messaging channel off, `/channels/twilio/*` does not exist.
"""

from __future__ import annotations

from fastapi import FastAPI

from bot.channels import twilio, whatsapp
from bot.channels.texting import TextingChannels
from bot.conversation.pipeline import ChatPipeline
from bot.services import Services
from bot.settings import Settings

# Webhook paths with their own body limit (Meta batches events); every other path keeps the app's limit.
BODY_LIMITED_PATHS = ("/channels/twilio", "/channels/whatsapp")


def include_texting_routes(app: FastAPI, settings: Settings) -> None:
    if settings.twilio_messaging_enabled:
        app.include_router(twilio.router)
    if settings.whatsapp_enabled:
        app.include_router(whatsapp.router)


def start_texting(app: FastAPI, services: Services, pipeline: ChatPipeline) -> TextingChannels | None:
    """Register the patient senders with the outbox (call before the outbox worker is built) and start
    the background work; None when no texting channel is enabled."""
    settings = services.settings
    if not (settings.twilio_messaging_enabled or settings.whatsapp_enabled):
        return None
    # Settings validate this already; settings copied without validation (tests, scripts) are checked too.
    if settings.twilio_messaging_enabled and not settings.twilio_auth_token.get_secret_value():
        raise RuntimeError("the Twilio Messaging channel is enabled without ASSISTANT_TWILIO_AUTH_TOKEN")
    if settings.whatsapp_enabled and not (
        settings.whatsapp_app_secret.get_secret_value() and settings.whatsapp_verify_token.get_secret_value()
    ):
        raise RuntimeError("WhatsApp is enabled without ASSISTANT_WHATSAPP_APP_SECRET / _VERIFY_TOKEN")
    texting = TextingChannels(services, pipeline)
    app.state.texting = texting
    if settings.twilio_messaging_enabled:
        app.state.twilio_signature = twilio.TwilioSignature(settings)
        services.channel_senders["twilio"] = twilio.TwilioPatientSender(services.db, settings)
    if settings.whatsapp_enabled:
        services.channel_senders["whatsapp_cloud"] = whatsapp.WhatsAppCloudSender(services.db, settings)
    texting.start()
    return texting
