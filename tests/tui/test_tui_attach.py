"""Attaching files in the chat: `@path` completes with Tab, the file's text goes before the
prompt as ask -f sends it, its tokens are counted in the meter before sending, the turn
shows it as a chip, and anything not a text file or PDF is one line (real llama.cpp on a
scripted model, the real Textual app through Pilot)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from r1chat.core.attachments import attach, completions, split
from r1chat.core.errors import UsageError
from r1chat.tui.widgets.turns import UserMessage
from tests.fixtures.scripted import ScriptedModel
from tests.tui.pilot import SIZE, make_app, ready, run_async, settle, wait_for

NOTES = "# Notes\n\nThe launch is on Tuesday.\nBring the keys.\n"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "notes.md").write_text(NOTES)
    (tmp_path / "notebook.txt").write_text("page one\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("print('hi')\n")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    (tmp_path / ".hidden").write_text("secret\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_mention_becomes_a_fenced_block_before_the_prompt(folder: Path) -> None:
    sent = attach("summarise @notes.md, then @src/main.py.", 1 << 20)
    assert [f.name for f in sent.files] == ["notes.md", "src/main.py"]
    assert sent.text.startswith("notes.md:\n```markdown\n# Notes")
    assert sent.text.endswith("\n\nsummarise @notes.md, then @src/main.py.")
    assert split(sent.text) == sent  # read back from the history: the same files and prompt
    assert attach("mail me @@home", 100).text == "mail me @home"  # @@: a literal @
    assert split("a plain prompt").files == ()
    for typed, words in [
        ("@nothing.md", "@nothing.md: no such file"),
        ("@src", "@src: is a folder"),
        ("@photo.png", "@photo.png: an image (R1 reads text"),
        ("@notes.md", "more than 10 bytes"),
    ]:
        with pytest.raises(UsageError, match=re.escape(words)):
            attach(typed, 10 if typed == "@notes.md" else 1 << 20)


def test_paths_complete_as_a_shell_completes_them(folder: Path) -> None:
    assert completions("no") == ["notebook.txt", "notes.md"]
    assert completions("s") == ["src/"] and completions("src/m") == ["src/main.py"]
    assert completions(".h") == [".hidden"] and ".hidden" not in completions("")
    assert completions(str(folder) + "/no") == [f"{folder}/notebook.txt", f"{folder}/notes.md"]


def test_a_pdfs_text_is_attached(folder: Path) -> None:
    pdf = folder / "paper.pdf"
    pdf.write_bytes(_pdf("Quarterly revenue grew by 12 percent."))
    sent = attach("what grew? @paper.pdf", 1 << 20)
    assert "Quarterly revenue grew by 12 percent." in sent.files[0].text
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(UsageError, match=r"@broken\.pdf: not a PDF r1chat can read"):
        attach("@broken.pdf", 1 << 20)


@run_async
async def test_attach_in_the_chat_counted_shown_and_saved(
    answer_model: ScriptedModel, folder: Path
) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        before = app.chat.status.text
        await pilot.press(*"read @note", "tab")
        assert app.chat.prompt.text == "read @note"  # two match: as far as they agree
        assert "notebook.txt" in app.chat.prompt.border_subtitle
        await pilot.press("s", "tab")
        assert app.chat.prompt.text == "read @notes.md "  # one: whole, and a space
        await wait_for(pilot, lambda: "with @files" in app.chat.status.text)
        used = int(re.search(r"ctx ([\d,]+)/", app.chat.status.text)[1].replace(",", ""))
        empty = int(re.search(r"ctx ([\d–,]+)/", before)[1].replace(",", "").replace("–", "0"))
        assert used > empty + 15  # the file's tokens, counted before sending
        await pilot.press("enter")
        await settle(pilot)
        message = app.query(UserMessage).last()
        shown = str(message.render())
        assert "read @notes.md" in shown and "notes.md" in shown and "4 lines" in shown
        assert "Bring the keys" not in shown  # a chip, not the text
        [user, _reply] = app.history.messages(app.chat.session.dialogue.id)
        assert user.content.startswith("notes.md:\n```markdown\n# Notes")  # the text sent
        assert "@files" not in app.chat.status.text  # the draft is empty again


@run_async
async def test_a_file_that_cannot_be_attached_is_one_line_and_nothing_is_sent(
    answer_model: ScriptedModel, folder: Path
) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*"look at @photo.png", "enter")
        await settle(pilot)
        assert not app.query(UserMessage)
        assert app.chat.prompt.text == "look at @photo.png"  # kept, to fix
        notes = [str(n.message) for n in app._notifications]
        assert any("@photo.png: an image" in n for n in notes), notes


def _pdf(text: str) -> bytes:
    """A one-page PDF with `text` in Helvetica (hand-made: offsets computed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
