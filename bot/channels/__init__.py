"""Channel adapters: each only translates between its envelope (HTTP JSON, a widget, an SMS, a WhatsApp
event) and the pipeline's `IncomingMessage` and reply messages. Every one calls `ChatPipeline.handle`."""
