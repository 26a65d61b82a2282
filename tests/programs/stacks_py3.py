# -*- coding: utf-8 -*-
"""Python 3-only cases for stacks.py: coroutines and non-ASCII identifiers."""
import traceback


def plan(report, forever):
    async def coroutine():
        report(traceback.extract_stack(), "lock"); forever.acquire()

    def run_coroutine():
        coroutine().send(None)

    def función_ñandú():
        report(traceback.extract_stack(), "lock"); forever.acquire()

    class Ünïcode:
        def método(self):
            función_ñandú()

    return [
        (run_coroutine, "coroutine", False),
        (lambda: Ünïcode().método(), "unicode-names", True),
    ]
