"""groupwise: Hydra-configured fine-tuning with regex param groups and filtered pretrained loading."""

import signal
import sys

from src import stopping

# Every command is `python -m src.<name>`, which imports this package first: from here on, a
# Ctrl-C while the command's own modules are imported is one line, not a traceback.
sys.excepthook = stopping.start_up_hook
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, stopping.interrupt_start_up)
