"""Checkpoint helper for programs run by ``sky jobs``: find the latest checkpoint, resume, save atomically.

Pure standard library, so a training image only needs this package (no torch, no pulumi)::

    from skyendpoints_iac.train import Checkpointer

    ckpt = Checkpointer.from_env()          # SKY_CHECKPOINT_DIR, SKY_NODE_RANK
    ckpt.handle_sigterm()                   # preemption: finish the step, save, exit non-zero
    last = ckpt.resume()                    # newest verified checkpoint, or None
    state = last.read_json() if last else fresh_state()
    for step in range(last.step + 1 if last else 0, total_steps):
        state = train_step(state)
        if step % 100 == 0 or ckpt.stop_requested:
            with ckpt.save(step) as out:    # becomes step-<step>/ only when complete
                (out / "state.json").write_text(json.dumps(state))
        if ckpt.stop_requested:
            ckpt.exit_preempted()
"""

from .checkpoint import EXIT_PREEMPTED, Checkpoint, Checkpointer, CheckpointError, step_dir_name
from .env import RestartInfo, restart_info

__all__ = [
    "EXIT_PREEMPTED",
    "Checkpoint",
    "CheckpointError",
    "Checkpointer",
    "RestartInfo",
    "restart_info",
    "step_dir_name",
]
