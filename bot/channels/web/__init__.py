"""The website chat widget: one `<script>` tag puts a chat bubble on any page of the clinic's site.

The app serves the script, its styles, the texts it shows (from knowledge/replies.yml) and a demo clinic
page at `/`. The widget talks to the public chat API (`bot/channels/api.py`) like any client: it holds only
the session token the server issued, never the conversation text. See docs/widget.md.
"""
