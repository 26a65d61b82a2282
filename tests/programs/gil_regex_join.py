"""A regular expression that never releases the GIL, guarded by Thread.join(timeout): the
guard cannot fire, because the main thread needs the GIL to return from join().

Shape of a field report (sqlmap issue 3209: a tamper script's payload stripped from an
HTTP response with re.sub in a helper thread, "hangs or is very slow"): the pattern
"U.+N.+I.+..." backtracks catastrophically over a page full of its letters.

Runs on CPython 2.7 and 3.x.  Usage: gil_regex_join.py REPORT
Writes to REPORT: "main <tid>", "regex <tid>" (just before re.sub), "done" at the end.
Kills itself after 90 s (signal.alarm).
"""
import re
import signal
import sys
import threading

from progutil import gettid, report


def strip_reflected(page, payload):
    pattern = "(?i)" + ".+".join(re.escape(c) for c in payload)
    out = [page]

    def work():
        report("regex", gettid())
        out[0] = re.sub(pattern, "", out[0])  # MARK: regex

    t = threading.Thread(target=work, name="reflect-regex")
    t.daemon = True
    t.start()
    t.join(2.0)  # MARK: join
    return out[0]


def main():
    signal.alarm(90)
    report("main", gettid())
    page = ("<td>union select null</td>" * 420)[:11000]
    strip_reflected(page, "UNION ALL SELECT NULLX")
    report("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
