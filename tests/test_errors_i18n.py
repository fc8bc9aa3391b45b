"""Typed errors: the code stays English, the sentence is translated and filled in afterwards."""
from __future__ import annotations

from typing import Dict, Optional

import pytest

from chat import names
from chat.errors import ChatError, N_, NP_
from chat.protocol import FrameLimits, parse_frame

GERMAN: Dict[str, str] = {
    "Iterations must be between {low} and {high}.": "Iterationen müssen zwischen {low} und {high} liegen.",
    "Too many messages; try again in {wait} second.": "Zu viele Nachrichten; in {wait} Sekunde erneut versuchen.",
    "Too many messages; try again in {wait} seconds.": "Zu viele Nachrichten; in {wait} Sekunden erneut versuchen.",
    "Field '{name}': {reason}": "Feld '{name}': {reason}",
    "The username must be text.": "Der Benutzername muss Text sein.",
}


def german(message: str, plural_message: Optional[str] = None, count: Optional[int] = None) -> str:
    """A stand-in for Tornado's locale.translate, with singular and plural kept as two entries."""
    if plural_message is not None and count != 1:
        message = plural_message
    return GERMAN.get(message, message)


def test_n_marks_without_changing() -> None:
    assert N_("Nothing here.") == "Nothing here."


def test_text_formats_the_translated_template_with_the_params() -> None:
    err = ChatError("bad_iterations", N_("Iterations must be between {low} and {high}."), {"low": 1, "high": 9})
    assert err.message == "Iterations must be between 1 and 9."
    assert err.text(german) == "Iterationen müssen zwischen 1 und 9 liegen."
    assert err.to_dict(german) == {"type": "error", "code": "bad_iterations",
                                   "message": "Iterationen müssen zwischen 1 und 9 liegen."}
    assert err.to_dict()["message"] == err.message == err.text(None)


@pytest.mark.parametrize("wait, english, translated", [
    (1, "Too many messages; try again in 1 second.", "Zu viele Nachrichten; in 1 Sekunde erneut versuchen."),
    (5, "Too many messages; try again in 5 seconds.", "Zu viele Nachrichten; in 5 Sekunden erneut versuchen."),
])
def test_a_plural_sentence_follows_its_count(wait: int, english: str, translated: str) -> None:
    err = ChatError("rate_limited", NP_("Too many messages; try again in {wait} second.",
                                        "Too many messages; try again in {wait} seconds."), {"wait": wait},
                    count=wait, retry_after=wait)
    assert err.message == english
    assert err.text(german) == translated
    assert err.to_dict(german)["retry_after"] == wait


def test_a_broken_translation_falls_back_to_english() -> None:
    def broken(message: str, plural_message: Optional[str] = None, count: Optional[int] = None) -> str:
        return {"Iterations must be between {low} and {high}.": "Zwischen {niedrig} und {high}.",
                "Field '{name}' is empty.": "Feld {0} ist leer.",
                "A frame may be at most {limit} bytes.": "Höchstens {limit:d} Bytes ({limit!x})."}.get(
                    plural_message if count not in (None, 1) else message, message)

    err = ChatError("bad_iterations", N_("Iterations must be between {low} and {high}."), {"low": 1, "high": 9})
    assert err.text(broken) == "Iterations must be between 1 and 9."
    err = ChatError("bad_frame", N_("Field '{name}' is empty."), {"name": "a"})
    assert err.text(broken) == "Field 'a' is empty."
    err = ChatError("too_large", NP_("A frame may be at most {limit} byte.", "A frame may be at most {limit} bytes."),
                    {"limit": 100}, count=100)
    assert err.text(broken) == "A frame may be at most 100 bytes."


def test_a_refusal_quoted_in_another_is_translated_with_it() -> None:
    with pytest.raises(ChatError) as caught:
        parse_frame('{"type": "kick", "user": 5}', FrameLimits(65536, 4096, 10, 10))
    err = caught.value
    assert err.code == "bad_frame" and err.message == "Field 'user': The username must be text."
    assert err.text(german) == "Feld 'user': Der Benutzername muss Text sein."


def test_name_refusals_are_whole_sentences_that_stay_english_by_default() -> None:
    with pytest.raises(ChatError) as caught:
        names.username(None)
    assert caught.value.template == "The username must be text."
    with pytest.raises(ChatError) as caught:
        names.room_id("x" * 65)
    err = caught.value
    assert err.message == "The room name is longer than 64 characters." and err.params == {"limit": 64}


def test_codes_are_checked_and_a_plural_needs_its_count() -> None:
    with pytest.raises(ValueError):
        ChatError("no_such_code", N_("Nothing here."))
    with pytest.raises(ValueError):
        ChatError("too_large", NP_("A frame may be at most {limit} byte.", "A frame may be at most {limit} bytes."),
                  {"limit": 2})
