"""imagine/ui.py: a prompt echoed in the bot's messages cannot dress them up or hide a link in them."""

from __future__ import annotations

from imagine import ui
from imagine.contract import JobSpec, Requester

HOSTILE = "[free nitro](https://evil.example/x) **loud** # Heading <@123> `code` ||spoiler||"


def test_every_echo_of_a_prompt_is_escaped() -> None:
    spec = JobSpec(prompt=HOSTILE, negative_prompt=HOSTILE, seed=1, steps=2, requester=Requester(user_id=5))
    for text in (ui.headline(spec), ui.result_text(spec, [1]), ui.info_text(spec, [1]), ui.queued_text(spec, 2)):
        assert "[free nitro](" not in text  # no masked link
        assert "\\[free nitro\\]" in text
        assert "**loud**" not in text and "\\*\\*loud\\*\\*" in text
        assert "<@123>" not in text  # not rendered as a mention
        assert "||spoiler||" not in text and "`code`" not in text
    assert ui.headline(spec).endswith(" — <@5>")  # the bot's own mention of the requester stays


def test_plain_prompts_read_as_they_were_written() -> None:
    assert ui.echo("a red circle on a blue square") == "a red circle on a blue square"
    assert ui.echo("x" * 400, 10) == "x" * 9 + "…"
