"""A notification quoting a runtime's or Colab's words shows them escaped, as a real daemon
(dunst) received them: no ESC, BEL, C1, bidi override or line break gets through."""

from __future__ import annotations

import asyncio
import unicodedata

from colabtray.core.notices import notice_for
from colabtray.core.registry import BackendLost
from colabtray.system.notifications import Notifier
from colabtray.text import HIDDEN
from tests.fixtures.desktop import Dunst
from tests.fixtures.waiting import until

NAME = "T4\x1b]52;c;aGk=\x07 \u202egpu\x9b2J"
SENTENCE = 'Colab said: \x1b[2Jdown\nfor <a href="https://x.invalid">maintenance</a>\u2066.'


def test_a_notification_shows_hostile_text_escaped(dunst: Dunst) -> None:
    notice = notice_for(BackendLost(message=SENTENCE))
    assert notice is not None
    notifier = Notifier()

    async def main() -> None:
        await notifier.notify(f"{NAME} is ready", notice.body)
        await until(lambda: dunst.displayed() == 1, 15)

    try:
        asyncio.run(main())
    finally:
        notifier.close()
    assert dunst._ctl("close-all").returncode == 0
    (shown,) = dunst.history()
    title, body = shown["summary"]["data"], shown["body"]["data"]
    for text in (title, body):
        assert [c for c in text if unicodedata.category(c) in HIDDEN] == [], text
    assert title == "T4\\x1b]52;c;aGk=\\x07 \\u202egpu\\x9b2J is ready"
    # The body is markup-escaped too: dunst reads <a href>, <b>, <img> in a body.
    assert '\\x1b[2Jdown\\nfor &lt;a href="https://x.invalid"&gt;maintenance&lt;/a&gt;' in body
