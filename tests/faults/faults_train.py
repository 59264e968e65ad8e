"""`ddsweep train` whose checkpoint writes can be slowed down, so a test can SIGKILL a run while
`checkpoints/.last.ckpt.tmp<pid>` is being written (a sweep file's `command:` runs this file).

FAULTS_SLOW_SAVE_S: seconds to pause after the first half of each checkpoint's bytes is on disk.
Everything else is the real `ddsweep train`."""
import io
import os
import sys
import time

import lightning.fabric.plugins.io.torch_io as torch_io
import torch

from ddsweep.pipeline.cli import main


def slow_atomic_save(checkpoint, filepath) -> None:
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    data = buffer.getvalue()
    with open(filepath, "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        os.fsync(fh.fileno())
        time.sleep(float(os.environ.get("FAULTS_SLOW_SAVE_S") or 0))
        fh.write(data[len(data) // 2:])


torch_io._atomic_save = slow_atomic_save
sys.exit(main(sys.argv[1:]))
