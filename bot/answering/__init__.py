"""The answering core the action server runs (and `concierge eval`): from a question and a ward
to an Answer, over the knowledge index."""
