"""Tornado adapters: they parse, authorise and hand over to chat/; no behaviour of their own."""
