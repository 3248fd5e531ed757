"""Kawasaki ward-office concierge. The folders say which process runs the code:

- rasa_server/: inside the Rasa server (.venv-rasa): channel, lock store, NLU components;
- answering/: the answering core of the action server (and `concierge eval`);
- console/: the staff console's services, in the web process (no encoders);
- supervisor/: starting the processes (`concierge run`, `concierge cluster`, tests);
- knowledge/, retrieval/, storage/ and the modules here: shared by several of them.
Only rasa_server/ and what it imports (japanese, privacy, wording, phrases) run in Rasa's
environment; everything else runs in the application environment (.venv). See docs/architecture.md.
"""
