"""Naming the files that a command could not use without flooding the terminal: the first 20, then a list file.

`predict` on a folder of 100,000 photos with a thousand bad ones, or `train`
on one, names the first `SHOWN` files one line each, with their reasons,
and then writes every one of them to a file that its last line names.
Only the standard library is imported.
"""

import os
import tempfile

SHOWN = 20


class SkippedFiles:
    """Collects ``(path, reason)`` lines, says the first `SHOWN` of them, and `close` lists them all in a file.

    Args:
        say: called with each line said (``print``, a logger's ``warning``).
        list_path: the file that `close` writes when there were more than
            `SHOWN`; None: a new file in the temporary folder.
    """

    def __init__(self, say, list_path=None):
        self.say, self.list_path, self.lines = say, list_path, []

    def add(self, line):
        """Records one skipped file's line; says it while fewer than `SHOWN` were said."""
        self.lines.append(line)
        if len(self.lines) <= SHOWN:
            self.say(line)

    def close(self):
        """Writes every line to the list file when some were not said; returns its path, or None when all were said."""
        if len(self.lines) <= SHOWN:
            return None
        if self.list_path is None:
            handle, self.list_path = tempfile.mkstemp(prefix="keras_googlenet_skipped_", suffix=".txt")
            os.close(handle)
        with open(self.list_path, "w", encoding="utf-8") as file:
            file.write("\n".join(self.lines) + "\n")
        return self.list_path
