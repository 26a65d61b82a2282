# Field reproducer 12 (../shared/field/12_asyncio_fastwatcher_steals.py), kept here for
# test_captured_lines.py and test_summaries.py; they find the line of
# loop.run_until_complete by its RUN-HERE marker.
# Source: https://github.com/python/cpython/issues/70124 (bpo-25936, "Improve FastChildWatcher
#         with WNOWAIT?": FastChildWatcher reaps every child with waitpid(-1) and so steals the
#         statuses of processes started outside asyncio); FastChildWatcher exists in 3.4-3.13.
# What happens: an asyncio application uses FastChildWatcher. A blocking helper running in the
#   default executor thread runs a command through subprocess.run(); the command leaves a
#   background process holding its stdout, so communicate() is still reading when the command
#   itself exits. The loop's SIGCHLD handler reaps it with waitpid(-1, WNOHANG) first;
#   subprocess then gets ECHILD and reports returncode 0 although the command exited 6.
#   Python 3.6-3.13 only.
# Perfect diagnosis: child_status_lost, cause reaped_elsewhere: 'sh' exited 6, reported as 0
#   by subprocess.run in run_tool() (line), because MainThread, the event loop, reaped it in
#   asyncio's FastChildWatcher._do_waitpid_all (unix_events.py, waitpid(-1)); fix: use
#   ThreadedChildWatcher/PidfdChildWatcher.
import asyncio
import subprocess
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)


def run_tool():
    r = subprocess.run(["sh", "-c", "(sleep 0.3) & exit 6"], stdout=subprocess.PIPE)
    return r.returncode


async def main(loop):
    rc = await loop.run_in_executor(None, run_tool)
    sys.stdout.write("run_tool -> %d (the command exited 6)\n" % rc)
    sys.stdout.flush()


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    watcher = asyncio.FastChildWatcher()
    watcher.attach_loop(loop)
    asyncio.set_child_watcher(watcher)
    loop.run_until_complete(main(loop))  # RUN-HERE
    loop.close()
