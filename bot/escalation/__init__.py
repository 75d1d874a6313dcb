"""Escalation of worrying side effects to clinic staff, and human handoff.

- `service`: record an escalation and its staff notifications in one transaction, once per duplicate.
- `outbox`: the background worker that delivers the notifications exactly once, with retries, and
  re-notifies the backup contact when an urgent escalation is not acknowledged in time.
- `notices`: what staff are told, per channel (never the patient's words).
- `notifiers`: SMS (Twilio REST API), e-mail (SMTP) and a signed JSON webhook.
- `handoff`: a conversation taken over by staff; staff replies the patient picks up.
"""
