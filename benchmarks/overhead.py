"""Training-loop overhead: the runner's loop against a plain hand-written loop (and PyTorch
Lightning when it is installed) on the same model, loader, batch and param groups, CPU only
(the contestants: benchmarks/loops.py; on a GPU: benchmarks/gpu.py).

Run from the repository root:

    python -m benchmarks.overhead                # runner vs plain loop
    python -m benchmarks.overhead --workload lenet_digits_b64 --rounds-scale 2

Lightning is timed too when the Python running the benchmark can import it; keep it out of
the project's environment, e.g. in a virtual environment that sees the project's packages
(`python -m venv --system-site-packages VENV && VENV/bin/pip install lightning`), and run
`VENV/bin/python -m benchmarks.overhead` from the repository root.

Each round trains every contestant for the same number of epochs, in an order that rotates
between rounds, so load from other processes falls on all of them alike. Printed: images/s
of each and its ratio to the plain loop, best round against best round and the median of
per-round ratios, in wall time and in process CPU time (the time the process ran, not the
time it waited for a core: steadier on a shared machine). Target: runner >= 0.98x.

"twin" is a second plain loop on its own copy of the model: the same code, so its ratio to
the plain loop is the run's noise floor. On a shared machine two identical loops drift
apart by a few percent; a difference between contestants smaller than the twin's is noise.
"""

import argparse

import torch

from benchmarks.loops import has_lightning, measure

ALL_DIGITS = "dataset.classes=[0,1,2,3,4,5,6,7,8,9]"
WORKLOADS = {
    # name: (overrides, epochs per measurement, rounds)
    "lenet_digits_b64": (
        [ALL_DIGITS, "dataset.batch_size=64", "pretrained=none", "param_groups=fc3_boost"],
        3,
        30,
    ),
    "resnet18_64px_b32": (
        [
            ALL_DIGITS,
            "dataset.shots_per_class=16",
            "dataset.image_size=64",
            "dataset.batch_size=32",
            "model=resnet18",
            "pretrained=none",
            "+param_groups.head={pattern: '^fc\\.', lr_mult: 10}",
        ],
        1,
        10,
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=list(WORKLOADS), action="append")
    parser.add_argument("--rounds-scale", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    lightning = has_lightning()
    if not lightning:
        print("lightning not installed: runner vs plain loop only")
    torch.manual_seed(0)
    # One intra-op thread: on a shared machine, threads that spin-wait for a busy core slow
    # every contestant by whole multiples; one thread keeps the comparison about the loop.
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in args.workload or list(WORKLOADS):
        overrides, epochs, rounds = WORKLOADS[name]
        print(f"\n{name}", flush=True)
        result = measure(
            [*overrides, "trainer.device=cpu"],
            epochs,
            max(2, round(rounds * args.rounds_scale)),
            lightning,
        )
        print(f"{name}: {result['images_per_measurement']} images per measurement")
        for key in ("plain", "twin", "runner", "lightning"):
            if key in result:
                r = result[key]
                print(
                    f"  {key:<10} {r['images_per_s']:8.0f} img/s (best round)   x plain, "
                    f"best vs best / median of per-round ratios: wall "
                    f"{r['wall_ratio_of_best']:.3f} / {r['wall_median_ratio']:.3f}   cpu "
                    f"{r['cpu_ratio_of_best']:.3f} / {r['cpu_median_ratio']:.3f}"
                )


if __name__ == "__main__":
    main()
