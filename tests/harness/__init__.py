"""The end-to-end tests' harness: one place for what every test file needs.

  procs    Registry (every process a test starts, killed with its group at the end; which
           ones hang on purpose), kill_group, read_line, free_port, alarm_guard, Timeout
  pythons  the binaries and the CPython interpreters under test (BINARY, SYSTEM_PYTHON,
           HOST_PYTHON, NOBODY, INTERPRETERS, interpreter_params)
  tracer   Tracer (pyhang-trace --json as a subprocess, read as JSON Lines), check_stream,
           public/short, ProcWatcher, /proc helpers
  fixtures the per-test deadline and the suite tracer (used by tests/conftest.py)

`from harness import X` works for all of them.

How an end-to-end test runs: real kernel, real processes, no mocks; needs root.  It starts
the tracer as a subprocess with --json (Tracer), waits for its `start` line before poking
the workload, and always stops it and kills/reaps everything it started (Registry), with a
timeout on every wait so that a bug cannot hang the suite.
"""
from .procs import (HANGING, HANGING_PIDS, STARTED, Registry, Timeout, alarm_guard, free_port,
                    kill_group, mark_hanging, read_line, session_of)
from .pythons import (ASAN_BINARY, BINARY, HOST_PYTHON, INTERPRETER_PATHS, INTERPRETERS, NOBODY,
                      PROGRAMS, ROOT, SYSTEM_PYTHON, TESTS, discover_interpreters, mark_line,
                      interpreter_params)
from .tracer import (HEX_RE, LATE_SLACK, PROCESS_EVENTS, START_TIMEOUT, STOP_TIMEOUT, SYS_FUTEX,
                     TIME_RE, ProcWatcher, Tracer, check_stream, expect_words, is_int, is_number,
                     parse_time, public, short, task_syscall, wait_in_futex)
