"""Time-series sinks beyond the embedded store, and the errors that decide what happens to a
batch a sink could not take."""


class TransientSinkError(Exception):
    """The sink is unreachable or overloaded: keep the batch and retry with backoff."""


class PermanentSinkError(Exception):
    """The sink refuses these points for good (malformed, rejected): retrying cannot help;
    they are dropped for this sink and counted."""
