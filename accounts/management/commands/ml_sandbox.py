"""Run the bundled Mercado Livre sandbox (a local fake of the ML API) until Ctrl-C.

Sandbox mode (no ML_CLIENT_ID) points the app at ``settings.ML_SANDBOX_URL``; this serves
it. Tokens live in ``settings.ML_SANDBOX_STATE_FILE`` so the ones ``seed_demo`` minted, and
the ones issued before a restart, stay valid. With ``--notifications-url`` it POSTs ML-style
notifications there, and with ``--activity-seconds`` the demo sellers' numbers keep moving.
"""

import signal
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.mercadolivre.sandbox import SandboxServer, SandboxState, serve_forever


def _probability(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 1:
        raise ValueError(raw)
    return value


def _interrupt(signum, frame):
    # Once only: a second SIGTERM during the shutdown must not cut the shutdown short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _stop_on_sigterm() -> None:
    """Turn SIGTERM (honcho, process managers) into KeyboardInterrupt, like Ctrl-C.

    Call it inside the ``try`` that catches KeyboardInterrupt: a SIGTERM arriving between
    installing the handler and entering the ``try`` would escape as a traceback.
    """
    signal.signal(signal.SIGTERM, _interrupt)


class Command(BaseCommand):
    help = "Serve the Mercado Livre sandbox (fake ML API with demo sellers) until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-sandbox",
            action="store_true",
            help="Serve only in sandbox mode (no ML_CLIENT_ID); otherwise idle until stopped. "
            "For process files that run the same processes in both modes.",
        )
        default = urlsplit(settings.ML_SANDBOX_URL)
        parser.add_argument("--host", default=default.hostname or "127.0.0.1")
        parser.add_argument(
            "--port", type=int, default=default.port or 8001, help="0 picks a free port (printed on start)"
        )
        parser.add_argument(
            "--state-file",
            default=str(settings.ML_SANDBOX_STATE_FILE),
            help="JSON file keeping codes and tokens across restarts; empty for memory only",
        )
        parser.add_argument("--latency-ms", type=float, default=0, help="delay before every answer")
        parser.add_argument(
            "--fail-rate-429", type=_probability, default=0.0, help="share of calls answered 429"
        )
        parser.add_argument(
            "--fail-rate-5xx", type=_probability, default=0.0, help="share of calls answered 503"
        )
        parser.add_argument(
            "--retry-after", type=int, default=None, help="Retry-After seconds sent with 429s"
        )
        parser.add_argument(
            "--rate-limit-per-second",
            type=float,
            default=None,
            help="enforce an app-wide request rate (429 beyond)",
        )
        parser.add_argument(
            "--access-token-ttl", type=int, default=21600, help="expires_in of new access tokens"
        )
        parser.add_argument(
            "--notifications-url",
            default=getattr(settings, "ML_SANDBOX_NOTIFICATIONS_URL", "") or None,
            help="the app's webhook: notifications are POSTed there (default: none, notifications off)",
        )
        parser.add_argument(
            "--activity-seconds",
            type=float,
            default=getattr(settings, "ML_SANDBOX_ACTIVITY_SECONDS", 0) or None,
            help="every that many seconds a random demo seller gets a new question, order, listing "
            "or claim, and the app its notification (default: none)",
        )

    def handle(self, *args, **options):
        if options["if_sandbox"] and not settings.ML_SANDBOX:
            # Idle rather than exit: honcho stops every process when one of them ends.
            try:
                _stop_on_sigterm()
                # Printed once SIGTERM is handled: from this line on, stopping is clean.
                self.stdout.write(
                    "ML_CLIENT_ID is set: talking to Mercado Livre itself; the sandbox stays idle."
                )
                self.stdout.flush()
                while True:
                    signal.pause()
            except KeyboardInterrupt:
                return
        try:
            state = SandboxState(
                state_file=Path(options["state_file"]) if options["state_file"] else None,
                latency_ms=options["latency_ms"],
                fail_rate_429=options["fail_rate_429"],
                fail_rate_5xx=options["fail_rate_5xx"],
                retry_after=options["retry_after"],
                rate_limit_per_second=options["rate_limit_per_second"],
                access_token_ttl=options["access_token_ttl"],
                notifications_url=options["notifications_url"] or None,
                activity_seconds=options["activity_seconds"] or None,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

        def announce(server: SandboxServer) -> None:
            self.stdout.write(self.style.SUCCESS(f"Mercado Livre sandbox on {server.url}"))
            self.stdout.write(f"State file: {state.state_file or '(memory only)'}")
            knobs = state.knobs
            self.stdout.write(f"Notifications: {knobs.notifications_url or '(off)'}")
            activity = f"every {knobs.activity_seconds:g} s" if knobs.activity_seconds else "(off)"
            self.stdout.write(f"Activity: {activity}")
            self.stdout.write("Demo sellers (id, nickname, site, listings/orders/questions/claims):")
            for seller in state.sellers:
                self.stdout.write(
                    f"  {seller.id:>16}  {seller.nickname:<16} {seller.site_id}  "
                    f"{seller.listings}/{seller.orders}/{seller.questions}/{seller.claims}"
                )
            self.stdout.write("Quit with CONTROL-C.")
            self.stdout.flush()

        try:
            # honcho and process managers stop with SIGTERM: shut down as cleanly as on Ctrl-C.
            _stop_on_sigterm()
            serve_forever(
                options["host"],
                options["port"],
                state,
                verbose=options["verbosity"] > 1,
                on_ready=announce,
            )
        except OSError as exc:
            raise CommandError(f"cannot serve on {options['host']}:{options['port']}: {exc}") from exc
        except KeyboardInterrupt:
            self.stdout.write("Sandbox stopped.")
