"""The seed article's echo kernel as a MetaKernel: every cell's code comes back as one stdout stream.

    python benchmarks/echo_metakernel.py -f CONNECTION_FILE

An anchor of benchmarks/anchors.py. MetaKernel (on ipykernel) parses each cell for magics
(``%``, ``!``, ``?``) and hands the rest to ``do_execute_direct``; this one writes the code back
unchanged with ``Write`` (a ``stream`` message, no newline added) and returns None, so no
``execute_result`` follows: the same messages as the echo kernels send.
"""

from metakernel import MetaKernel


class EchoMetaKernel(MetaKernel):
    implementation = "Echo"
    implementation_version = "1.0"
    language = "no-op"
    language_version = "0.1"
    language_info = {
        "name": "Any text",
        "mimetype": "text/plain",
        "file_extension": ".txt",
    }
    banner = "Echo kernel - as useful as a parrot (MetaKernel)"

    def do_execute_direct(self, code, silent=False):
        if not silent:
            self.Write(code)


if __name__ == "__main__":
    EchoMetaKernel.run_as_main()
