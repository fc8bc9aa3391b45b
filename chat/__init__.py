"""Sealchat: password-sealed, ephemeral chat rooms."""
