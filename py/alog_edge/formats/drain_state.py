"""drain_state.json: Drain3's state after mining, saved and restored through Drain3's persistence API.

Drain3 hands a PersistenceHandler its snapshot: jsonpickle, i.e. JSON whose `py/object` tags name the
classes to build when it is read back. `DrainStateFile` stores the same state as plain JSON instead,
with no class name in it:

    {"clusters_counter": 2,
     "clusters": [{"id": 1, "size": 2, "tokens": ["a", "b", "<*>"]}, ...],
     "tree": {"clusters": [], "children": {"3": {"clusters": [], "children": {"a": {...}}}}}}

and, when Drain3 loads, gives it back a snapshot built from checked integers and strings only, so a
state file can only ever become Drain's own prefix tree and clusters.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drain3.persistence_handler import PersistenceHandler

from alog_edge.errors import AlogError

_DRAIN = "drain3.drain."


def _fields(obj: Any, kind: str) -> dict[str, Any]:
    """The attributes jsonpickle recorded for one Drain object (a __slots__ class records (dict, slots))."""
    if not isinstance(obj, dict) or obj.get("py/object") != _DRAIN + kind:
        raise ValueError(f"expected a {kind} in Drain3's snapshot")
    state = obj["py/state"]
    if isinstance(state, dict) and "py/tuple" in state:
        own, slots = state["py/tuple"]
        state = {**(own or {}), **slots}
    return state


def _items(value: Any) -> list[Any]:
    return list(value["py/tuple"]) if isinstance(value, dict) and "py/tuple" in value else list(value)


def _plain_node(node: Any) -> dict[str, Any]:
    fields = _fields(node, "Node")
    return {"clusters": [int(c) for c in fields["cluster_ids"]],
            "children": {str(k): _plain_node(c) for k, c in fields["key_to_child_node"].items()}}


def plain_state(snapshot: Any) -> dict[str, Any]:
    """Drain3's snapshot (parsed as JSON, no object built from it) as drain_state.json's plain form."""
    drain = _fields(snapshot, "Drain")
    clusters = []
    for obj in drain["id_to_cluster"].values():
        c = _fields(obj, "LogCluster")
        clusters.append({"id": int(c["cluster_id"]), "size": int(c["size"]),
                         "tokens": [str(t) for t in _items(c["log_template_tokens"])]})
    return {"clusters_counter": int(drain["clusters_counter"]), "clusters": clusters,
            "tree": _plain_node(drain["root_node"])}


def _slots(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"py/object": _DRAIN + kind, "py/state": {"py/tuple": [None, fields]}}


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not an integer")
    return value


def _snapshot_node(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict) or not isinstance(node["children"], dict):
        raise TypeError("a tree node must be {clusters, children}")
    return _slots("Node", {"key_to_child_node": {str(k): _snapshot_node(c) for k, c in node["children"].items()},
                           "cluster_ids": [_int(c) for c in node["clusters"]]})


def snapshot(state: Any) -> dict[str, Any]:
    """The jsonpickle snapshot Drain3 restores, built from drain_state.json's plain form."""
    clusters = {}
    for c in state["clusters"]:
        tokens = c["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise TypeError("cluster tokens must be a list of strings")
        clusters[f"json://{_int(c['id'])}"] = _slots("LogCluster", {
            "log_template_tokens": {"py/tuple": tokens}, "cluster_id": _int(c["id"]), "size": _int(c["size"])})
    return {"py/object": _DRAIN + "Drain",
            "py/state": {"id_to_cluster": clusters, "clusters_counter": _int(state["clusters_counter"]),
                         "root_node": _snapshot_node(state["tree"])}}


class DrainStateFile(PersistenceHandler):
    """Drain3's persistence handler for drain_state.json.

    `save_state` keeps the plain form in `state` (the parse step writes it with its other outputs, all or
    nothing); `load_state` gives Drain3 the snapshot of the plain `state` it was made with, if any.
    """

    def __init__(self, state: dict[str, Any] | None = None, path: Path | str | None = None) -> None:
        self.state = state
        self.path = path  # named in errors

    def save_state(self, state: bytes) -> None:
        self.state = plain_state(json.loads(state))

    def load_state(self) -> bytes | None:
        if self.state is None:
            return None
        try:
            return json.dumps(snapshot(self.state)).encode("utf-8")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AlogError(self.path, f"not a Drain state file ({exc!r})") from None
