"""The protocol layer: pure code on messages. Frames <-> messages, signing, and the kernel core
(what to send, and when, for each request). No sockets, threads, signals or globals."""
