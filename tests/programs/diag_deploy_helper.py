"""A deploy helper meant to run as a script on a remote host, where ignoring SIGCHLD is
right.  Importing it (e.g. for its file name) has that side effect in the importer."""
import os
import signal

signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # MARK: ignore_sigchld

SCRIPT = os.path.abspath(__file__)
