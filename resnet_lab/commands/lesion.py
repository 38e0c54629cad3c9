"""`python -m resnet_lab lesion`: delete one block at a time from a trained run (Veit et al. 2016) and
report the accuracy each deletion costs — for the run and, with ``--twin``, its plain twin."""

from __future__ import annotations

import argparse
import json

from .common import add_count, add_run, add_twin


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``lesion`` subcommand."""
    p = sub.add_parser("lesion", help="accuracy drop when each block's residual branch (or skip) is removed",
                       description="Lesion study on validation images: remove one block's residual branch "
                                   "(or its skip connection) at test time and measure the accuracy lost.")
    add_run(p, help="a finished run's id")
    add_twin(p, help="study the run's twin (plain <-> ResNet) too")
    add_count(p, 1000, help="validation images (a stratified subset; default 1000)")
    p.add_argument("--kinds", default="branch,skip", help="lesions, comma separated: branch, skip (default both)")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_lesion)


def parse_kinds(text: str) -> tuple[str, ...]:
    """'branch,skip' -> ('branch', 'skip'); ValueError naming the allowed kinds otherwise."""
    from ..analysis.lesion import KINDS

    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"--kinds must list some of {', '.join(KINDS)} (comma separated), got {text!r}")
    return tuple(dict.fromkeys(kinds))


def cmd_lesion(args: argparse.Namespace) -> int:
    from ..analysis.learned import inconclusive
    from ..analysis.lesion import comparison_sentence, lesion_indices, lesion_study, summary_sentence
    from .common import run_subjects
    from ..data.registry import load_dataset
    from ..experiments.learned import check_runs
    from ..store import Store

    kinds = parse_kinds(args.kinds)
    if args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    runs, subjects = run_subjects(args.run, args.twin)
    main = subjects[0]
    if main.data is None:
        raise ValueError(f"run {main.run_id}'s checkpoint does not say which data it was trained on")
    data = load_dataset(main.data)
    idx = lesion_indices(data.y_val, args.n)
    studies = []
    for s in subjects:
        if s.data is not None and s.data != main.data:
            raise ValueError(f"runs {runs[0].id} and {s.run_id} were trained on different data; cannot compare them")
        studies.append(lesion_study(s.model, s.normalize(data.x_val[idx]), data.y_val[idx],
                                    batch_size=args.batch_size, kinds=kinds, label=s.label))
    store = Store()
    try:
        checks = check_runs(store, runs)
    finally:
        store.close()
    why = inconclusive(checks)  # None when both learned: only then is a conclusion drawn
    result = {"n": len(idx), "data": main.data.name, "kinds": list(kinds),
              "models": [{"run": r.id, **st.to_dict(), "learned": c.to_dict()}
                         for r, st, c in zip(runs, studies, checks)],
              "summary": {k: summary_sentence(studies, k) for k in kinds},
              "inconclusive": why is not None, "inconclusive_why": why,
              "comparison": {k: None if why is not None else (comparison_sentence(studies, k) or None)
                             for k in kinds}}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"lesion study on {len(idx)} validation images of {main.data.name}")
    for st in studies:
        print(f"  {st.label}: intact accuracy {st.base_acc:.1%}")
    if why is not None:
        print(why)
    for kind in kinds:
        what = "residual branch deleted" if kind == "branch" else "skip removed"
        print(f"\naccuracy drop (points) with one block's {what}:")
        print(f"  {'block':<12}" + "".join(f"{('ResNet' if st.skip else 'plain') + ' #' + str(r.id):>16}"
                                          for r, st in zip(runs, studies)))
        for block in studies[0].blocks:
            cells = []
            down = False
            for st in studies:
                row = st.row(block, kind) if block in st.blocks else None
                down = down or bool(row and row.downsampling)
                cells.append("n/a" if row is None or row.drop is None else f"{100 * row.drop:.1f}")
            print(f"  {block + (' ↓' if down else ''):<12}" + "".join(f"{c:>16}" for c in cells))
        print(summary_sentence(studies, kind))
        if result["comparison"][kind]:
            print(result["comparison"][kind])
    print("(↓: the block downsamples; n/a: not possible — a plain block that reshapes, or a plain block's skip)")
    return 0
