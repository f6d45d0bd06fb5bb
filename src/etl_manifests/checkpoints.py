"""When a commit log folds itself into a new snapshot, and the thread that does it.

:class:`Checkpoints` belongs to one :class:`~etl_manifests.commitlog.CommitLog`: after
each commit it applies the :class:`~etl_manifests.CheckpointPolicy` (counting every
writer's commits in the open epoch), and runs the checkpoint inline or in a background
thread. The snapshot write, the slow part, happens outside the log's lock, so no
commit waits for it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ._forksafe import renewed
from .errors import SaveRetriesExhaustedError

if TYPE_CHECKING:
    from .commitlog import CommitLog

__all__ = ["Checkpoints"]

logger = logging.getLogger(__name__)


class Checkpoints:
    """The checkpoint policy and background thread of one commit log."""

    def __init__(self, log: CommitLog) -> None:
        self._log = log
        self._running = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._since_probe = 0  # own commits since this writer last counted the log

    def after_commit(self) -> None:
        """Start (or run, if inline) a checkpoint if the policy says one is due.

        The caller holds the log's lock.
        """
        log = self._log
        policy = log.policy
        records = len(log.state.view)
        # Commits in epochs another checkpointer sealed are its to fold: counting them
        # would start a checkpoint on every commit until this writer reads the result.
        # An inline checkpoint is the caller's promise that the snapshot holds its
        # commit when it returns, wherever another sealer put that commit's epoch.
        known = log.unfolded() if policy.inline else log.open_epoch_known()
        # A writer whose snapshot is older than the stored one (another checkpointed
        # since) would have to re-read the log it already folded, lose the race to
        # write the snapshot, and re-read that: it waits for twice the commits, so
        # that a writer holding the newest snapshot normally checkpoints first.
        slack = 2 if not policy.inline and log.behind() else 1
        if not policy.due(known // slack, records):
            # Other writers' commits count too, but this writer has not read them: look
            # at the log's length now and then (one listing) to learn how many there are.
            probe = policy.probe_every(records)
            self._since_probe += 1
            if probe is None or self._since_probe < probe:
                return
            self._since_probe = 0
            if not policy.due(max(known, log.open_epoch_commits()) // slack, records):
                return
        if policy.inline:
            self.run()
        elif not self._running.locked() and not self._stopped:
            self._thread = threading.Thread(
                target=self._background, name=f"checkpoint {log.layout.snapshot}", daemon=True
            )
            self._thread.start()

    def run(self, *, wait: bool = True, yield_to_others: bool = False) -> int:
        """Fold, write the snapshot outside the lock, rebase; returns the commits folded.

        ``yield_to_others``: skip it if another checkpointer sealed the epoch first (for
        background checkpoints; inline ones and ``compact()`` must land their commits).
        With ``wait`` false, return 0 at once if a checkpoint of this log is running.
        """
        log = self._log
        if not self._running.acquire(blocking=wait):
            return 0
        try:
            for _ in range(log.retry.max_attempts):
                with log.lock:
                    fold = log.prepare_checkpoint(yield_to_others=yield_to_others)
                    if fold is None:
                        return 0
                version = log.write_checkpoint(fold)
                with log.lock:
                    log.finish_checkpoint(fold, version)
                    # Lost to another checkpoint that may have folded fewer epochs (an
                    # older view's): the snapshot must hold every epoch this one folded
                    # before the caller is told the JSON file is complete.
                    short = version is None and log.state.base_epoch < fold.epoch
                if not short or yield_to_others:
                    break
            else:
                raise SaveRetriesExhaustedError(
                    f"could not checkpoint {log.url(log.layout.snapshot)}: other checkpoints "
                    "kept landing first; the log holds every commit, call compact() again"
                )
            log.cleanup()
            return fold.commits if version is not None else 0
        finally:
            self._running.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background checkpoint that is running; ``False`` on a time-out."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def stop(self, timeout: float | None = None) -> bool:
        """Start no more background checkpoints, and wait for a running one."""
        self._stopped = True
        return self.wait(timeout)

    def after_fork(self) -> None:
        """In a forked child: the parent's checkpoint thread is not there."""
        self._running = renewed(self._running)
        self._thread = None

    def _background(self) -> None:
        try:
            self.run(wait=False, yield_to_others=True)
        except Exception as exc:  # the next commit tries again; nothing is lost
            url = self._log.url(self._log.layout.snapshot)
            if not threading.main_thread().is_alive():
                # The program is exiting and its thread pools are shut down under the
                # checkpoint (a daemon thread); whatever it sealed, the next one folds.
                logger.debug("background checkpoint of %s cut short by exit", url)
                return
            logger.warning("background checkpoint of %s failed: %s", url, exc)
