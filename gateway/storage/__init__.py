"""Embedded stores: the SQLite time-series store and the SQLite state store."""
