"""Reaching residents first (issue 18): what residents subscribe to, the notices staff send, and the
board the bot and the widget read — disaster mode, counter congestion, temporary openings.

- `topics.py`: the notice topics (ids, Japanese labels).
- `subscriptions.py`: a LINE resident's ward and topics (action server, web process).
- `store.py`: notices — written by the console and the CLI, read by the widget.
- `board.py`: disaster alerts, counter status, special openings (console writes, bot reads).
- `sending.py`: a notice to its subscribers by LINE multicast, as task-queue jobs (task worker).
"""
