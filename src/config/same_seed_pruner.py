"""SameSeedPruner: a sweep job is stopped at an epoch where it trails the trials of its own
seed, compared at that same epoch.

Like with like: a seed fixes the data split, the initialisation and the data order, and two
seeds of one setting differ by more than two settings on one seed often do; a job judged
against other seeds' jobs would be stopped for its seed's luck. So a trial is compared only
with the trials of its seed (the `replicate` user attribute the sweeper sets), at the epoch it
has just reported, finished, pruned or still running alike, as successive halving compares the
trials that reached a rung. Optuna's own pruners pool every trial; its WilcoxonPruner pairs
instances, but within one trial that runs them in turn (optuna >= 3.6), where a sweep runs one
seed per job, in parallel.
"""

import math

from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import TrialState

REPLICATE = "replicate"  # a trial's user attribute: its replicate keys' values (its seed)


class SameSeedPruner(BasePruner):
    def __init__(self, warmup_epochs: int = 1, min_trials: int = 2, keep: float = 0.5):
        self.warmup_epochs = warmup_epochs  # no job is stopped before this epoch
        self.min_trials = min_trials  # same-seed trials at the epoch before any is compared
        self.keep = keep  # the share of them (itself too), best first, that goes on

    def prune(self, study, trial) -> bool:
        epoch = trial.last_step
        if epoch is None or epoch < self.warmup_epochs:
            return False
        value = trial.intermediate_values[epoch]
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        others = [
            other.intermediate_values[epoch]
            for other in study.get_trials(deepcopy=False, states=states)
            if other.number != trial.number
            and other.user_attrs.get(REPLICATE) == trial.user_attrs.get(REPLICATE)
            and epoch in other.intermediate_values
        ]
        if len(others) < self.min_trials:
            return False
        sign = 1 if study.direction == StudyDirection.MAXIMIZE else -1
        ahead = sum(1 for other in others if sign * other > sign * value)
        # It goes on while among the best `keep` of them and itself; the best always does.
        return ahead >= max(1, math.floor(self.keep * (len(others) + 1)))
