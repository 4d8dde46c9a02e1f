"""The soups of a sweep (`python -m src.soup sweep_dir=...`) beside its jobs in summary.md:
each soup's val and test accuracy against the best job's, the job chosen on val as a soup is.

A soup lives in `<sweep_dir>/soups/<kind>/`, a run dir of its own (no job.json: it is not a
job), whose soup.json lists its ingredients with the val accuracy the soup command measured;
WiSE-FT of a job in `<sweep_dir>/soups/wise/<job>/`, its one ingredient the job.
"""

import json
from pathlib import Path

SOUPS_DIR = "soups"  # in the sweep's root
WISE_DIR = "wise"  # in SOUPS_DIR: WiSE-FT of the sweep's jobs, one dir each
SOUP_FILE = "soup.json"  # in a soup's run dir: what it is made of and how
EVAL_FILE = "eval_test.json"


def soup_dirs(sweep_dir: Path) -> list[Path]:
    soups = sweep_dir / SOUPS_DIR
    found = [*soups.glob(f"*/{SOUP_FILE}"), *soups.glob(f"{WISE_DIR}/*/{SOUP_FILE}")]
    return sorted(path.parent for path in found)


def markdown(sweep_dir: Path) -> list[str]:
    """The summary's lines on the sweep's soups; none without soups."""
    soups = [(path, json.loads((path / SOUP_FILE).read_text())) for path in soup_dirs(sweep_dir)]
    if not soups:
        return []
    lines = [
        "## Soups (python -m src.soup), against the best job on val",
        "",
        "| soup | ingredients | val/acc | test/acc | best job's val/acc | best job's test/acc |",
        "|---|---|---|---|---|---|",
    ]
    verdicts = []
    for path, soup in soups:
        best = max(soup["ingredients"], key=lambda ingredient: ingredient["val_acc"])
        best_test = _test_acc(Path(best["run_dir"]))
        test = _test_acc(path)
        used = sum(1 for ingredient in soup["ingredients"] if ingredient["in_soup"])
        lines.append(
            f"| {_name(soup)} | {used} of {len(soup['ingredients'])} | {soup['val_acc']:.4f} | "
            f"{_shown(test)} | {best['val_acc']:.4f} | {_shown(best_test)} |"
        )
        verdicts.append(_verdict(soup, best, test, best_test))
    return [*lines, "", *verdicts, ""]


def _verdict(soup: dict, best: dict, test: float | None, best_test: float | None) -> str:
    lead = soup["val_acc"] - best["val_acc"]
    said = "beats" if lead > 0 else "ties" if lead == 0 else "falls behind"
    against = "its job" if soup["kind"] == "wise" else "the best job"
    line = f"**{_name(soup)}** {said} {against} (`{best['run_dir']}`) on val by {lead:+.4f}"
    if test is None or best_test is None:
        return line + "; test: run `python -m src.evaluate sweep_dir=...`."
    return line + f"; on test: {test:.4f} against {best_test:.4f} ({test - best_test:+.4f})."


def _name(soup: dict) -> str:
    if soup["kind"] == "wise":  # its one ingredient: the job it interpolates
        job = Path(soup["ingredients"][0]["run_dir"]).name
        return f"WiSE-FT of {job} (alpha {soup['alpha']:g})"
    return f"{soup['kind']} soup"


def _test_acc(run_dir: Path) -> float | None:
    path = run_dir / EVAL_FILE
    return json.loads(path.read_text())["accuracy"] if path.is_file() else None


def _shown(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
