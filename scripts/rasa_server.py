"""Start the Rasa server with patient text kept out of its logs (runs in the Rasa environment, Python 3.10).

    <rasa venv>/bin/python scripts/rasa_server.py run --model ... (the arguments of `rasa`)

Rasa's structured logs carry message texts in fields such as `text` (a REST message that timed out or
failed is logged with its text). Rasa passes those fields through an "anonymization pipeline" when a plugin
provides one; this one replaces every such value with "[redacted]". Known-harmless third-party warnings
are silenced so a start-up shows what matters.
"""

import sys
import warnings

import pluggy

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
warnings.filterwarnings("ignore", message=".*setParseAction.*|.*parseString.*|.*resetCache.*")

hookimpl = pluggy.HookimplMarker("rasa")


class _Redact:
    @staticmethod
    def log_run(_value: object) -> str:
        return "[redacted]"


class _NoPatientTextInLogs:
    @hookimpl
    def get_anonymization_pipeline(self) -> _Redact:
        return _Redact()


def main() -> None:
    from rasa.plugin import plugin_manager

    plugin_manager().register(_NoPatientTextInLogs())
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *sys.argv[1:]]
    rasa_main()


if __name__ == "__main__":
    main()
