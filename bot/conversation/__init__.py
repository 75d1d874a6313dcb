"""Conversations: the one pipeline every channel calls (triage first), sessions and the message store."""
