"""Helpers shared by the tests of scratch folders left by killed writers (not a test module)."""

import re
import socket
import subprocess
import sys


def host_and_a_dead_pid():
    """This machine's name as scratch folders spell it, and the pid of a process that has ended."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()  # its pid no longer runs
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()), done.pid
