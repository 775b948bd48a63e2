"""The transport layer: connection files, the five sockets and the threads that own them.

Knows frames and the kernel core, never a language or the Kernel API's internals."""
