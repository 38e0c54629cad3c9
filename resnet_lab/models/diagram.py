"""Graphviz DOT diagram of a network: one node per block, each with its skip arrow (or none).

The diagram is built from a ModelSummary so every shape shown is the one the model really
produces. Deep stages are folded: the first and last blocks are drawn, the ones between become a
single "N more blocks" node, so a 1202-layer net still fits on a page.
"""

from __future__ import annotations

from .summary import BlockRow, ModelSummary

SKIP_COLOR = "#d62728"
PLAIN_COLOR = "#7f7f7f"
_SHORTCUT_LABEL = {"identity": "identity", "projection": "1×1 conv", "zero-pad": "zero-pad (A)"}


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _branch_text(summary: ModelSummary, block: BlockRow) -> str:
    spec = summary.spec
    c = block.out_shape[0] // spec.expansion
    stride = block.in_shape[-1] // max(block.out_shape[-1], 1)
    s = f"/{stride}" if stride > 1 else ""
    pre = "BN-ReLU → " if spec.preact else ""
    if spec.block == "bottleneck":
        return f"{pre}1×1,{c} → 3×3{s},{c} → 1×1,{c * 4}"
    return f"{pre}3×3{s},{c} → 3×3,{c}"


def to_dot(summary: ModelSummary, max_blocks_per_stage: int = 3, title: str | None = None) -> str:
    """DOT source, top to bottom. Residual blocks get a red skip edge into an ⊕ node; plain ones don't."""
    if max_blocks_per_stage < 2:
        raise ValueError("max_blocks_per_stage must be at least 2 (first and last block)")
    spec = summary.spec
    lines = [
        "digraph resnet {",
        '  graph [rankdir=TB, nodesep=0.25, ranksep=0.22, fontname="Helvetica", fontsize=11'
        + (f", label={_q(title)}, labelloc=t" if title else "") + "];",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", color="#4c72b0", '
        'fontname="Helvetica", fontsize=10, height=0.3];',
        '  edge [color="#4c72b0", arrowsize=0.6];',
        f'  input [label={_q(f"input {spec.in_channels}×{summary.input_size}×{summary.input_size}")}, '
        'shape=plaintext, style=""];',
    ]
    stem = summary.stages[0]
    stem_text = ("conv 7×7/2 → BN → ReLU → maxpool 3×3/2" if spec.stem == "imagenet"
                 else ("conv 3×3" if spec.preact else "conv 3×3 → BN → ReLU"))
    stem_label = f"stem: {stem_text}\n{_shape(stem.output_shape)}"
    lines.append(f'  stem [label={_q(stem_label)}, fillcolor="#e8e8e8"];')
    lines.append("  input -> stem;")
    prev = "stem"
    edges: list[str] = []  # edges go at the top level: an edge inside a cluster would pull its ends into it
    by_stage: dict[str, list[BlockRow]] = {}
    for b in summary.blocks:
        by_stage.setdefault(b.name.split(".")[0], []).append(b)

    for stage, blocks in by_stage.items():
        lines.append(f"  subgraph cluster_{stage} {{")
        lines.append(f'    label={_q(f"{stage} · {len(blocks)} blocks · {_shape(blocks[-1].out_shape)}")}; '
                     'style="rounded,dashed"; color="#bbbbbb"; fontsize=10;')
        if len(blocks) > max_blocks_per_stage:
            keep = max_blocks_per_stage - 1
            shown: list[BlockRow | int] = [*blocks[:keep], len(blocks) - keep - 1, blocks[-1]]
        else:
            shown = list(blocks)
        for item in shown:
            if isinstance(item, int):
                node = f"{stage}_more"
                more = f"⋮ {item} more block{'s' if item > 1 else ''} like this"
                lines.append(f'    {node} [label={_q(more)}, '
                             'shape=plaintext, style=""];')
                edges.append(f'  {prev} -> {node} [style=dotted];')
                prev = node
                continue
            node = "b_" + item.name.replace(".", "_")
            label = f"{item.name}: {_branch_text(summary, item)}"
            lines.append(f"    {node} [label={_q(label)}];")
            edges.append(f"  {prev} -> {node};")
            if item.shortcut == "none":
                prev = node
                continue
            add = f"{node}_add"
            lines.append(f'    {add} [label="+", shape=circle, width=0.25, fixedsize=true, '
                         f'fillcolor="#fde0dd", color="{SKIP_COLOR}", fontsize=12];')
            edges.append(f"  {node} -> {add};")
            edges.append(f'  {prev} -> {add} [color="{SKIP_COLOR}", penwidth=1.6, constraint=false, '
                         f'label={_q(_SHORTCUT_LABEL[item.shortcut])}, fontcolor="{SKIP_COLOR}", fontsize=8];')
            prev = add
        lines.append("  }")
    lines.extend(edges)

    head_text = ("BN → ReLU → " if spec.preact else "") + f"global avgpool → fc {spec.num_classes}"
    lines.append(f'  head [label={_q(head_text)}, fillcolor="#e8e8e8"];')
    lines.append(f'  output [label={_q(f"logits {spec.num_classes}")}, shape=plaintext, style=""];')
    lines.append(f"  {prev} -> head;")
    lines.append("  head -> output;")
    lines.append("}")
    return "\n".join(lines)
