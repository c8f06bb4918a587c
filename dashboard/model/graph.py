"""Paths between tables along many-to-one relationships.

A question starts from one table (its base) and may use any dimension of a
table reachable by following relationships from the many side to the one
side: each base row then meets at most one row of every joined table, so a
measure is never multiplied. Rules, checked once when the model loads:

- a relationship that closes a cycle is dropped (a problem names it);
- between two tables the shortest path is used; two different shortest
  paths are ambiguous, and that pair is left unreachable (a problem names
  both) until one relationship is removed;
- asking for a table only reachable against the arrows (one row of the base
  to many rows of the other) is a fan-out, refused with a message naming the
  path and the table to start from instead.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Mapping

from dashboard.model.types import Relationship


def cycle_edges(relationships: Iterable[Relationship]) -> list[Relationship]:
    """Relationships that close a cycle, in file order (dropping them leaves the graph acyclic)."""
    kept: dict[str, list[Relationship]] = {}
    closing: list[Relationship] = []
    for rel in relationships:
        if rel.to_table == rel.table or _reaches(kept, rel.to_table, rel.table):
            closing.append(rel)
        else:
            kept.setdefault(rel.table, []).append(rel)
    return closing


def _reaches(edges: Mapping[str, list[Relationship]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for rel in edges.get(node, ()):
            if rel.to_table not in seen:
                seen.add(rel.to_table)
                todo.append(rel.to_table)
    return False


def shortest_paths(edges: Mapping[str, list[Relationship]], start: str
                   ) -> tuple[dict[str, tuple[Relationship, ...]], dict[str, list[tuple[Relationship, ...]]]]:
    """From `start`: (table → its one shortest path, table → two competing shortest paths when ambiguous)."""
    paths: dict[str, list[tuple[Relationship, ...]]] = {start: [()]}
    dist = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for rel in edges.get(node, ()):
            nxt = rel.to_table
            extended = [p + (rel,) for p in paths[node]][:2]
            if nxt not in dist:
                dist[nxt] = dist[node] + 1
                paths[nxt] = extended
                queue.append(nxt)
            elif dist[nxt] == dist[node] + 1:
                paths[nxt] = (paths[nxt] + extended)[:2]
    unique = {t: ps[0] for t, ps in paths.items() if len(ps) == 1 and t != start}
    ambiguous = {t: ps for t, ps in paths.items() if len(ps) > 1}
    return unique, ambiguous


def describe_path(path: Iterable[Relationship]) -> str:
    return " → ".join(rel.describe() for rel in path)
