"""`presets` and `summary`: the model presets and a model's parameters, FLOPs and stage table; `models ...`: what
is known of the presets as a whole (`models speed`: :mod:`.speed`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..models import PRESET_GROUPS, PRESETS, plain_name, resolve_spec
from ..models.summary import format_bytes, format_count, summarize
from ..spec import ModelSpec
from .common import add_twin
from .compare import register_models


def register(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser("presets", help="list the model presets")
    pr.add_argument("--json", action="store_true", help="print name -> spec as JSON")
    pr.set_defaults(func=cmd_presets)

    sm = sub.add_parser("summary", help="parameters, FLOPs and per-stage table of a model")
    sm.add_argument("name", nargs="?", help="preset name, e.g. resnet56")
    sm.add_argument("--spec", metavar="FILE", help="a spec JSON file instead of a preset")
    add_twin(sm, help="summarise the preset's twin (skip=False) instead of the preset", old=["--plain"])
    sm.add_argument("--input-size", type=int, default=None, help="image side in pixels (default: 224 or 32)")
    sm.add_argument("--batch-size", type=int, default=1, help="batch size for the activation-memory estimate")
    sm.add_argument("--layers", action="store_true", help="include the per-layer table")
    sm.add_argument("--json", action="store_true", help="JSON output")
    sm.set_defaults(func=cmd_summary)

    from . import speed

    speed.register(register_models(sub))  # `models compare` and `models speed`


def cmd_presets(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps({name: spec.to_dict() for name, spec in PRESETS.items()}, indent=2))
        return 0
    for group, names in PRESET_GROUPS.items():
        print(f"{group}:")
        for name in names:
            spec = PRESETS[name]
            twin = plain_name(name) if plain_name(name) in PRESETS else f"{name} with skip=False"
            print(f"  {name:<18} {spec.describe()}   plain twin: {twin}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    if args.spec:
        spec = ModelSpec.from_json(Path(args.spec).read_bytes())
    elif args.name:
        spec = resolve_spec(args.name)
    else:
        raise ValueError("give a preset NAME or --spec FILE")
    if args.twin:
        spec = spec.replace(skip=False)
    s = summarize(spec, input_size=args.input_size, batch_size=args.batch_size)
    if args.json:
        d = s.to_dict()
        if not args.layers:
            d.pop("layers")
        print(json.dumps(d, indent=2))
        return 0
    print(f"{spec.describe()}  input {spec.in_channels}×{s.input_size}×{s.input_size}")
    print(f"  parameters      {s.params:,} ({format_count(s.params)})")
    print(f"  multiply-adds   {s.macs:,} ({format_count(s.macs)}), FLOPs {format_count(s.flops)}")
    print(f"  depth           {s.depth} weighted layers")
    print(f"  activations     {format_bytes(s.activation_bytes)} for a batch of {s.batch_size} (float32)")
    print(f"  {'stage':<8}{'blocks':>7}  {'output':<14}{'params':>12}{'MACs':>10}")
    for r in s.stages:
        shape = "×".join(map(str, r.output_shape))
        print(f"  {r.name:<8}{r.blocks:>7}  {shape:<14}{r.params:>12,}{format_count(r.macs):>10}")
    if args.layers:
        for r in s.layers:
            print(f"    {r.name:<28}{r.type:<18}{'×'.join(map(str, r.output_shape)):<16}{r.params:>10,}")
    return 0
