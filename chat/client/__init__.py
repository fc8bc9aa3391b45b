"""Sealchat reference client: protocol crypto, transports and the command line."""
