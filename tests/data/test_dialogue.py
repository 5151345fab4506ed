"""pluralrm.data.dialogue: chat messages and HH transcripts to (prompt, chosen, rejected)."""
import pytest

from pluralrm.data.badrows import RowProblem
from pluralrm.data.dialogue import flatten_conversation, render_messages, split_transcript

SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "Hi"}


def _assistant(text):
    return {"role": "assistant", "content": text}


def test_render_messages():
    assert render_messages([SYSTEM, USER]) == "system: Be brief.\n\nuser: Hi"


def test_implicit_prompt_is_the_shared_prefix():
    chosen = [SYSTEM, USER, _assistant("Hello"), {"role": "user", "content": "Joke?"}, _assistant("Knock knock")]
    rejected = chosen[:4] + [_assistant("No.")]
    p, c, r = flatten_conversation(None, chosen, rejected)
    assert p == "system: Be brief.\n\nuser: Hi\n\nassistant: Hello\n\nuser: Joke?"
    assert (c, r) == ("Knock knock", "No.")


def test_identical_final_messages_stay_responses():
    p, c, r = flatten_conversation(None, [USER, _assistant("same")], [USER, _assistant("same")])
    assert (p, c, r) == ("user: Hi", "same", "same")


def test_several_final_messages_are_joined():
    tool = {"role": "tool", "content": "42"}
    p, c, r = flatten_conversation([USER], [_assistant("calling"), tool], [_assistant("no")])
    assert (p, c, r) == ("user: Hi", "calling\n\n42", "no")


def test_string_prompt_with_message_completions():
    assert flatten_conversation("Hi", [_assistant("a")], [_assistant("b")]) == ("Hi", "a", "b")


@pytest.mark.parametrize(
    ("prompt", "chosen", "rejected", "field"),
    [
        (None, [USER, _assistant("a")], [{"role": "user", "content": "Other"}, _assistant("b")], "chosen"),
        (None, "text", [_assistant("b")], "chosen"),
        ([USER], [_assistant("a")], [{"content": "b"}], "rejected"),
        ([{"role": "user"}], [_assistant("a")], [_assistant("b")], "prompt"),
        ([USER], [], [_assistant("b")], "chosen"),
    ],
)
def test_malformed_conversations_name_the_field(prompt, chosen, rejected, field):
    with pytest.raises(RowProblem) as e:
        flatten_conversation(prompt, chosen, rejected)
    assert e.value.field == field


def test_split_transcript():
    chosen = "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant: Knock knock "
    rejected = "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant: No."
    assert split_transcript(chosen, rejected) == (
        "Human: Hi\n\nAssistant: Hello\n\nHuman: Joke?", "Knock knock", "No.")


@pytest.mark.parametrize(
    ("chosen", "rejected", "field"),
    [
        ("no tags at all", "\n\nHuman: x\n\nAssistant: y", "chosen"),
        ("\n\nHuman: x\n\nAssistant: y", None, "rejected"),
        ("\n\nHuman: x\n\nAssistant: y", "\n\nHuman: other\n\nAssistant: z", "rejected"),
        ("\n\nHuman: x\n\nAssistant: y", "\n\nHuman: x\n\nAssistant: z\n\nHuman: more", "rejected"),
        ("\n\nHuman: x\n\nAssistant: y\n\nHuman: more", "\n\nHuman: x\n\nAssistant: z", "chosen"),
    ],
)
def test_split_transcript_problems(chosen, rejected, field):
    with pytest.raises(RowProblem) as e:
        split_transcript(chosen, rejected)
    assert e.value.field == field
