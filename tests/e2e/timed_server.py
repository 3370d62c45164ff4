"""``streamlit run`` with every script run timed, for the browser tests and benchmarks.

Usage: ``python timed_server.py RUN_LOG streamlit_app.py [streamlit options]``. Each
run of the app's script, whole or fragment, appends one JSON line to RUN_LOG:
its session, whether it was a fragment run, its wall time and the CPU time of
its thread, in milliseconds. The server's own figures, not the browser's guess.

With ``DIGITDRAW_PROFILE=PATH`` in its environment, every fragment run is also
profiled (cProfile, on the thread's CPU clock, so time spent waiting for a core
is left out) and the statistics of all of them so far are written to PATH after
each, for ``pstats``. The profiler slows Python code several times over, so read
its shares, not its milliseconds.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import threading
import time

from streamlit.runtime.scriptrunner import script_runner
from streamlit.web import cli

_run_log_lock = threading.Lock()
PROFILE_ENV_VAR = "DIGITDRAW_PROFILE"


def _timed(run_log: str, execute, profile_path: str | None = None):
    profiles: list[pstats.Stats] = []

    def exec_func_with_error_handling(func, ctx):
        fragment = bool(ctx.fragment_ids_this_run)
        profiler = cProfile.Profile(time.thread_time) if profile_path and fragment else None
        started_wall, started_cpu = time.perf_counter(), time.thread_time()
        if profiler is not None:
            profiler.enable()
        try:
            return execute(func, ctx)
        finally:
            if profiler is not None:
                profiler.disable()
            record = {
                "session": ctx.session_id,
                "fragment": fragment,
                "wall_ms": (time.perf_counter() - started_wall) * 1e3,
                "cpu_ms": (time.thread_time() - started_cpu) * 1e3,
                "ended": time.time(),
            }
            with _run_log_lock, open(run_log, "a") as log:
                log.write(json.dumps(record) + "\n")
                if profiler is not None:
                    if profiles:
                        profiles[0].add(profiler)
                    else:
                        profiles.append(pstats.Stats(profiler))
                    profiles[0].dump_stats(profile_path)

    return exec_func_with_error_handling


if __name__ == "__main__":
    run_log_path = sys.argv[1]
    script_runner.exec_func_with_error_handling = _timed(
        run_log_path, script_runner.exec_func_with_error_handling, os.environ.get(PROFILE_ENV_VAR)
    )
    sys.argv = ["streamlit", "run", *sys.argv[2:]]
    sys.exit(cli.main())
