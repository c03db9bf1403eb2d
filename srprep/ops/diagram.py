"""A small layered drawing of a directed acyclic graph (pipeline steps), as a uint8 RGB image."""
from __future__ import annotations

import cv2
import numpy as np


def draw_dag(nodes: list[str], edges: list[tuple[str, str]], *, labels: dict[str, str] | None = None,
             box_w: int = 220, box_h: int = 46, gap_x: int = 60, gap_y: int = 40) -> np.ndarray:
    """Draw ``nodes`` in layers (a node one layer below the deepest node it depends on) with arrows.

    Args:
        nodes: node names in a topological order.
        edges: (from, to) pairs: ``to`` depends on ``from``.
        labels: an optional second line per node (e.g. the command).
    Returns:
        (H, W, 3) uint8 RGB image, white background.
    """
    labels = labels or {}
    depth: dict[str, int] = {}
    for n in nodes:
        depth[n] = 1 + max((depth[a] for a, b in edges if b == n), default=-1)
    layers: dict[int, list[str]] = {}
    for n in nodes:
        layers.setdefault(depth[n], []).append(n)
    width = max(len(v) for v in layers.values()) * (box_w + gap_x) + gap_x
    height = len(layers) * (box_h + gap_y) + gap_y
    img = np.full((height, width, 3), 255, np.uint8)
    pos = {}
    for d, row in layers.items():
        x0 = (width - (len(row) * (box_w + gap_x) - gap_x)) // 2
        for i, n in enumerate(row):
            pos[n] = (x0 + i * (box_w + gap_x), gap_y + d * (box_h + gap_y))
    for a, b in edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        cv2.arrowedLine(img, (xa + box_w // 2, ya + box_h), (xb + box_w // 2, yb), (90, 90, 90), 2,
                        cv2.LINE_AA, tipLength=0.15)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for n, (x, y) in pos.items():
        cv2.rectangle(img, (x, y), (x + box_w, y + box_h), (225, 235, 250), -1)
        cv2.rectangle(img, (x, y), (x + box_w, y + box_h), (40, 70, 140), 2)
        cv2.putText(img, n[:24], (x + 8, y + 19), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        if n in labels:
            cv2.putText(img, labels[n][:30], (x + 8, y + 38), font, 0.45, (70, 70, 70), 1, cv2.LINE_AA)
    return img


def dag_dot(nodes: list[str], edges: list[tuple[str, str]], *, labels: dict[str, str] | None = None,
            notes: dict[str, str] | None = None, title: str = "") -> str:
    """The same graph as Graphviz DOT text (top to bottom), for ``dot -Tpng`` / ``-Tsvg`` or any DOT viewer.

    Each node shows its name in bold, ``labels[name]`` (e.g. the command) and ``notes[name]`` (e.g. the
    description, or the output folder) below it.

    >>> print(dag_dot(["a", "b"], [("a", "b")], labels={"b": "pack"}))  # doctest: +NORMALIZE_WHITESPACE
    digraph pipeline {
      rankdir=TB; node [shape=box, style="rounded,filled", fillcolor="#E1EBFA", color="#28468C", fontname="Helvetica"];
      edge [color="#5A5A5A"];
      "a" [label=<<b>a</b>>];
      "b" [label=<<b>b</b><br/><font point-size="10">pack</font>>];
      "a" -> "b";
    }
    """
    labels, notes = labels or {}, notes or {}

    def html(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def quoted(name: str) -> str:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph pipeline {"]
    if title:
        lines.append(f'  label=<{html(title)}>; labelloc=t; fontname="Helvetica";')
    lines.append('  rankdir=TB; node [shape=box, style="rounded,filled", fillcolor="#E1EBFA", color="#28468C", '
                 'fontname="Helvetica"];')
    lines.append('  edge [color="#5A5A5A"];')
    for n in nodes:
        parts = [f"<b>{html(n)}</b>"]
        parts += [f'<font point-size="10">{html(t)}</font>' for t in (labels.get(n), notes.get(n)) if t]
        lines.append(f"  {quoted(n)} [label=<{'<br/>'.join(parts)}>];")
    lines += [f"  {quoted(a)} -> {quoted(b)};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"
