"""Facilities monitoring gateway for schools and kindergartens."""
