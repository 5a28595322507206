"""Transports: each turns what arrives into (device, payload, time of receipt) for the Ingestor."""
