"""A short-lived, in-process memory of recent "yes, this user may upload into this project".

An upload's access is checked twice: before its body streams in (so a refused client learns
at once and nothing reaches the disk), and again in the transaction that files it, which is
the check that counts. The first check costs a read session of its own, a noticeable share
of a small upload's CPU (bench/README.md). Remembering a yes for a couple of seconds makes a
burst of uploads into one project pay it once. A grant revoked meanwhile is still refused, by
the second check: the body is then read and dropped, and its blob left for `casefolio gc`, as
when the grant is revoked while an upload streams. A no is never remembered.
"""

from __future__ import annotations

from casefolio.api.recent import Recent


class RecentGrants(Recent[tuple[int, int], bool]):
    """Upload grants remembered by (user id, project id)."""

    def allows(self, user_id: int, project_id: int) -> bool:
        return self.get((user_id, project_id)) is not None

    def remember(self, user_id: int, project_id: int) -> None:
        self.put((user_id, project_id), True)
