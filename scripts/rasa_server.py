"""Start the Rasa server with patient text kept out of its logs (runs in the Rasa environment, Python 3.10).

    <rasa venv>/bin/python scripts/rasa_server.py run --model ... (the arguments of `rasa`)
    <rasa venv>/bin/python scripts/rasa_server.py train ...       (`make model`: the same quiet warnings)

Rasa's structured logs carry message texts in fields such as `text` (a REST message that timed out or
failed is logged with its text). Rasa passes those fields through an "anonymization pipeline" when a plugin
provides one; this one replaces every such value with "[redacted]". Rasa also hands the pipeline each new
tracker event (`run`, to publish an anonymised copy): there is nowhere to publish it, so it does nothing
(without it every message failed after its reply, and the tracker was never saved). A logged exception
would still quote the patient through its frames' local variables and its message, so tracebacks are
written with neither. Known-harmless third-party warnings are silenced so a start-up shows what matters.
"""

import sys
import warnings

import pluggy

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
warnings.filterwarnings("ignore", message=".*setParseAction.*|.*parseString.*|.*resetCache.*")
_simplefilter, _filterwarnings = warnings.simplefilter, warnings.filterwarnings
_SHOWING = {"default", "always", "module", "once"}  # "error" stays: libraries use it to detect features


def _quiet_simplefilter(action, category=Warning, lineno=0, append=False):  # noqa: ANN001, ANN202
    if action not in _SHOWING:
        _simplefilter(action, category, lineno, append)


def _quiet_filterwarnings(action, message="", category=Warning, module="", lineno=0, append=False):  # noqa: ANN001, ANN202
    if action not in _SHOWING:
        _filterwarnings(action, message, category, module, lineno, append)


# The launcher starts Rasa with PYTHONWARNINGS=ignore, but its libraries put warnings back on at the front of
# the filters: Sanic (`filterwarnings("once", DeprecationWarning)` on import), aiogram (`simplefilter(
# "default", ...)` each time it warns), Rasa itself ("once" for UserWarning, which pyparsing's deprecation
# notices are too). Third-party code may add filters that ignore or raise, never ones that show.
warnings.simplefilter, warnings.filterwarnings = _quiet_simplefilter, _quiet_filterwarnings

hookimpl = pluggy.HookimplMarker("rasa")


class _Redact:
    @staticmethod
    def log_run(_value: object) -> str:
        return "[redacted]"

    @staticmethod
    def run(_event: dict) -> None:
        """A new tracker event: nothing to publish (the tracker store keeps the conversation)."""


def _tracebacks_without_patient_text() -> None:
    """Structured tracebacks without local variables or exception messages (both can hold the text)."""
    import structlog

    render = structlog.processors.dict_tracebacks

    def without_values(logger: object, name: str, event_dict: dict) -> dict:
        event_dict = render(logger, name, event_dict)
        exceptions = event_dict.get("exception")
        for exception in exceptions if isinstance(exceptions, list) else []:
            exception["exc_value"] = "[redacted]"
            for frame in exception.get("frames", []):
                frame.pop("locals", None)
        return event_dict

    structlog.processors.dict_tracebacks = without_values  # read when Rasa configures its logging


class _NoPatientTextInLogs:
    @hookimpl
    def get_anonymization_pipeline(self) -> _Redact:
        return _Redact()


def main() -> None:
    from rasa.plugin import plugin_manager

    plugin_manager().register(_NoPatientTextInLogs())
    _tracebacks_without_patient_text()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *sys.argv[1:]]
    rasa_main()


if __name__ == "__main__":
    main()
