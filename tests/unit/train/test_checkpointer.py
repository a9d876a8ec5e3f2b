"""The checkpoint protocol's edge cases, on a real file system, in-process.

Where a crash cannot be timed from outside (between the manifest and the rename), the on-disk state a
crash leaves is produced directly by making that rename fail: the directory looks exactly as after a kill.
"""

from __future__ import annotations

import json
import os

import pytest

from skyendpoints_iac.train import Checkpointer, CheckpointError, restart_info, step_dir_name
from skyendpoints_iac.train.checkpoint import MANIFEST


def quiet(directory, **kwargs) -> Checkpointer:
    return Checkpointer(directory, log=lambda _: None, **kwargs)


def test_save_is_invisible_until_complete_and_manifest_lists_every_file(tmp_path):
    ckpt = quiet(tmp_path)
    with ckpt.save(7, metadata={"loss": 0.5}) as out:
        (out / "model.bin").write_bytes(b"\x00" * 1000)
        (out / "optim").mkdir()
        (out / "optim" / "adam.bin").write_bytes(b"abc")
        assert ckpt.latest() is None and ckpt.steps() == []  # nothing visible mid-save
    found = ckpt.latest()
    assert found.step == 7 and found.metadata == {"loss": 0.5}
    files = found.manifest["files"]
    assert set(files) == {"model.bin", "optim/adam.bin"}
    assert files["model.bin"]["size"] == 1000 and len(files["model.bin"]["sha256"]) == 64
    assert found.read_bytes("optim/adam.bin") == b"abc"
    with pytest.raises(KeyError, match="not in checkpoint step 7"):
        found.file("missing.bin")


def test_exception_inside_the_block_discards_the_partial_checkpoint(tmp_path):
    ckpt = quiet(tmp_path)
    ckpt.save_json(1, {"v": 1})
    with pytest.raises(RuntimeError), ckpt.save(2) as out:
        (out / "state.json").write_text("{")
        raise RuntimeError("disk full")
    assert ckpt.steps() == [1] and sorted(p.name for p in tmp_path.iterdir()) == [step_dir_name(1)]


def test_crash_between_manifest_and_rename_leaves_previous_checkpoint_and_is_cleaned(tmp_path, monkeypatch):
    ckpt = quiet(tmp_path)
    ckpt.save_json(10, {"v": 10})
    real_rename = os.rename

    def crash(src, dst):
        if str(src).rsplit("/", 1)[-1].startswith(".tmp-000000000020"):
            raise KeyboardInterrupt("killed")  # not an Exception: like a signal arriving right here
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(KeyboardInterrupt), ckpt.save(20) as out:
        (out / "state.json").write_text('{"v": 20}')
    monkeypatch.setattr(os, "rename", real_rename)
    # ``save`` removes its temp dir on the way out; a SIGKILL would not, so recreate what it leaves.
    leftover = tmp_path / ".tmp-000000000020-1-dead"
    leftover.mkdir()
    (leftover / "state.json").write_text('{"v": 20}')
    (leftover / MANIFEST).write_text(json.dumps({"step": 20, "files": {}}))

    again = quiet(tmp_path)
    assert again.resume().read_json() == {"v": 10}
    assert not leftover.exists()


def test_damaged_checkpoint_is_skipped_quarantined_and_never_crowds_out_good_ones(tmp_path):
    ckpt = quiet(tmp_path, keep=1)
    ckpt.save_json(1, {"v": 1})
    ckpt.keep = 2
    ckpt.save_json(2, {"v": 2})
    # A file system that lied about fsync: the newest file is short.
    damaged = tmp_path / step_dir_name(2) / "state.json"
    damaged.write_text("{")
    messages: list[str] = []
    reader = Checkpointer(tmp_path, writer=False, log=messages.append)
    assert reader.latest().step == 1
    assert messages == [f"skipping {step_dir_name(2)}: state.json has 1 bytes, the manifest says 8"]

    writer = quiet(tmp_path, keep=1)
    assert writer.resume().step == 1
    assert writer.steps() == [1]  # quarantined out of the step-* names
    assert any(p.name.startswith(".corrupt-step-000000000002") for p in tmp_path.iterdir())
    writer.save_json(2, {"v": "2 again"})
    assert writer.latest().read_json() == {"v": "2 again"} and writer.steps() == [2]


def test_checksum_verification_catches_same_size_corruption(tmp_path):
    quiet(tmp_path).save_json(3, {"v": 123})
    (tmp_path / step_dir_name(3) / "state.json").write_text('{"v": 999}')
    assert quiet(tmp_path, verify="size").latest().step == 3
    assert quiet(tmp_path, verify="checksum").latest() is None


def test_resaving_a_step_replaces_it_and_a_crash_mid_replace_is_recovered(tmp_path):
    ckpt = quiet(tmp_path)
    ckpt.save_json(5, {"v": "first"})
    ckpt.save_json(5, {"v": "second"})
    assert ckpt.latest().read_json() == {"v": "second"}
    # A kill right after the old copy was moved aside, before the new one was renamed in:
    os.rename(tmp_path / step_dir_name(5), tmp_path / ".old-000000000005-abcd")
    assert ckpt.latest() is None
    assert quiet(tmp_path).resume().read_json() == {"v": "second"}


def test_pruning_keeps_the_newest_and_never_newer_than_the_save(tmp_path):
    ckpt = quiet(tmp_path, keep=2)
    for step in (1, 2, 3, 4):
        ckpt.save_json(step, {"step": step})
    assert ckpt.steps() == [4, 3]
    ckpt.save_json(2, {"step": "rolled back"})  # e.g. a program that restarted from an older step on purpose
    assert ckpt.steps() == [4, 3, 2]


def test_only_the_writer_rank_saves_every_rank_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("SKY_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    monkeypatch.setenv("SKY_NODE_RANK", "1")
    worker = Checkpointer.from_env(log=lambda _: None)
    assert worker.rank == 1 and not worker.writer
    with pytest.raises(CheckpointError, match="rank 1 is not the checkpoint writer"):
        worker.save_json(0, {})
    monkeypatch.setenv("SKY_NODE_RANK", "0")
    leader = Checkpointer.from_env(log=lambda _: None)
    assert leader.resume() is None and leader.attempt == 1
    leader.save_json(0, {"v": 0})
    assert worker.resume().read_json() == {"v": 0}
    assert worker.attempt == 1  # readers do not count attempts


def test_from_env_without_a_directory_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SKY_CHECKPOINT_DIR", raising=False)
    with pytest.raises(CheckpointError, match="SKY_CHECKPOINT_DIR is not set"):
        Checkpointer.from_env()


def test_manifest_name_and_symlinks_are_refused(tmp_path):
    ckpt = quiet(tmp_path)
    with pytest.raises(CheckpointError, match="reserved"), ckpt.save(1) as out:
        (out / MANIFEST).write_text("{}")
    with pytest.raises(CheckpointError, match="symlink"), ckpt.save(1) as out:
        (out / "link").symlink_to("/etc/hostname")
    assert ckpt.steps() == []


def test_restart_counts_from_the_downward_api_environment():
    assert restart_info({}).total == 0
    info = restart_info({"SKY_RESTARTS_ON_ERRORS": "2", "SKY_PREEMPTIONS": ""})  # "" = annotation not set yet
    assert (info.on_errors, info.preemptions, info.total) == (2, 0, 2)
    assert restart_info({"SKY_RESTARTS_ON_ERRORS": "x", "SKY_PREEMPTIONS": "3"}).total == 3
