"""groupwise: Hydra-configured fine-tuning with regex param groups and filtered pretrained loading."""

import sys

from src import stopping

# Every command is `python -m src.<name>`, which imports this package first: from here on, a
# Ctrl-C while the command's own modules are imported is one line, not a traceback.
sys.excepthook = stopping.start_up_hook
