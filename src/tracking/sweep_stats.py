"""A sweep's jobs pooled into settings, and whether the best setting's lead is beyond seed noise.

A setting is one combination of the swept keys that are not replicate keys (`seed` by
default): its jobs are replicates of one experiment, differing only by chance, and their
spread is the seed noise the lead is weighed against.

The test is Student's t, on the per-seed differences when the two settings share seeds (a
paired test: each seed fixes the data split, the initialisation and the data order, so the
seed's own luck cancels in the difference), and Welch's otherwise (two samples, unequal
variances), also when every shared seed gave exactly the same lead: accuracies move in steps
of one image, two seeds can tie that way, and a difference with no spread says nothing of
the noise (a paired t would call any such lead certain). With the handful of seeds a sweep has, t is the test that can say anything at
all: a sign or permutation test cannot reach p < 0.05 with fewer than 6 pairs. It assumes
the differences are roughly normal, which a mean accuracy over hundreds of images is.
scipy (a dependency of scikit-learn, which is ours) gives the t distribution, and the noncentral
t the seeds needed are found with.
"""

import math
import statistics
from dataclasses import dataclass, field

ALPHA = 0.05  # "beyond seed noise": two-sided p below this
POWER = 0.8  # the seeds that would settle it: those that detect the observed lead this often
MAX_SEEDS = 1000  # beyond this, "settling" the lead is not worth it: say so instead


@dataclass
class Setting:
    values: dict  # swept key (not a replicate key) -> value
    jobs: list[dict] = field(default_factory=list)  # the completed jobs' rows
    failed: list[dict] = field(default_factory=list)  # the failed jobs' rows
    pruned: list[dict] = field(default_factory=list)  # those the pruner stopped early

    @property
    def finished(self) -> bool:
        """Every job that ran reached the end: a setting a verdict may weigh. One pruned on
        any seed was judged on part of its budget, and a setting that only failed has no
        figures."""
        return bool(self.jobs) and not self.pruned

    def scores(self, metric: str) -> dict[tuple, float]:
        """Replicate (e.g. (seed,)) -> the job's final `metric`, completed jobs only."""
        return {job["replicate"]: job[metric] for job in self.jobs if _is_number(job.get(metric))}

    def mean(self, metric: str) -> float:
        values = list(self.scores(metric).values())
        return statistics.fmean(values) if values else math.nan

    def std(self, metric: str) -> float:
        """The sample standard deviation over replicates (NaN with fewer than two)."""
        values = list(self.scores(metric).values())
        return statistics.stdev(values) if len(values) > 1 else math.nan


@dataclass
class Verdict:
    metric: str
    winner: Setting
    runner_up: Setting
    lead: float  # winner's mean minus the runner-up's
    test: str  # "paired t over N shared seeds", "Welch's t", or why there is none
    p: float | None  # two-sided
    seeds_needed: int | None  # per setting, when the lead is not yet beyond noise

    @property
    def beyond_noise(self) -> bool:
        return self.p is not None and self.p < ALPHA

    @property
    def tie(self) -> bool:
        """The two means are the same figure: no lead at all, whatever the noise."""
        return self.lead == 0


def settings(rows: list[dict], swept: list[str], replicate_keys: list[str]) -> list[Setting]:
    """The jobs grouped by their swept values but the replicate keys, in the order first met;
    each row gets `replicate`: its replicate keys' values, the pairing key."""
    grouped: dict[tuple, Setting] = {}
    for row in rows:
        values = {k: row.get("swept", {}).get(k) for k in swept if k not in replicate_keys}
        setting = grouped.setdefault(_key(values), Setting(values))
        row["replicate"] = tuple(row.get("swept", {}).get(k) for k in replicate_keys)
        {"completed": setting.jobs, "pruned": setting.pruned}.get(
            row["status"], setting.failed
        ).append(row)
    return list(grouped.values())


def ranked(found: list[Setting], metric: str, higher_is_better: bool = True) -> list[Setting]:
    """Best first by the mean of `metric`; settings with no value of it last."""
    sign = -1 if higher_is_better else 1

    def order(setting: Setting) -> tuple:
        mean = setting.mean(metric)
        return (math.isnan(mean), sign * mean if not math.isnan(mean) else 0.0)

    return sorted(found, key=order)


def verdict(best: Setting, second: Setting, metric: str, replicate: str = "seed") -> Verdict:
    """Is `best`'s lead over `second` on `metric` beyond seed noise? `replicate`: what the
    test's words call a replicate (a benchmark pairs data splits, not seeds)."""
    a, b = best.scores(metric), second.scores(metric)
    lead = best.mean(metric) - second.mean(metric)
    shared = sorted(set(a) & set(b), key=str)
    differences = [a[r] - b[r] for r in shared]
    if len(shared) >= 2 and not _constant(differences):
        p, needed = _paired(differences)
        test = f"paired t over {len(shared)} shared {replicate}s"
    elif (
        len(a) >= 2
        and len(b) >= 2
        and not (_constant(list(a.values())) and _constant(list(b.values())))
    ):
        p, needed = _welch(list(a.values()), list(b.values()))
        why = (
            f"every shared {replicate} gave the same lead"
            if len(shared) >= 2
            else f"no shared {replicate}s"
        )
        test = f"Welch's t ({why})"
    else:
        p, needed = None, None
        test = (
            f"none: a setting has one {replicate}, or every {replicate} the same figure, so the "
            "noise is unknown"
        )
    return Verdict(metric, best, second, lead, test, p, needed)


def _paired(differences: list[float]) -> tuple[float, int | None]:
    n, mean = len(differences), statistics.fmean(differences)
    sd = statistics.stdev(differences)
    p = _two_sided_p(mean / (sd / math.sqrt(n)), n - 1)
    return p, None if p < ALPHA else _seeds_for(mean, sd, paired=True)


def _welch(a: list[float], b: list[float]) -> tuple[float, int | None]:
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    difference = statistics.fmean(a) - statistics.fmean(b)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    p = _two_sided_p(difference / math.sqrt(va + vb), dof)
    spread = math.sqrt((statistics.variance(a) + statistics.variance(b)) / 2)
    return p, None if p < ALPHA else _seeds_for(difference, spread, paired=False)


def _constant(values: list[float]) -> bool:
    """All equal, but for float rounding (0.9274 - 0.9162 and 0.9553 - 0.9441 differ by 1e-16)."""
    return max(values) - min(values) <= 1e-9


def _seeds_for(lead: float, spread: float, paired: bool) -> int | None:
    """The smallest number of seeds per setting at which a two-sided t test at ALPHA detects a
    true lead of `lead` with probability POWER, if `spread` is the seed noise (of the
    differences when paired, of each setting otherwise). The exact power, from the
    noncentral t distribution the t statistic follows when the lead is real: the normal
    approximation asks one seed too few where few are needed. None: more than MAX_SEEDS, or
    no lead at all (a tie)."""
    from scipy import stats  # only when a lead is in doubt

    if lead == 0:
        return None
    for n in range(2, MAX_SEEDS + 1):
        dof = n - 1 if paired else 2 * n - 2
        shift = abs(lead) / spread * math.sqrt(n if paired else n / 2)  # the noncentrality
        critical = stats.t.ppf(1 - ALPHA / 2, dof)
        if stats.nct.sf(critical, dof, shift) + stats.nct.cdf(-critical, dof, shift) >= POWER:
            return n
    return None


def _two_sided_p(t: float, dof: float) -> float:
    from scipy import stats

    return float(2 * stats.t.sf(abs(t), dof))


def _key(values: dict) -> tuple:
    return tuple((k, str(v)) for k, v in values.items())


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
