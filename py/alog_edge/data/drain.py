"""Drain3 glue: the miner a log format configures, mining with refinement, and the miners that match.

Every line is keyed by `match(content, "always")` against the final clusters, the rule the device
applies. Drain3's full search visits a token-count node's own clusters in order, so a flat tree of the
templates in parser.json's order (`flat_miner`) matches as the C matcher does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from drain3 import TemplateMiner
from drain3.drain import LogCluster, Node
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig
from tqdm import tqdm

from alog_edge.data import bounded, refine
from alog_edge.errors import AlogError
from alog_edge.formats.drain_state import DrainStateFile
from alog_edge.formats.logformat import LogFormat
from alog_edge.formats.parser_json import MATCH_STRATEGY, UNMATCHED_CLUSTER, format_from_parser


def miner_config(fmt: LogFormat) -> TemplateMinerConfig:
    config = TemplateMinerConfig()
    config.drain_sim_th = fmt.sim_th
    config.drain_depth = fmt.depth
    config.drain_extra_delimiters = list(fmt.extra_delimiters)
    config.masking_instructions = [MaskingInstruction(p, m) for p, m in fmt.masks]
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    config.snapshot_compress_state = False  # DrainStateFile reads and gives back the snapshot as JSON
    return config


def matcher_from_parser(parser: dict[str, Any], parser_path: Path) -> TemplateMiner:
    """A miner for `match(..., "always")` built from parser.json alone.

    Full search visits a token-count node's own clusters before its children's, so a flat tree
    holding the templates in parser.json's order gives Drain3 the same candidates in the same order.
    """
    try:
        clusters = [LogCluster(list(entry["tokens"]), int(entry["cluster_id"])) for entry in parser["templates"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise AlogError(parser_path, f"malformed templates entry ({exc!r})") from None
    return flat_miner(format_from_parser(parser), clusters)


def full_search_order(miner: TemplateMiner) -> list[LogCluster]:
    """Clusters in the order Drain3's full search visits them, per token count: ties go to the earliest."""
    drain = miner.drain
    out = []
    for key in drain.root_node.key_to_child_node:
        for cid in drain.get_clusters_ids_for_seq_len(int(key)):
            out.append(drain.id_to_cluster[cid])
    return out


def flat_miner(fmt: LogFormat, clusters: Iterable[LogCluster]) -> TemplateMiner:
    """A miner whose tree holds the clusters flat under their token count, in the order given:
    Drain3's full search then visits them in that order, as the C matcher does with parser.json."""
    miner = TemplateMiner(config=miner_config(fmt))
    drain = miner.drain
    for cluster in clusters:
        drain.id_to_cluster[cluster.cluster_id] = cluster
        node = drain.root_node.key_to_child_node.setdefault(str(len(cluster.log_template_tokens)), Node())
        node.cluster_ids.append(cluster.cluster_id)
    drain.clusters_counter = max(drain.id_to_cluster, default=0)
    return miner


def mask_all(miner: TemplateMiner, texts: Iterable[str], refused: dict[str, str]) -> dict[str, str]:
    """Each text masked by the miner's masks; a text on which a mask ran past its time goes to refused."""
    out = {}
    with bounded.Guard() as guard:
        for text in texts:
            try:
                out[text] = guard.mask(miner.masker, text)
            except bounded.RegexGaveUp as exc:
                refused[text] = str(exc)
    return out


def mine(contents: list[str], fmt: LogFormat,
         refused: dict[str, str] | None = None) -> tuple[TemplateMiner, list[int]]:
    """Mine the contents with Drain3 (then refine the clusters when the format asks for it), and key
    every line by matching it against the final clusters: the key inference gives it. Contents on
    which a mask gives up are neither mined nor matched (key 0) and land in `refused`."""
    refused = {} if refused is None else refused
    miner = TemplateMiner(config=miner_config(fmt))
    uniques = list(dict.fromkeys(contents))
    with tqdm(total=len(contents) + 2 * len(uniques), desc="mine", unit="line", unit_scale=True,
              disable=None, leave=False) as bar:
        # Each distinct content is masked once (masking is most of the time); Drain3 mines every line.
        masked_of = mask_all(miner, uniques, refused)
        for text in contents:
            if text in masked_of:
                miner.drain.add_log_message(masked_of[text])
            bar.update(1)
        uniques = [text for text in uniques if text in masked_of]
        masked = [masked_of[text] for text in uniques]
        if fmt.refine:
            assigned = []
            for text in masked:
                cluster = miner.drain.match(text, full_search_strategy=MATCH_STRATEGY)
                if cluster is not None:
                    assigned.append((cluster.cluster_id, tuple(miner.drain.get_content_as_tokens(text))))
                bar.update(1)
            members = refine.group_members(assigned)
            refined = refine.refine([(c.cluster_id, tuple(c.log_template_tokens)) for c in full_search_order(miner)],
                                    members)
            miner = flat_miner(fmt, [LogCluster(list(r.tokens), r.cluster_id) for r in refined])
        else:
            bar.update(len(uniques))
        # Every line's key is what matching against the final clusters gives.
        by_content: dict[str, int] = {}
        for text, m in zip(uniques, masked):
            cluster = miner.drain.match(m, full_search_strategy=MATCH_STRATEGY)
            by_content[text] = cluster.cluster_id if cluster is not None else UNMATCHED_CLUSTER
            bar.update(1)
    ids = [by_content.get(text, UNMATCHED_CLUSTER) for text in contents]
    if fmt.refine:
        sizes = pd.Series(ids).value_counts()
        for cluster in miner.drain.clusters:
            cluster.size = int(sizes.get(cluster.cluster_id, 0))
    return miner, ids


def save_state(miner: TemplateMiner) -> dict[str, Any]:
    """The miner's state as drain_state.json holds it, taken through Drain3's own save_state."""
    handler = DrainStateFile()
    miner.persistence_handler = handler
    miner.save_state("parsed")
    return handler.state


def load_miner(parser: dict[str, Any], state: dict[str, Any], state_path: Path) -> TemplateMiner:
    """The miner exactly as mining left it (to mine more lines into it), restored by Drain3's load_state."""
    return TemplateMiner(DrainStateFile(state, state_path), miner_config(format_from_parser(parser)))
