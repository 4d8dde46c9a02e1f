"""`hydra/sweeper=pruning`: Hydra instantiates sweepers from the hydra_plugins package only;
the sweeper itself is src/config/pruning_sweeper.py."""

from src.config import pruning_sweeper


class PruningSweeper(pruning_sweeper.PruningSweeper):
    """src.config.pruning_sweeper.PruningSweeper, under the name Hydra finds."""
