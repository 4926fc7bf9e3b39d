"""Writes to deliveries live here: creating, cancelling, dispatching and sending messages."""
