"""Runs the emulator: ``python -m ferry_emulator [--port 0] [--url-file F] [--pid-file F]``.

TEST INFRASTRUCTURE. Binds 127.0.0.1 on the given port (0, the default, lets the OS pick a free
one: no race between choosing a port and listening on it), warms moto's service apps, then
writes the URL file (atomically: its presence means "ready") and serves until SIGTERM/SIGINT.
A port that cannot be bound is reported on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

#: moto service apps created before the URL file is written, so the first request to each is
#: not slowed by moto's lazy set-up.
WARM = ("s3", "sqs", "sns", "sts", "fsx", "datasync", "stepfunctions", "events", "iam")


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    began = time.monotonic()
    parser = argparse.ArgumentParser(prog="ferry_emulator",
                                     description="Ferry's local AWS emulator (test infrastructure)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (default)")
    parser.add_argument("--url-file", help="write the URL here once ready")
    parser.add_argument("--pid-file", help="write the process id here")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument("--no-warm", action="store_true", help="skip warming moto's apps")
    args = parser.parse_args(argv)

    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    from .app import Emulator, FerryApp  # noqa: PLC0415

    class Handler(MotoRequestHandler):
        def log_request(self, code="-", size="-"):  # noqa: ANN001
            if not args.quiet:
                super().log_request(code, size)

    moto_app = DomainDispatcherApplication(create_backend_app)
    app = FerryApp(moto_app, Emulator())
    try:
        # werkzeug prints its own message and exits 1 when the port is taken: say which.
        server = make_server(args.host, args.port, app, threaded=True, request_handler=Handler)
    except (OSError, SystemExit) as err:
        reason = getattr(err, "strerror", None) or "address already in use or not available"
        print(f"ferry-emulator: cannot listen on {args.host}:{args.port}: {reason}",
              file=sys.stderr)
        return 2
    port = server.server_port
    os.environ["MOTO_PORT"] = str(port)  # moto builds some self-referencing URLs from it
    url = f"http://{args.host}:{port}"

    if not args.no_warm:
        with moto_app.lock:
            for service in WARM:
                if service not in moto_app.app_instances:
                    moto_app.app_instances[service] = create_backend_app(service)

    if args.pid_file:
        _write_atomically(args.pid_file, f"{os.getpid()}\n")
    if args.url_file:
        _write_atomically(args.url_file, url + "\n")
    print(f"ferry-emulator: listening on {url} (ready in {time.monotonic() - began:.2f}s)",
          flush=True)

    def stop(signum, frame):  # noqa: ANN001, ARG001
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        for path in (args.url_file, args.pid_file):
            if path and os.path.exists(path):
                try:
                    os.remove(path)
                except OSError:
                    pass
        print("ferry-emulator: stopped", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Files are closed and removed: skip the interpreter's slow teardown of moto's modules.
    os._exit(code)
