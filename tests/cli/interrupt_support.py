"""`python interrupt_support.py train|eval ARGS...`: run `plw train|eval ARGS...` with its slow part
replaced by a wait that prints READY to stderr, so a test can send SIGINT mid-command."""

from __future__ import annotations

import signal
import sys
import time


def wait(*args, **kwargs):
    """Stands in for training, evaluation or a sweep cell: says it started, then waits for Ctrl-C."""
    print("READY", file=sys.stderr, flush=True)
    time.sleep(60)
    raise AssertionError("no SIGINT arrived")


def main() -> None:
    # A terminal gives a command the default Ctrl-C handler; a job started in the background of a
    # non-interactive shell (CI, nohup) inherits SIGINT ignored, which would make the test vacuous.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    command = sys.argv[1]
    if command == "train":
        import plw.config
        import plw.training.run

        # Validating a TrainConfig imports transformers (seconds); the config is not what is tested.
        plw.config.load_config = lambda *args, **kwargs: None
        plw.training.run.train = wait
    elif command == "eval":
        import plw.evaluation.run

        plw.evaluation.run.evaluate = wait
    from plw.cli.main import main as plw_main

    sys.argv = ["plw", *sys.argv[1:]]
    plw_main()


if __name__ == "__main__":
    main()
