"""The one exception type users see: a clear, one-line message about bad input."""


class SvpgenError(Exception):
    """Bad input or an impossible request. The CLI prints ``str(err)`` and exits 2."""


class LeakageError(SvpgenError):
    """Two image sets that must be disjoint share images."""
