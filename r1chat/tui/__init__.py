"""The Textual chat UI (`r1chat chat`). Import `r1chat.tui.app` only when the chat runs:
it pulls in Textual."""
