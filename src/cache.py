"""`python -m src.cache list | clean [cache_dir=DIR] [unused_for_days=30]`: the decoded image
caches (`dataset.cache=true`) of a cache dir.

`list` prints each cache with its size, the folder it was decoded from, its last use and its
versions; `clean` removes what no run needs: the leftovers of killed builds, versions older than
their cache's newest, and whole caches unused for `unused_for_days`, never a version a running
job holds (src/data/cache_store.py). The first argument may be the action itself.
"""

import sys
import time
from pathlib import Path

from omegaconf import DictConfig

from src.config.command import run_command
from src.data import cache_store
from src.data.cached_folder import default_cache_dir

ACTIONS = ("list", "clean")


def cache_command(cfg: DictConfig) -> None:
    cache_dir = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    if not cache_dir.is_dir():
        print(f"no decoded caches in {cache_dir}")
        return
    if cfg.action == "clean":
        removed = cache_store.clean(cache_dir, cfg.unused_for_days)
        freed = f"; {len(removed)} folder(s) removed" if removed else "; nothing to remove"
        print(f"cleaned {cache_dir}{freed}")
        for path in removed:
            print(f"  removed {path}")
    _list(cache_dir)


def _list(cache_dir: Path) -> None:
    caches = cache_store.caches(cache_dir)
    total = sum(c.size for c in caches)
    print(f"{len(caches)} decoded cache(s) in {cache_dir}, {cache_store.shown(total)}")
    for cache in caches:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(cache.last_use))
        extra = f", {cache.leftovers} killed build(s) left" if cache.leftovers else ""
        print(
            f"  {cache.path.name}  {cache_store.shown(cache.size)}  last used {used}  "
            f"{cache.versions} version(s){extra}  from {cache.source}"
        )


def main(args: list[str]) -> None:
    if args and args[0] in ACTIONS:  # `list` / `clean` as the first word
        args = [f"action={args[0]}", *args[1:]]
    run_command("cache", __doc__, cache_command, args)


if __name__ == "__main__":
    main(sys.argv[1:])
