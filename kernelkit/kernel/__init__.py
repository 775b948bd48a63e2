"""The Kernel API: the ``Kernel`` base class users subclass, what each request means, comms,
and the process entry (``app``). Talks to the transport only through its stated interface."""
