"""Shared machinery of the data-sync services: events, outbox, consumer, HTTP, settings."""
