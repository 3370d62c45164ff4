"""``streamlit run`` with every script run timed, for the browser tests and benchmarks.

Usage: ``python timed_server.py RUN_LOG streamlit_app.py [streamlit options]``. Each
run of the app's script, whole or fragment, appends one JSON line to RUN_LOG:
its session, whether it was a fragment run, its wall time and the CPU time of
its thread, in milliseconds. The server's own figures, not the browser's guess.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from streamlit.runtime.scriptrunner import script_runner
from streamlit.web import cli

_run_log_lock = threading.Lock()


def _timed(run_log: str, execute):
    def exec_func_with_error_handling(func, ctx):
        started_wall, started_cpu = time.perf_counter(), time.thread_time()
        try:
            return execute(func, ctx)
        finally:
            record = {
                "session": ctx.session_id,
                "fragment": bool(ctx.fragment_ids_this_run),
                "wall_ms": (time.perf_counter() - started_wall) * 1e3,
                "cpu_ms": (time.thread_time() - started_cpu) * 1e3,
                "ended": time.time(),
            }
            with _run_log_lock, open(run_log, "a") as log:
                log.write(json.dumps(record) + "\n")

    return exec_func_with_error_handling


if __name__ == "__main__":
    run_log_path = sys.argv[1]
    script_runner.exec_func_with_error_handling = _timed(
        run_log_path, script_runner.exec_func_with_error_handling
    )
    sys.argv = ["streamlit", "run", *sys.argv[2:]]
    sys.exit(cli.main())
