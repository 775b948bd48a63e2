"""A ReplKernel subclass (the wrap Python API): bash whose output has every "o" made a "0" and whose cells
are sent with a comment line first."""

from kernelkit.wrap import profiles
from kernelkit.wrap.kernel import ReplKernel


class ShoutingBash(ReplKernel):
    implementation = "shouting-bash"
    profile = profiles.get("bash")

    def cell_lines(self, code):
        return ["# sent by ShoutingBash", *super().cell_lines(code)]

    def clean_output(self, text):
        return super().clean_output(text).replace("o", "0")  # "o" is never in the prompt's token
