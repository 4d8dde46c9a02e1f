"""The sweep's answer in words, for summary.md and sweep.png alike: the winner, or "no clear
winner" and why; the verdict on the best setting's lead; the settings that never reached the
end (failed on every seed, or pruned); and the epochs a pruned sweep spent.

A winner is named only when the best setting's lead over the runner-up is beyond seed noise:
a tie, a lead within the noise, or a noise that could not be measured (one seed) leaves the
sweep without one, and the files say so rather than star a setting chance may have put first.
"""

from src.config.sweep import short_keys
from src.tracking import sweep_stats
from src.tracking.hparams import shown
from src.tracking.sweep_stats import Setting, Verdict

NO_WINNER = "no clear winner"


def answer_line(ranked: list[Setting], verdicts: list[Verdict], pruned: int = 0) -> str:
    """The sweep's answer in one line, on the ranking metric (the first verdict); `pruned`:
    the settings pruned on some seed, which it does not weigh, and says so."""
    scope = f" among the {len(ranked)} settings that reached the end ({pruned} pruned)"
    scope = scope if pruned else ""
    if not ranked:
        return f"**{NO_WINNER}**: no setting reached the end."
    if not verdicts:
        return (
            f"**{NO_WINNER}**: only {setting_name(ranked[0])} reached the end, nothing to "
            "weigh it against."
        )
    v = verdicts[0]
    win, second = setting_name(v.winner), setting_name(v.runner_up)
    if v.tie:
        why = f"{win} and {second} tie"
    elif v.p is None:
        why = "the seed noise is unknown (one seed per setting, or every seed the same figure)"
    elif not v.beyond_noise:
        why = f"{win}'s lead over {second} is within seed noise"
    else:
        return (
            f"**winner{scope}: {win}**, its lead over {second} beyond seed noise (p = {v.p:.3g})."
        )
    return f"**{NO_WINNER}**{scope}: {why}."


def verdict_line(v: Verdict) -> str:
    win, second = setting_name(v.winner), setting_name(v.runner_up)
    if v.tie:
        return (
            f"**{v.metric}**: {win} and {second} tie at {v.winner.mean(v.metric):.4f}: "
            "no number of seeds would separate them."
        )
    head = (
        f"**{v.metric}**: {win} leads {second} by {v.lead:+.4f} "
        f"({v.winner.mean(v.metric):.4f} vs {v.runner_up.mean(v.metric):.4f})"
    )
    if v.p is None:
        return (
            f"{head}: cannot be weighed against seed noise (test: {v.test}); run 3 or more seeds."
        )
    test = f"{v.test}, p = {v.p:.3g}"
    if v.beyond_noise:
        return f"{head}: **beyond seed noise** ({test} < {sweep_stats.ALPHA})."
    settle = (
        f"about {v.seeds_needed} seeds per setting would settle it (a lead this size found "
        f"{sweep_stats.POWER:.0%} of the time at p < {sweep_stats.ALPHA}, if the seed noise is "
        "as measured)"
        if v.seeds_needed
        else f"more than {sweep_stats.MAX_SEEDS} seeds would be needed to settle it"
    )
    return f"{head}: **within seed noise** ({test}); {settle}."


def unfinished_lines(unfinished: list[Setting]) -> list[str]:
    """The settings left out of the ranking, each with its counts: not runners-up."""
    lines = []
    for setting in unfinished:
        n = len(setting.jobs) + len(setting.failed) + len(setting.pruned)
        counts = [f"{len(setting.failed)} of {n} jobs failed"] if setting.failed else []
        if setting.pruned:
            epochs = ", ".join(str(job.get("epochs", "?")) for job in setting.pruned)
            counts.append(f"{len(setting.pruned)} of {n} pruned (at epochs {epochs})")
        if setting.jobs:
            counts.append(f"{len(setting.jobs)} of {n} completed")
        state = "pruned" if setting.pruned else "failed"
        lines += [f"**{state}**: {setting_name(setting)}: {'; '.join(counts)}; not ranked.", ""]
    return lines


def budget_line(rows: list[dict]) -> list[str]:
    """What a sweep with pruned jobs spent: epochs trained against its full budget."""
    if not any(row["status"] == "pruned" for row in rows):
        return []
    spent = sum(row.get("epochs") or 0 for row in rows)
    full = sum(row.get("max_epochs") or 0 for row in rows)
    share = f" ({spent / full:.0%})" if full else ""
    return [f"epochs trained: {spent} of the {full} the full grid would train{share}"]


def setting_name(setting: Setting) -> str:
    names = list(short_keys(list(setting.values)).values())
    return (
        ",".join(f"{n}={shown(v)}" for n, v in zip(names, setting.values.values(), strict=True))
        or "all"
    )
