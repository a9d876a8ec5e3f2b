"""Revision records: numbering, the env's live set, damaged files, concurrent appends."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from skyendpoints_iac.automation.revisions import RevisionStore, spec_hash
from skyendpoints_iac.errors import SkyError


def add(store, name="glm", action="up", outcome="succeeded", text="name: glm\n", env="dev"):
    return store.append(
        env,
        name,
        action=action,
        outcome=outcome,
        spec_hash=spec_hash(text),
        spec_text=text,
        fleet_path="/f.yaml",
        placement={"placements": [{"cluster": "a", "replicas": 2}], "unplaced": 1},
    )


def test_numbering_history_and_summary(tmp_path):
    s = RevisionStore(tmp_path)
    r1, r2 = add(s), add(s, text="name: glm\nreplicas: 3\n")
    assert (r1.rev, r2.rev) == (1, 2) and r1.spec_hash != r2.spec_hash
    assert [r.rev for r in s.history("dev", "glm")] == [1, 2]
    assert s.get("dev", "glm", 1).spec_text == "name: glm\n"
    assert r1.placement_summary() == "a=2 (unplaced 1)" and r1.user and r1.time.endswith("Z")
    with pytest.raises(SkyError, match="has no revision 9; known revisions: 1, 2"):
        s.get("dev", "glm", 9)


def test_live_set_follows_last_successful_record(tmp_path):
    s = RevisionStore(tmp_path)
    add(s, "glm")
    add(s, "glm", outcome="failed")  # a failed up does not change what the stack holds
    add(s, "qwen")
    add(s, "qwen", action="down")
    add(s, "other", outcome="failed")
    live = s.live("dev")
    assert set(live) == {"glm"} and live["glm"].rev == 1
    assert s.envs() == ["dev"] and s.endpoints("dev") == ["glm", "other", "qwen"]


def test_damaged_line_is_reported_with_file_and_line(tmp_path):
    s = RevisionStore(tmp_path)
    add(s)
    with open(tmp_path / "dev" / "glm.jsonl", "a") as fh:
        fh.write("{not json\n")
    with pytest.raises(SkyError, match=r"glm.jsonl:2: damaged revision record"):
        s.history("dev", "glm")


def _append_many(root: str, n: int) -> None:
    s = RevisionStore(__import__("pathlib").Path(root))
    for _ in range(n):
        add(s)


def test_concurrent_appends_never_reuse_a_number(tmp_path):
    procs = [multiprocessing.Process(target=_append_many, args=(str(tmp_path), 10)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = (tmp_path / "dev" / "glm.jsonl").read_text().splitlines()
    revs = [json.loads(ln)["rev"] for ln in lines]
    assert sorted(revs) == list(range(1, 41))
